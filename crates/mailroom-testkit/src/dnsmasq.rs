//! A real DNS server on loopback for end-to-end tests: dnsmasq, serving only
//! the records a test gives it.
//!
//! dnsmasq runs in the foreground as a child process with a generated
//! configuration in a temporary directory, listening on 127.0.0.1 at a free
//! port (UDP and TCP). It reads no `/etc/resolv.conf`, no `/etc/hosts` and
//! no `/etc/dnsmasq.conf`, and has no upstream server: nothing a test asks
//! ever leaves loopback. Every top-level label of the configured names is a
//! `--local` domain, so other names under it get NXDOMAIN (as a real
//! authoritative server would answer); names outside get REFUSED.
//!
//! The child is killed when the [`Dnsmasq`] is dropped. Its query log is
//! `dnsmasq.log` in the temporary directory, named in start-up errors.

use std::fmt::Write as _;
use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started dnsmasq has to answer its first query.
const READY_WITHIN: Duration = Duration::from_secs(5);
/// Ports picked and found taken (by a race with another test) before giving up.
const PORT_ATTEMPTS: usize = 5;
/// A TXT character-string holds at most 255 bytes (RFC 1035 §3.3).
const TXT_STRING_MAX: usize = 255;

/// One record dnsmasq serves.
#[derive(Debug, Clone)]
pub enum Record {
    /// `domain MX preference host`.
    Mx { domain: String, host: String, preference: u16 },
    /// `host A ip`; several records for one host give several addresses.
    A { host: String, ip: Ipv4Addr },
    /// `host AAAA ip`.
    Aaaa { host: String, ip: Ipv6Addr },
    /// `name TXT value`, the value split into 255-byte character-strings as
    /// long DKIM keys are, so a reader must join them.
    Txt { name: String, value: String },
    /// `domain MX 0 .`: the null MX of RFC 7505 (dnsmasq serves it from
    /// `mx-host=domain,.,0`).
    NullMx { domain: String },
}

impl Record {
    /// An MX record.
    pub fn mx(domain: &str, host: &str, preference: u16) -> Record {
        Record::Mx { domain: domain.into(), host: host.into(), preference }
    }

    /// An A record.
    pub fn a(host: &str, ip: Ipv4Addr) -> Record {
        Record::A { host: host.into(), ip }
    }

    /// An AAAA record.
    pub fn aaaa(host: &str, ip: Ipv6Addr) -> Record {
        Record::Aaaa { host: host.into(), ip }
    }

    /// A TXT record.
    pub fn txt(name: &str, value: &str) -> Record {
        Record::Txt { name: name.into(), value: value.into() }
    }

    /// A null MX (RFC 7505).
    pub fn null_mx(domain: &str) -> Record {
        Record::NullMx { domain: domain.into() }
    }

    /// The names this record defines, for the `--local` domains.
    fn names(&self) -> Vec<&str> {
        match self {
            Record::Mx { domain, host, .. } => vec![domain, host],
            Record::A { host, .. } | Record::Aaaa { host, .. } => vec![host],
            Record::Txt { name, .. } => vec![name],
            Record::NullMx { domain } => vec![domain],
        }
    }

    /// The dnsmasq configuration line serving this record.
    fn config_line(&self) -> io::Result<String> {
        for name in self.names() {
            check_name(name)?;
        }
        Ok(match self {
            Record::Mx { domain, host, preference } => {
                format!("mx-host={domain},{host},{preference}\n")
            }
            Record::A { host, ip } => format!("host-record={host},{ip}\n"),
            Record::Aaaa { host, ip } => format!("host-record={host},{ip}\n"),
            Record::Txt { name, value } => {
                if !value.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\') {
                    return Err(invalid(format!(
                        "TXT value for {name}: printable ASCII without quotes or backslashes only"
                    )));
                }
                let mut line = format!("txt-record={name}");
                // Printable ASCII, so every byte boundary is a char boundary.
                for chunk in value.as_bytes().chunks(TXT_STRING_MAX) {
                    let chunk = String::from_utf8_lossy(chunk);
                    let _ = write!(line, ",\"{chunk}\"");
                }
                line.push('\n');
                line
            }
            Record::NullMx { domain } => format!("mx-host={domain},.,0\n"),
        })
    }
}

/// A running dnsmasq; killed on drop.
pub struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
    // Kept for its lifetime: the configuration and log live there.
    dir: tempfile::TempDir,
}

impl Dnsmasq {
    /// Starts dnsmasq serving `records`, and returns once it answers.
    /// `Ok(None)` when dnsmasq is not installed: the caller prints a skip
    /// notice (`scripts/test` installs it, so CI never skips).
    pub fn start(records: &[Record]) -> io::Result<Option<Dnsmasq>> {
        let Some(binary) = find_binary() else {
            return Ok(None);
        };
        let dir = tempfile::tempdir()?;
        let conf = dir.path().join("dnsmasq.conf");
        std::fs::write(&conf, config(records)?)?;
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let addr = free_port()?;
            let mut child = spawn(&binary, &conf, dir.path(), addr)?;
            match wait_ready(&mut child, addr) {
                Ok(()) => return Ok(Some(Dnsmasq { child, addr, dir })),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = Some(e);
                }
            }
        }
        let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();
        let cause = last_error.map_or_else(String::new, |e| e.to_string());
        Err(io::Error::other(format!("dnsmasq did not start: {cause}; stderr: {}", stderr.trim())))
    }

    /// The address to send queries to (127.0.0.1, UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The query log, for a test's failure message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dnsmasq.log")).unwrap_or_default()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The configuration file: every record, and a `local` line per top-level
/// label so unknown names are answered, never forwarded.
fn config(records: &[Record]) -> io::Result<String> {
    let mut text = String::new();
    let mut tops: Vec<&str> = Vec::new();
    for record in records {
        text.push_str(&record.config_line()?);
        for name in record.names() {
            if let Some(top) = name.trim_end_matches('.').rsplit('.').next()
                && !tops.contains(&top)
            {
                tops.push(top);
            }
        }
    }
    for top in tops {
        let _ = writeln!(text, "local=/{top}/");
    }
    Ok(text)
}

/// Starts dnsmasq in the foreground on `addr` with the configuration `conf`.
fn spawn(binary: &Path, conf: &Path, dir: &Path, addr: SocketAddr) -> io::Result<Child> {
    let stderr = File::create(dir.join("stderr"))?;
    Command::new(binary)
        // Stay the direct child (no fork), so that kill() reaches it.
        .arg("--keep-in-foreground")
        .arg(format!("--conf-file={}", conf.display()))
        .args(["--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces"])
        .arg(format!("--listen-address={}", addr.ip()))
        .arg(format!("--port={}", addr.port()))
        .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
        .arg(format!("--log-facility={}", dir.join("dnsmasq.log").display()))
        .arg("--log-queries")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
}

/// Polls with a DNS query until dnsmasq answers, or fails if it exits (its
/// port was taken) or stays silent for [`READY_WITHIN`].
fn wait_ready(child: &mut Child, addr: SocketAddr) -> io::Result<()> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    // Header: id 0x4d52, RD set, one question: the root, type SOA, class IN.
    let query = [0x4d, 0x52, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 1];
    let deadline = Instant::now() + READY_WITHIN;
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Err(io::Error::other(format!("dnsmasq exited: {status}")));
        }
        // A refused send (nothing listening yet) is just another poll.
        let _ = socket.send_to(&query, addr);
        if let Ok((n, from)) = socket.recv_from(&mut buf)
            && from == addr
            && n >= 2
            && buf[..2] == query[..2]
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(io::Error::new(io::ErrorKind::TimedOut, "dnsmasq gave no answer"))
}

/// A loopback port free for UDP at the moment of asking.
fn free_port() -> io::Result<SocketAddr> {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()
}

/// dnsmasq lives in /usr/sbin on Debian, often not on a user's PATH.
fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join("dnsmasq"))
        .find(|candidate| candidate.is_file())
}

/// Names go into a comma-separated configuration line: letters, digits,
/// hyphens, underscores and dots only.
fn check_name(name: &str) -> io::Result<()> {
    let ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok { Ok(()) } else { Err(invalid(format!("not a plain DNS name: {name:?}"))) }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lines() {
        let records = [
            Record::mx("example.test", "mx1.example.test", 10),
            Record::null_mx("null.test"),
            Record::a("mx1.example.test", Ipv4Addr::new(192, 0, 2, 1)),
            Record::txt("txt.example", &"x".repeat(300)),
        ];
        let text = config(&records).expect("valid records");
        assert!(text.contains("mx-host=example.test,mx1.example.test,10\n"));
        assert!(text.contains("mx-host=null.test,.,0\n"));
        assert!(text.contains("host-record=mx1.example.test,192.0.2.1\n"));
        let txt = format!("txt-record=txt.example,\"{}\",\"{}\"\n", "x".repeat(255), "x".repeat(45));
        assert!(text.contains(&txt));
        assert!(text.ends_with("local=/test/\nlocal=/example/\n"), "{text}");
    }

    #[test]
    fn answers_once_started_and_stops_on_drop() {
        let Some(dnsmasq) = Dnsmasq::start(&[Record::a("host.test", Ipv4Addr::LOCALHOST)]).expect("dnsmasq starts")
        else {
            eprintln!("skipped: dnsmasq is not installed");
            return;
        };
        assert!(dnsmasq.addr().ip().is_loopback());
        let proc_dir = PathBuf::from(format!("/proc/{}", dnsmasq.child.id()));
        assert!(proc_dir.exists());
        drop(dnsmasq);
        assert!(!proc_dir.exists(), "dnsmasq still running after drop");
    }

    #[test]
    fn refuses_what_would_break_the_config() {
        assert!(config(&[Record::a("a,b.test", Ipv4Addr::LOCALHOST)]).is_err());
        assert!(config(&[Record::txt("t.test", "say \"hi\"")]).is_err());
        assert!(config(&[Record::txt("t.test", "two\nlines")]).is_err());
    }
}
