//! Postfix's `smtp-source` as the client: an independent SMTP
//! implementation, without pipelining, for a second opinion on the rate.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::message::RECIPIENT;
use crate::server::wait_bounded;

/// The envelope sender smtp-source uses.
const SOURCE_SENDER: &str = "a@example.test";

/// Finds `smtp-source`: `explicit`, else on PATH, else in `/usr/sbin`.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    locate_postfix_tool("smtp-source", explicit)
}

/// Finds Postfix's test tool `name` (`smtp-source`, `smtp-sink`):
/// `explicit` (given as `--NAME`), else on PATH, else in `/usr/sbin`.
pub fn locate_postfix_tool(name: &str, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        ensure!(path.is_file(), "--{name} {}: no such file", path.display());
        return Ok(path.to_path_buf());
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect::<Vec<_>>())
        .unwrap_or_default();
    let fixed = [Path::new("/usr/sbin").join(name), Path::new("/usr/bin").join(name)];
    if let Some(found) = on_path.into_iter().chain(fixed).find(|p| p.is_file()) {
        return Ok(found);
    }
    bail!(
        "{name} not found (on PATH, /usr/sbin or /usr/bin). It ships with Postfix; on Debian or Ubuntu:\n    \
         sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y postfix\n\
         The postfix service itself need not run (stop it with `postfix stop`); or pass --{name} PATH."
    )
}

/// One smtp-source invocation.
#[derive(Debug, Clone)]
pub struct Job {
    /// The smtp-source binary.
    pub binary: PathBuf,
    /// The server's SMTP address.
    pub addr: SocketAddr,
    /// `-s`: parallel sessions.
    pub connections: usize,
    /// `-m`: messages in total.
    pub messages: usize,
    /// `-l`: payload octets (smtp-source adds its own headers on top).
    pub size: usize,
    /// `-d`: keep the connection between messages.
    pub reuse_connections: bool,
    /// How long it may run before it is killed.
    pub limit: Duration,
    /// Where its output is kept.
    pub dir: PathBuf,
}

/// What an smtp-source run achieved.
#[derive(Debug)]
pub struct Outcome {
    /// Messages accepted: all of them, as smtp-source aborts at the first
    /// unexpected reply.
    pub accepted: u64,
    /// Always 0 when smtp-source succeeds.
    pub errors: u64,
    /// Always 0 when smtp-source succeeds.
    pub unsent: u64,
    /// smtp-source's run time.
    pub wall: Duration,
}

/// Runs smtp-source to completion (bounded by [`Job::limit`]); fails with its
/// output if it reports an error.
pub fn run(job: &Job) -> Result<Outcome> {
    let mut args: Vec<String> = vec![
        "-s".into(),
        job.connections.to_string(),
        "-l".into(),
        job.size.to_string(),
        "-m".into(),
        job.messages.to_string(),
        "-f".into(),
        SOURCE_SENDER.into(),
        "-t".into(),
        RECIPIENT.into(),
    ];
    if job.reuse_connections {
        args.push("-d".into());
    }
    args.push(job.addr.to_string());
    println!("running: {} {}", job.binary.display(), args.join(" "));
    let log_path = job.dir.join("smtp-source.out");
    let log = File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let start = Instant::now();
    let mut child = Command::new(&job.binary)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot run {}", job.binary.display()))?;
    let status = wait_bounded(&mut child, job.limit)?;
    let wall = start.elapsed();
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    match status {
        None => {
            bail!("smtp-source did not finish within {:?} (raise --timeout); killed it. Output:\n{output}", job.limit)
        }
        Some(s) if !s.success() => bail!("smtp-source failed ({s}):\n{output}"),
        Some(_) => {}
    }
    if !output.trim().is_empty() {
        eprintln!("smtp-source said:\n{}", output.trim_end());
    }
    Ok(Outcome { accepted: job.messages as u64, errors: 0, unsent: 0, wall })
}
