//! The SMTP transcripts (`tests/transcripts/*.transcript`), run by the
//! shared runner in `mailroom-testkit` (which documents the line types).
//!
//! SMTP's own directives: `!limit key=value` and `!timeout
//! command|data=DURATION` (for sessions opened afterwards), `!shutdown`
//! (begin graceful shutdown), `!inbox USER N` (N messages stored), and
//! `!message USER N` followed by `M: line` / `M~ regex` lines: the exact
//! stored bytes of the Nth message of USER's INBOX. For submission:
//! `!submission on|off` and `!tls on|off` (sessions opened afterwards are
//! a submission listener's, under TLS from the start), `!rate N` (messages
//! per hour per user; before the first submission session), `!queue N`
//! (N messages queued), and `!queued N <SENDER> RCPT...` followed by `M:`
//! lines: the Nth queued message's envelope and stored bytes.

use std::path::Path;

use mailroom_store::MailStore;
use mailroom_testkit::transcript::{self, Lines, escape, line_matches, parse_duration};
use tokio::io::DuplexStream;

use crate::harness::{SessionOptions, World};

struct SmtpWorld {
    world: World,
    options: SessionOptions,
}

impl transcript::World for SmtpWorld {
    async fn connect(&mut self) -> DuplexStream {
        let ctx = self.world.context(&self.options);
        let (client, _task) = self.world.connect(ctx, self.options.tls);
        client
    }

    async fn directive(&mut self, name: &str, args: &[&str], following: &mut Lines<'_>) -> Result<(), String> {
        let arg = |i: usize| args.get(i).copied().ok_or_else(|| format!("!{name} needs more arguments"));
        let number = |s: &str| s.parse::<u64>().map_err(|e| format!("bad number {s:?}: {e}"));
        match name {
            "limit" => {
                let (k, v) = arg(0)?.split_once('=').ok_or("limit needs key=value")?;
                let l = &mut self.options.limits;
                match k {
                    "max_recipients" => l.max_recipients = number(v)? as usize,
                    "max_message_size" => l.max_message_size = number(v)?,
                    "max_command_line" => l.max_command_line = number(v)? as usize,
                    "max_text_line" => l.max_text_line = number(v)? as usize,
                    _ => return Err(format!("unknown limit {k}")),
                }
            }
            "timeout" => {
                let (k, v) = arg(0)?.split_once('=').ok_or("timeout needs kind=duration")?;
                match k {
                    "command" => self.options.command_timeout = parse_duration(v)?,
                    "data" => self.options.data_timeout = parse_duration(v)?,
                    _ => return Err(format!("unknown timeout {k}")),
                }
            }
            "shutdown" => self.world.trigger.trigger(),
            "submission" => self.options.submission = arg(0)? == "on",
            "tls" => self.options.tls = arg(0)? == "on",
            "rate" => self.options.rate_limit = number(arg(0)?)? as u32,
            "queue" => {
                let want = number(arg(0)?)? as usize;
                let got = self.world.queue().await.len();
                if got != want {
                    return Err(format!("expected {want} queued messages, found {got}"));
                }
            }
            "queued" => {
                let n = number(arg(0)?)? as usize;
                let queue = self.world.queue().await;
                let entry = queue.get(n - 1).ok_or_else(|| format!("no queued message {n}"))?;
                let sender = entry.sender.as_ref().map(ToString::to_string).unwrap_or_default();
                let got: Vec<String> = std::iter::once(format!("<{sender}>"))
                    .chain(entry.recipients.iter().map(|r| r.address.to_string()))
                    .collect();
                let want: Vec<String> = args[1..].iter().map(|s| s.to_string()).collect();
                if got != want {
                    return Err(format!("queued message {n}: expected {want:?}, found {got:?}"));
                }
                let mut raw = Vec::new();
                self.world.store.read_blob(&entry.blob, &mut raw).await.map_err(|e| e.to_string())?;
                expect_message(&raw, following)?;
            }
            "inbox" => {
                let want = number(arg(1)?)? as usize;
                let got = self.world.inbox(arg(0)?).await.len();
                if got != want {
                    return Err(format!("expected {want} messages in {}'s INBOX, found {got}", arg(0)?));
                }
            }
            "message" => {
                let n = number(arg(1)?)? as usize;
                let inbox = self.world.inbox(arg(0)?).await;
                let (_, raw) = inbox.get(n - 1).ok_or_else(|| format!("no message {n}"))?;
                expect_message(raw, following)?;
            }
            other => return Err(format!("unknown directive !{other}")),
        }
        Ok(())
    }
}

/// Compares stored bytes with the `M:`/`M~` lines that follow.
fn expect_message(raw: &[u8], following: &mut Lines<'_>) -> Result<(), String> {
    let mut stored = raw.split_inclusive(|b| *b == b'\n');
    while let Some((number, expect)) = following.next_if(|l| l.starts_with("M:") || l.starts_with("M~ ")) {
        let expect = if expect == "M:" { "M: " } else { expect };
        let got = stored.next().ok_or_else(|| format!("line {number}: stored message ended early"))?;
        let text = String::from_utf8_lossy(got);
        let got_line = text
            .strip_suffix("\r\n")
            .ok_or_else(|| format!("line {number}: stored line not CRLF-terminated: {:?}", escape(got)))?;
        let (kind, want) = expect.split_at(3);
        if !line_matches(kind == "M: ", want, got_line)? {
            return Err(format!(
                "line {number}: stored line differs\n    expected: {expect}\n    got:      {got_line:?}"
            ));
        }
    }
    let rest: Vec<u8> = stored.flatten().copied().collect();
    if !rest.is_empty() {
        return Err(format!("stored message has more lines: {:?}", escape(&rest)));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts");
    transcript::run_dir(&dir, || async { SmtpWorld { world: World::new().await, options: SessionOptions::default() } })
        .await;
}
