//! The POP3 transcripts (`tests/transcripts/*.transcript`), run by the
//! shared runner in `mailroom-testkit` (which documents the line types and
//! the common directives `!session`, `!close`, `!closed`, `!wait`).
//!
//! POP3's own directives:
//! - `!deliver USER [USER...]` followed by `M: line` lines (each sent with
//!   CRLF) and/or `M> raw` lines (escapes as in `C>`, no line end added):
//!   stores exactly those bytes through the real store, one delivery to
//!   every USER (`alice` means `alice@example.test`).
//! - `!expunge USER N`: expunges the Nth message of USER's INBOX as IMAP
//!   would, under any open session.
//! - `!count USER N`: USER's INBOX holds N messages.
//! - `!message USER N` followed by `M:`/`M>` lines: the exact stored bytes
//!   of the Nth message.
//! - `!unlocked USER`: waits until no session holds USER's maildrop.
//! - `!peer ADDRESS`: sessions opened from now on come from ADDRESS
//!   (e.g. 192.0.2.7, off loopback, where cleartext logins are refused).
//! - `!tls on|off`: sessions opened from now on are under TLS (as on
//!   `pop3s`) or not.
//! - `!timeout idle=DURATION`: the idle timeout of sessions opened from now.
//! - `!shutdown`: begins graceful shutdown.
//!
//! The runner has no bare `S:` line; `S~ ()` expects an empty line, and
//! `S~ \x20` / `M> \x20\r\n` a line that is one space (so no script line
//! ends in whitespace an editor could strip).

use std::path::Path;

use mailroom_testkit::transcript::{self, Lines, escape, parse_duration, unescape};
use tokio::io::DuplexStream;

use crate::harness::World;

struct Pop3World {
    world: World,
}

/// The bytes given by the `M:`/`M>` lines that follow.
fn message_lines(following: &mut Lines<'_>) -> Result<Vec<u8>, String> {
    let mut raw = Vec::new();
    while let Some((number, line)) = following.next_if(|l| l == "M:" || l.starts_with("M: ") || l.starts_with("M> ")) {
        match line.get(..3) {
            Some("M> ") => raw.extend(unescape(&line[3..]).map_err(|e| format!("line {number}: {e}"))?),
            _ => {
                raw.extend_from_slice(line.get(3..).unwrap_or("").as_bytes());
                raw.extend_from_slice(b"\r\n");
            }
        }
    }
    Ok(raw)
}

impl transcript::World for Pop3World {
    async fn connect(&mut self) -> DuplexStream {
        self.world.connect()
    }

    async fn directive(&mut self, name: &str, args: &[&str], following: &mut Lines<'_>) -> Result<(), String> {
        let arg = |i: usize| args.get(i).copied().ok_or_else(|| format!("!{name} needs more arguments"));
        let number = |s: &str| s.parse::<usize>().map_err(|e| format!("bad number {s:?}: {e}"));
        match name {
            "deliver" => {
                if args.is_empty() {
                    return Err("!deliver needs a user".into());
                }
                let raw = message_lines(following)?;
                self.world.deliver(args, &raw).await;
            }
            "expunge" => self.world.expunge(arg(0)?, number(arg(1)?)?).await?,
            "count" => {
                let want = number(arg(1)?)?;
                let got = self.world.inbox(arg(0)?).await.len();
                if got != want {
                    return Err(format!("expected {want} messages in {}'s INBOX, found {got}", arg(0)?));
                }
            }
            "message" => {
                let n = number(arg(1)?)?;
                let want = message_lines(following)?;
                let inbox = self.world.inbox(arg(0)?).await;
                let (_, raw) = inbox.get(n - 1).ok_or_else(|| format!("no message {n}"))?;
                if *raw != want {
                    return Err(format!(
                        "stored message differs\n    expected: {}\n    got:      {}",
                        escape(&want),
                        escape(raw)
                    ));
                }
            }
            "unlocked" => self.world.wait_unlocked(arg(0)?).await?,
            "peer" => self.world.peer = arg(0)?.parse().map_err(|e| format!("bad address: {e}"))?,
            "tls" => self.world.tls = arg(0)? == "on",
            "timeout" => {
                let (k, v) = arg(0)?.split_once('=').ok_or("timeout needs idle=duration")?;
                match k {
                    "idle" => self.world.idle_timeout = parse_duration(v)?,
                    _ => return Err(format!("unknown timeout {k}")),
                }
            }
            "shutdown" => self.world.trigger.trigger(),
            other => return Err(format!("unknown directive !{other}")),
        }
        Ok(())
    }
}

/// Runs one file of `dir` in a fresh world; panics with the failure.
async fn run(dir: &str, name: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join(format!("{name}.transcript"));
    let mut world = Pop3World { world: World::new().await };
    if let Err(e) = transcript::run_file(&path, &mut world).await {
        panic!("{e}");
    }
}

/// One test per file, so they run in parallel and fail by name.
macro_rules! transcripts {
    ($dir:literal: $($test:ident => $name:literal,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                run($dir, $name).await;
            }
        )*

        /// The names above, to check that no file is left out.
        const FILES: &[&str] = &[$($name),*];
    };
}

transcripts! { "tests/transcripts":
    auth_plain => "auth-plain",
    authorization => "authorization",
    capa => "capa",
    dropped => "dropped",
    in_use => "in-use",
    lines => "lines",
    octets_without_final_crlf => "octets-without-final-crlf",
    pipelining => "pipelining",
    shutdown => "shutdown",
    snapshot => "snapshot",
    stuffing => "stuffing",
    timeout => "timeout",
    transaction => "transaction",
}

#[test]
fn every_transcript_file_has_a_test() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts");
    let mut names: Vec<String> =
        transcript::files(&dir).iter().map(|p| p.file_stem().unwrap().to_string_lossy().into_owned()).collect();
    names.sort();
    let mut listed: Vec<&str> = FILES.to_vec();
    listed.sort();
    assert_eq!(names, listed, "add new transcripts to the transcripts! list in tests/it/transcripts.rs");
}
