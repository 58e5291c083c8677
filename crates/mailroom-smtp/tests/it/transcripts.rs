//! The transcript runner (style.md §3): each `tests/transcripts/*.transcript`
//! file is a session script.
//!
//! - `C: text` sends `text` CRLF; `C> raw` sends raw bytes with `\r`, `\n`,
//!   `\t`, `\\` and `\xNN` escapes (for bare LF and smuggling cases).
//! - `S: text` expects exactly `text` CRLF; `S~ regex` a full-line match.
//! - `# ...` says why a case exists.
//! - Directives: `!limit key=value` and `!timeout command|data=DURATION`
//!   (before the first session line), `!session NAME` (open or switch to a
//!   connection), `!close` (client sends EOF), `!closed` (expect the server
//!   to hang up), `!shutdown` (begin graceful shutdown), `!wait DURATION`,
//!   `!inbox USER N` (N messages stored), `!message USER N` followed by
//!   `M: line` / `M~ regex` lines: the stored bytes of the Nth message.
//!
//! At the end of a file the runner fails on server output nobody read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;
use tokio::io::DuplexStream;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};

use crate::harness::{SessionOptions, World};

struct Conn {
    reader: BufReader<ReadHalf<DuplexStream>>,
    writer: WriteHalf<DuplexStream>,
}

const READ_TIMEOUT: Duration = Duration::from_secs(5);

fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'\\' => out.push(b'\\'),
                b'x' => {
                    let hex = std::str::from_utf8(&b[i + 2..i + 4]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                other => panic!("unknown escape \\{}", other as char),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn escape(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

fn parse_duration(s: &str) -> Duration {
    if let Some(ms) = s.strip_suffix("ms") {
        Duration::from_millis(ms.parse().unwrap())
    } else if let Some(secs) = s.strip_suffix('s') {
        Duration::from_secs(secs.parse().unwrap())
    } else {
        panic!("bad duration {s:?}")
    }
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

async fn run_file(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let world = World::new().await;
    let mut options = SessionOptions::default();
    let mut conns: BTreeMap<String, Conn> = BTreeMap::new();
    let mut tasks = Vec::new();
    let mut current = String::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        // A bare `C:` or `M:` is an empty line (editors strip trailing spaces).
        let line = match lines[i] {
            "C:" => "C: ",
            "M:" => "M: ",
            l => l,
        };
        let at = format!("{}:{}", path.display(), i + 1);
        let fail = |msg: String| format!("{at}: {msg}\n    script: {line}");
        i += 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (kind, rest) = line.split_at(line.len().min(3));
        if let Some(directive_line) = line.strip_prefix('!') {
            let mut words = directive_line.split_whitespace();
            let directive = words.next().unwrap_or_default();
            let args: Vec<&str> = words.collect();
            match directive {
                "limit" => {
                    let (k, v) = args[0].split_once('=').ok_or_else(|| fail("limit needs key=value".into()))?;
                    let l = &mut options.limits;
                    match k {
                        "max_recipients" => l.max_recipients = v.parse().unwrap(),
                        "max_message_size" => l.max_message_size = v.parse().unwrap(),
                        "max_command_line" => l.max_command_line = v.parse().unwrap(),
                        "max_text_line" => l.max_text_line = v.parse().unwrap(),
                        _ => return Err(fail(format!("unknown limit {k}"))),
                    }
                }
                "timeout" => {
                    let (k, v) = args[0].split_once('=').ok_or_else(|| fail("timeout needs kind=duration".into()))?;
                    match k {
                        "command" => options.command_timeout = parse_duration(v),
                        "data" => options.data_timeout = parse_duration(v),
                        _ => return Err(fail(format!("unknown timeout {k}"))),
                    }
                }
                "session" => {
                    current = args[0].to_string();
                    if !conns.contains_key(&current) {
                        let (client, task) = world.connect(world.context(&options));
                        let (r, w) = tokio::io::split(client);
                        conns.insert(current.clone(), Conn { reader: BufReader::new(r), writer: w });
                        tasks.push(task);
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
                "shutdown" => world.trigger.trigger(),
                "wait" => tokio::time::sleep(parse_duration(args[0])).await,
                "inbox" => {
                    let n: usize = args[1].parse().unwrap();
                    let got = world.inbox(args[0]).await.len();
                    if got != n {
                        return Err(fail(format!("expected {n} messages in {}'s INBOX, found {got}", args[0])));
                    }
                }
                "message" => {
                    let n: usize = args[1].parse().unwrap();
                    let inbox = world.inbox(args[0]).await;
                    let (_, raw) = inbox.get(n - 1).ok_or_else(|| fail(format!("no message {n}")))?;
                    let mut stored: Vec<&[u8]> = raw.split_inclusive(|b| *b == b'\n').collect();
                    stored.reverse();
                    while i < lines.len() && (lines[i].starts_with("M:") || lines[i].starts_with("M~ ")) {
                        let expect = if lines[i] == "M:" { "M: " } else { lines[i] };
                        let at = format!("{}:{}", path.display(), i + 1);
                        i += 1;
                        let got = stored.pop().ok_or_else(|| format!("{at}: stored message ended early"))?;
                        let got_text = String::from_utf8_lossy(got);
                        let got_line = got_text
                            .strip_suffix("\r\n")
                            .ok_or_else(|| format!("{at}: stored line not CRLF-terminated: {:?}", escape(got)))?;
                        let ok = match expect.split_at(3) {
                            ("M: ", want) => got_line == want,
                            (_, re) => Regex::new(&format!("^(?:{re})$")).unwrap().is_match(got_line),
                        };
                        if !ok {
                            return Err(format!(
                                "{at}: stored line differs\n    expected: {expect}\n    got:      {got_line:?}"
                            ));
                        }
                    }
                    if !stored.is_empty() {
                        stored.reverse();
                        return Err(fail(format!("stored message has more lines: {:?}", escape(&stored.concat()))));
                    }
                }
                other => return Err(fail(format!("unknown directive !{other}"))),
            }
            continue;
        }
        if conns.is_empty() {
            current = "a".into();
            let (client, task) = world.connect(world.context(&options));
            let (r, w) = tokio::io::split(client);
            conns.insert(current.clone(), Conn { reader: BufReader::new(r), writer: w });
            tasks.push(task);
        }
        let conn = conns.get_mut(&current).ok_or_else(|| fail("no session".into()))?;
        match kind {
            "C: " => {
                let mut bytes = rest.as_bytes().to_vec();
                bytes.extend_from_slice(b"\r\n");
                conn.writer.write_all(&bytes).await.map_err(|e| fail(e.to_string()))?;
            }
            "C> " => conn.writer.write_all(&unescape(rest)).await.map_err(|e| fail(e.to_string()))?,
            "S: " | "S~ " => {
                let got = read_line(conn).await.map_err(&fail)?;
                let got_text = String::from_utf8_lossy(&got).to_string();
                let Some(got_line) = got_text.strip_suffix("\r\n") else {
                    return Err(fail(format!("reply not CRLF-terminated: {:?}", escape(&got))));
                };
                let ok = if kind == "S: " {
                    got_line == rest
                } else {
                    Regex::new(&format!("^(?:{rest})$")).map_err(|e| fail(e.to_string()))?.is_match(got_line)
                };
                if !ok {
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
    drop(conns);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    Ok(())
}

fn transcript_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "transcript"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcripts() {
    let files = transcript_files();
    assert!(!files.is_empty(), "no transcripts found");
    let only = std::env::var("TRANSCRIPT").ok();
    let mut failures = Vec::new();
    for file in &files {
        if only.as_deref().is_some_and(|o| !file.to_string_lossy().contains(o)) {
            continue;
        }
        if let Err(e) = run_file(file).await {
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
