//! Postfix's `smtp-sink` as the remote destination of the `outbound` mode:
//! an independent SMTP server that accepts every message (with PIPELINING)
//! and throws it away, counting what it received.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::server::wait_bounded;
use crate::source::locate_postfix_tool;

/// The listen backlog passed to smtp-sink: far above the connections the
/// queue runner opens, so that none is ever refused.
const BACKLOG: &str = "1000";
/// How long smtp-sink may take to accept its first connection.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long smtp-sink may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The unprivileged user smtp-sink must switch to when started as root
/// (it refuses to run as root without `-u`).
const UNPRIVILEGED_USER: &str = "nobody";

/// Finds `smtp-sink`: `explicit`, else on PATH, else in `/usr/sbin`.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    locate_postfix_tool("smtp-sink", explicit)
}

/// A running smtp-sink on a loopback port. Dropping it kills the process.
pub struct SmtpSink {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    stopped: bool,
}

impl SmtpSink {
    /// Starts `binary` listening on `addr` (a free loopback port) with
    /// running counters (`-c`) written to `dir/smtp-sink.out`, and waits
    /// until it accepts connections.
    pub fn start(binary: &Path, addr: SocketAddr, dir: &Path) -> Result<SmtpSink> {
        let mut args: Vec<String> = vec!["-c".into()];
        if running_as_root() {
            args.extend(["-u".into(), UNPRIVILEGED_USER.into()]);
        }
        args.extend([addr.to_string(), BACKLOG.into()]);
        let log = dir.join("smtp-sink.out");
        let out = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        println!("running: {} {}", binary.display(), args.join(" "));
        let child = Command::new(binary)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("cannot run {}", binary.display()))?;
        let mut sink = SmtpSink { child, addr, log, stopped: false };
        sink.await_listening()?;
        Ok(sink)
    }

    /// Waits until a connection to the sink succeeds; fails if it exits or
    /// takes longer than [`START_TIMEOUT`].
    fn await_listening(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().context("cannot check on smtp-sink")? {
                self.stopped = true;
                bail!("smtp-sink exited at start ({status}):\n{}", self.output());
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "smtp-sink did not accept connections on {} within {START_TIMEOUT:?}:\n{}",
                self.addr,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the sink (SIGTERM, then SIGKILL past a bound) and returns what
    /// it counted, if its counter output could be read.
    pub fn stop(&mut self) -> Result<Option<Counts>> {
        if !self.stopped {
            let pid = self.child.id().to_string();
            let status = Command::new("kill").args(["-TERM", &pid]).status().context("cannot run `kill -TERM`")?;
            ensure!(status.success(), "`kill -TERM {pid}` (smtp-sink) failed ({status})");
            if wait_bounded(&mut self.child, STOP_TIMEOUT)?.is_none() {
                eprintln!("WARNING: smtp-sink did not exit within {STOP_TIMEOUT:?} of SIGTERM; killed it");
            }
            self.stopped = true;
        }
        let output = self.output();
        let count = last_counts(&output);
        if count.is_none() {
            let tail: String = output.chars().rev().take(300).collect::<Vec<_>>().into_iter().rev().collect();
            eprintln!("note: no message counter in smtp-sink's output ({} octets): {tail:?}", output.len());
        }
        Ok(count)
    }

    /// What the sink printed (its counters, any error).
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if !self.stopped && matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What smtp-sink counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// SMTP sessions ended, the start-up probe's excluded.
    pub sessions: u64,
    /// Messages received (final `.` seen).
    pub messages: u64,
}

/// The last of smtp-sink's `-c` counter lines, which it rewrites in place
/// (`sess=0 quit=0 mesg=1\r`) at every session end, QUIT and final `.`.
fn last_counts(output: &str) -> Option<Counts> {
    output.split(['\r', '\n']).rev().find_map(|line| {
        let field = |name: &str| line.split_whitespace().find_map(|f| f.strip_prefix(name)?.parse::<u64>().ok());
        Some(Counts { sessions: field("sess=")?.saturating_sub(1), messages: field("mesg=")? })
    })
}

/// Whether this process's effective user is root, from `/proc/self/status`.
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Uid:").map(|ids| ids.split_whitespace().nth(1) == Some("0")))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_parsed() {
        let out = "sess=1 quit=0 mesg=1\rsess=1 quit=0 mesg=2\rsess=3 quit=2 mesg=2\r";
        assert_eq!(last_counts(out), Some(Counts { sessions: 2, messages: 2 }));
        assert_eq!(last_counts("smtp-sink: fatal: no\n"), None);
        assert_eq!(last_counts(""), None);
    }
}
