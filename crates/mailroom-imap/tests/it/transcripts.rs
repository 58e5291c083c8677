//! The IMAP transcripts (`tests/transcripts/*.transcript`), run by the
//! shared runner in `mailroom-testkit` (which documents the line types and
//! the common directives `!session`, `!close`, `!closed`, `!wait`). An
//! `S:` line waits up to the runner's read timeout (5 s), so a line the
//! server sends on its own (IDLE's `* 3 EXISTS`) is simply the next `S:`.
//!
//! IMAP's own directives (USER: `alice` means `alice@example.test`;
//! MAILBOX defaults to INBOX):
//! - `!account USER`: creates an account (password "secret") with its
//!   default mailboxes.
//! - `!deliver USER [USER...]` followed by `M: line` lines (each sent with
//!   CRLF) and/or `M> raw` lines (escapes as in `C>`, no line end added):
//!   stores exactly those bytes through the real store, one delivery to
//!   every USER's INBOX, as SMTP does; INTERNALDATE is the clock's time.
//! - `!expunge USER N [MAILBOX]`: expunges the Nth message (in UID order)
//!   through the store, as POP3 or webmail would.
//! - `!flags USER N +|-|= FLAG... [in MAILBOX]`: changes the Nth message's
//!   system flags through the store (`\Seen`, `\Answered`, `\Flagged`,
//!   `\Deleted`, `\Draft`).
//! - `!count USER N [MAILBOX]`: the mailbox holds N messages.
//! - `!advance DURATION`: moves the fixed clock forward (`90s`).
//! - `!limit message=N`, `!limit line=N`, `!limit command=N`: APPEND's
//!   largest literal, the longest command line (CRLF included) and the
//!   largest command for sessions opened from now on.
//! - `!peer ADDRESS`: sessions opened from now on come from ADDRESS.
//! - `!tls`: sessions opened from now on are under TLS, as on `imaps`.
//! - `!timeout idle=DURATION`: the idle timeout of sessions opened from now.
//! - `!shutdown`: begins graceful shutdown.
//!
//! The runner has no bare `S:` line; `S~ ()` expects an empty line.

use std::path::Path;

use mailroom_store::FlagOp;
use mailroom_testkit::transcript::{self, Lines, parse_duration, unescape};
use mailroom_types::Flags;
use tokio::io::DuplexStream;

use crate::harness::World;

pub struct ImapWorld {
    pub world: World,
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

fn system_flag(name: &str) -> Result<Flags, String> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "\\seen" => Flags::SEEN,
        "\\answered" => Flags::ANSWERED,
        "\\flagged" => Flags::FLAGGED,
        "\\deleted" => Flags::DELETED,
        "\\draft" => Flags::DRAFT,
        _ => return Err(format!("unknown system flag {name}")),
    })
}

impl ImapWorld {
    pub async fn new() -> ImapWorld {
        ImapWorld { world: World::new().await }
    }

    /// Carries out a directive whose `M:` lines (if any) are in `message`.
    pub async fn run_directive(&mut self, name: &str, args: &[&str], message: Vec<u8>) -> Result<(), String> {
        let arg = |i: usize| args.get(i).copied().ok_or_else(|| format!("!{name} needs more arguments"));
        let number = |s: &str| s.parse::<usize>().map_err(|e| format!("bad number {s:?}: {e}"));
        let w = &mut self.world;
        match name {
            "account" => w.add_account(arg(0)?).await,
            "deliver" => {
                if args.is_empty() {
                    return Err("!deliver needs a user".into());
                }
                w.deliver(args, &message).await;
            }
            "expunge" => w.expunge(arg(0)?, args.get(2).copied().unwrap_or("INBOX"), number(arg(1)?)?).await?,
            "flags" => {
                let (user, n, op) = (arg(0)?, number(arg(1)?)?, arg(2)?);
                let op = match op {
                    "+" => FlagOp::Add,
                    "-" => FlagOp::Remove,
                    "=" => FlagOp::Replace,
                    other => return Err(format!("bad flag operation {other:?}")),
                };
                let mut flags = Flags::empty();
                let mut mailbox = "INBOX";
                let mut rest = args[3..].iter();
                while let Some(a) = rest.next() {
                    if *a == "in" {
                        mailbox = rest.next().ok_or("!flags ... in needs a mailbox")?;
                    } else {
                        flags = flags.union(system_flag(a)?);
                    }
                }
                w.store_flags(user, mailbox, n, op, flags).await?;
            }
            "count" => {
                let want = number(arg(1)?)?;
                let mailbox = args.get(2).copied().unwrap_or("INBOX");
                let got = w.messages(arg(0)?, mailbox).await?.len();
                if got != want {
                    return Err(format!("expected {want} messages in {}'s {mailbox}, found {got}", arg(0)?));
                }
            }
            "advance" => w.clock.advance(parse_duration(arg(0)?)?),
            "limit" => {
                let (k, v) = arg(0)?.split_once('=').ok_or("limit needs KIND=N")?;
                let v: u64 = v.parse().map_err(|e| format!("bad limit {v:?}: {e}"))?;
                match k {
                    "message" => w.limits.max_message_size = v,
                    "line" => w.limits.max_line = v as usize,
                    "command" => w.limits.max_command_size = v as usize,
                    _ => return Err(format!("unknown limit {k}")),
                }
            }
            "peer" => w.peer = arg(0)?.parse().map_err(|e| format!("bad address: {e}"))?,
            "tls" => w.tls = true,
            "timeout" => {
                let (k, v) = arg(0)?.split_once('=').ok_or("timeout needs idle=duration")?;
                match k {
                    "idle" => w.idle_timeout = parse_duration(v)?,
                    _ => return Err(format!("unknown timeout {k}")),
                }
            }
            "shutdown" => w.trigger.trigger(),
            other => return Err(format!("unknown directive !{other}")),
        }
        Ok(())
    }
}

impl transcript::World for ImapWorld {
    async fn connect(&mut self) -> DuplexStream {
        self.world.connect()
    }

    async fn directive(&mut self, name: &str, args: &[&str], following: &mut Lines<'_>) -> Result<(), String> {
        let message = if name == "deliver" { message_lines(following)? } else { Vec::new() };
        self.run_directive(name, args, message).await
    }
}

/// Runs one file of `tests/transcripts` in a fresh world; panics with the
/// failure.
async fn run(name: &str) {
    run_in(name, ImapWorld::new().await).await;
}

/// Runs one file in `world`.
async fn run_in(name: &str, mut world: ImapWorld) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts").join(format!("{name}.transcript"));
    if let Err(e) = transcript::run_file(&path, &mut world).await {
        panic!("{e}");
    }
}

/// One test per file, so they run in parallel and fail by name.
macro_rules! transcripts {
    ($($(#[$attr:meta])* $test:ident => $name:literal,)*) => {
        $(
            $(#[$attr])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                run($name).await;
            }
        )*

        /// The names above, to check that no file is left out.
        const FILES: &[&str] = &[$($name),*];
    };
}

transcripts! {
    append => "append",
    append_pipelined => "append-pipelined",
    close => "close",
    condstore => "condstore",
    copy_move => "copy-move",
    deleted_mailbox => "deleted-mailbox",
    errors => "errors",
    esearch => "esearch",
    expunge => "expunge",
    fetch => "fetch",
    fetch_many => "fetch-many",
    fetch_rfc822 => "fetch-rfc822",
    fetch_seen => "fetch-seen",
    fetch_sets => "fetch-sets",
    greeting => "greeting",
    idle => "idle",
    list => "list",
    list_return_subscribed => "list-return-subscribed",
    literal_over_message_limit => "literal-over-message-limit",
    literals => "literals",
    login => "login",
    mailboxes => "mailboxes",
    overlong => "overlong",
    qresync => "qresync",
    search => "search",
    search_subject => "search-subject",
    select => "select",
    sessions => "sessions",
    status => "status",
    store => "store",
    subscribe => "subscribe",
    uid_fetch_expunged => "uid-fetch-expunged",
    unchangedsince => "unchangedsince",
}

/// Messages stored without ENVELOPE summaries (by an older version) get
/// the same answers, computed from their headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_without_summaries() {
    run_in("fetch", ImapWorld { world: World::with_summaries(false).await }).await;
}

/// The same for a FETCH of many messages' ENVELOPEs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_many_without_summaries() {
    run_in("fetch-many", ImapWorld { world: World::with_summaries(false).await }).await;
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
