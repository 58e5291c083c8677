//! Transcript scripts: client lines in, exact server replies out.
//!
//! - `C: text` sends `text` CRLF (a bare `C:` sends an empty line); `C> raw`
//!   sends raw bytes with `\r`, `\n`, `\t`, `\\` and `\xNN` escapes, for
//!   bare LF and smuggling cases.
//! - `S: text` expects exactly `text` CRLF; `S~ regex` a full-line match.
//! - `# ...` says why a case exists.
//! - Common directives: `!session NAME` opens or switches to a connection
//!   (the first `C`/`S` line opens session `a`), `!close` makes the client
//!   send EOF, `!closed` expects the server to hang up with nothing unread,
//!   `!wait DURATION`. Any other `!directive` goes to the [`World`], which
//!   may also consume the lines that follow it (such as `M:` lines).
//!
//! At the end of a file the runner fails on server output nobody read. A
//! failure names the file and line, the expected line and the escaped bytes
//! received.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf};

/// How long a reply may take before the script fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What a protocol's tests provide to the runner.
pub trait World {
    /// Opens a new session; returns the client's end of the connection.
    fn connect(&mut self) -> impl std::future::Future<Output = DuplexStream>;

    /// Handles a directive the runner does not know. `following` are the
    /// script lines after it, which the directive may consume. Errors are
    /// messages; the runner adds the file and line.
    fn directive(
        &mut self,
        name: &str,
        args: &[&str],
        following: &mut Lines<'_>,
    ) -> impl std::future::Future<Output = Result<(), String>>;
}

/// The remaining lines of a script, numbered for error messages.
pub struct Lines<'a> {
    lines: &'a [&'a str],
    next: usize,
}

impl<'a> Lines<'a> {
    /// The next line if `accept` likes it, consuming it; with its 1-based number.
    pub fn next_if(&mut self, accept: impl Fn(&str) -> bool) -> Option<(usize, &'a str)> {
        let line = *self.lines.get(self.next)?;
        if !accept(line) {
            return None;
        }
        self.next += 1;
        Some((self.next, line))
    }
}

struct Conn {
    reader: BufReader<ReadHalf<DuplexStream>>,
    writer: WriteHalf<DuplexStream>,
}

impl Conn {
    fn new(stream: DuplexStream) -> Conn {
        let (r, w) = tokio::io::split(stream);
        Conn { reader: BufReader::new(r), writer: w }
    }
}

/// Decodes `\r`, `\n`, `\t`, `\\` and `\xNN` escapes.
pub fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 >= b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b[i + 1] {
            b'r' => out.push(b'\r'),
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'\\' => out.push(b'\\'),
            b'x' => {
                let hex = s.get(i + 2..i + 4).ok_or("short \\x escape")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|e| format!("bad \\x escape: {e}"))?);
                i += 2;
            }
            other => return Err(format!("unknown escape \\{}", other as char)),
        }
        i += 2;
    }
    Ok(out)
}

/// Bytes as printable text, for failure messages.
pub fn escape(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

/// `"300ms"` or `"2s"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Some(ms) = s.strip_suffix("ms") {
        ms.parse().map(Duration::from_millis).map_err(|e| format!("bad duration {s:?}: {e}"))
    } else if let Some(secs) = s.strip_suffix('s') {
        secs.parse().map(Duration::from_secs).map_err(|e| format!("bad duration {s:?}: {e}"))
    } else {
        Err(format!("bad duration {s:?}"))
    }
}

/// True when `got` (without CRLF) matches a `S:`/`M:` exact line or a
/// `S~`/`M~` regex line body.
pub fn line_matches(exact: bool, want: &str, got: &str) -> Result<bool, String> {
    if exact {
        return Ok(got == want);
    }
    let re = Regex::new(&format!("^(?:{want})$")).map_err(|e| format!("bad regex: {e}"))?;
    Ok(re.is_match(got))
}

async fn read_line(conn: &mut Conn) -> Result<Vec<u8>, String> {
    let mut line = Vec::new();
    match tokio::time::timeout(READ_TIMEOUT, conn.reader.read_until(b'\n', &mut line)).await {
        Err(_) => Err(format!("timed out waiting for a reply; got so far {:?}", escape(&line))),
        Ok(Err(e)) => Err(format!("read error: {e}")),
        Ok(Ok(0)) => Err("server closed the connection".into()),
        Ok(Ok(_)) => Ok(line),
    }
}

/// Runs one script file against `world`.
pub async fn run_file<W: World>(path: &Path, world: &mut W) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let all: Vec<&str> = text.lines().collect();
    let mut lines = Lines { lines: &all, next: 0 };
    let mut conns: BTreeMap<String, Conn> = BTreeMap::new();
    let mut current = String::new();
    while let Some((number, raw)) = lines.next_if(|_| true) {
        // A bare `C:` is an empty line (editors strip trailing spaces).
        let line = if raw == "C:" { "C: " } else { raw };
        let fail = |msg: String| format!("{}:{number}: {msg}\n    script: {line}", path.display());
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(directive) = line.strip_prefix('!') {
            let mut words = directive.split_whitespace();
            let name = words.next().unwrap_or_default();
            let args: Vec<&str> = words.collect();
            match name {
                "session" => {
                    current = args.first().ok_or_else(|| fail("session needs a name".into()))?.to_string();
                    if !conns.contains_key(&current) {
                        conns.insert(current.clone(), Conn::new(world.connect().await));
                    }
                }
                "close" => {
                    let conn = conns.get_mut(&current).ok_or_else(|| fail("no session".into()))?;
                    conn.writer.shutdown().await.map_err(|e| fail(e.to_string()))?;
                }
                "closed" => {
                    let conn = conns.get_mut(&current).ok_or_else(|| fail("no session".into()))?;
                    let mut rest = Vec::new();
                    match tokio::time::timeout(READ_TIMEOUT, conn.reader.read_to_end(&mut rest)).await {
                        Ok(Ok(_)) if rest.is_empty() => {}
                        Ok(Ok(_)) => return Err(fail(format!("unread output before close: {:?}", escape(&rest)))),
                        Ok(Err(e)) => return Err(fail(format!("read error: {e}"))),
                        Err(_) => return Err(fail("server did not close the connection".into())),
                    }
                }
                "wait" => {
                    tokio::time::sleep(parse_duration(args.first().copied().unwrap_or_default()).map_err(&fail)?).await
                }
                _ => world.directive(name, &args, &mut lines).await.map_err(&fail)?,
            }
            continue;
        }
        if conns.is_empty() {
            current = "a".into();
            conns.insert(current.clone(), Conn::new(world.connect().await));
        }
        let conn = conns.get_mut(&current).ok_or_else(|| fail("no session".into()))?;
        let (kind, rest) = line.split_at(line.len().min(3));
        match kind {
            "C: " => {
                let bytes = [rest.as_bytes(), b"\r\n"].concat();
                conn.writer.write_all(&bytes).await.map_err(|e| fail(e.to_string()))?;
            }
            "C> " => {
                let bytes = unescape(rest).map_err(&fail)?;
                conn.writer.write_all(&bytes).await.map_err(|e| fail(e.to_string()))?;
            }
            "S: " | "S~ " => {
                let got = read_line(conn).await.map_err(&fail)?;
                let text = String::from_utf8_lossy(&got).to_string();
                let Some(got_line) = text.strip_suffix("\r\n") else {
                    return Err(fail(format!("reply not CRLF-terminated: {:?}", escape(&got))));
                };
                if !line_matches(kind == "S: ", rest, got_line).map_err(&fail)? {
                    return Err(fail(format!("reply differs\n    expected: {rest}\n    got:      {}", escape(&got))));
                }
            }
            _ => return Err(fail("unknown line type".into())),
        }
    }
    // Nothing may be left unread.
    for (name, conn) in conns.iter_mut() {
        let mut buf = [0u8; 4096];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(50), conn.reader.read(&mut buf)).await
            && n > 0
        {
            return Err(format!("{}: session {name}: unread server output {:?}", path.display(), escape(&buf[..n])));
        }
    }
    Ok(())
}

/// The `*.transcript` files of a directory, sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "transcript"));
    files.sort();
    files
}

/// Runs every transcript in `dir`, each in a fresh world from `make`; set
/// `TRANSCRIPT=part` to run only files whose path contains `part`. Panics
/// with every failure at the end.
pub async fn run_dir<W, F, Fut>(dir: &Path, make: F)
where
    W: World,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = W>,
{
    let files = files(dir);
    assert!(!files.is_empty(), "no transcripts in {}", dir.display());
    let only = std::env::var("TRANSCRIPT").ok();
    let mut failures = Vec::new();
    for file in &files {
        if only.as_deref().is_some_and(|o| !file.to_string_lossy().contains(o)) {
            continue;
        }
        let mut world = make().await;
        if let Err(e) = run_file(file, &mut world).await {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} transcripts failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip() {
        assert_eq!(unescape(r"a\r\n\x00\\").unwrap(), b"a\r\n\0\\");
        assert!(unescape(r"\q").is_err());
        assert_eq!(escape(b"a\r\n"), "a\\r\\n");
        assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
        assert!(line_matches(false, "25[0-9] .*", "250 ok").unwrap());
        assert!(!line_matches(true, "250", "250 ok").unwrap());
    }
}
