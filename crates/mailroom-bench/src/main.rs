//! `mailroom-bench`: how fast Mailroom durably accepts mail over SMTP, and
//! how fast it serves it back (POP3, IMAP, webmail).
//!
//! # What is measured, and why
//!
//! Mailroom answers `250 2.0.0 Ok: queued as ID` to the final `.` of a
//! message only once the message is durable: its bytes written and fsync'd,
//! its metadata committed (group-committed with concurrent deliveries). The
//! number that matters is therefore the **durable accept rate**: messages per
//! second that received a 250 — each of which would survive a crash the
//! moment the client saw the reply. Throughput without that guarantee is
//! easy; this tool measures the one with it, and checks the guarantee: after
//! each run the server is stopped and its store opened directly, and every
//! accepted message must be there (`stored N of N accepted`), else the tool
//! fails.
//!
//! Each run starts a fresh server (`mailroom serve`, the release binary) on a
//! temporary data directory with domain `example.test` and account
//! `alice@example.test`, listening on an ephemeral loopback port. Then:
//!
//! - `smtp` mode: `--connections` concurrent sessions from this process send
//!   `--messages` messages in total over real TCP, many per connection: EHLO
//!   once, then per message `MAIL`, `RCPT` and `DATA` pipelined in one write
//!   (RFC 2920), the body (a realistic header block and text lines, exactly
//!   `--size` octets before dot-stuffing), the final `.`, and the 250.
//!   Latency is from the `MAIL` write to the 250 read, so it includes the
//!   fsync and commit wait.
//! - `smtp-source` mode: Postfix's `smtp-source` is the client instead, an
//!   independent implementation (no pipelining, by default one connection
//!   per message), for a second opinion on the rate.
//!
//! - `outbound` mode (see `outbound.rs`): the other direction, mail a user
//!   sends to another domain. Postfix's `smtp-sink` listens on loopback as
//!   that domain's server (`[delivery.routes]`); `--connections` submission
//!   sessions each do EHLO, STARTTLS (verifying the server's generated
//!   self-signed certificate), EHLO, AUTH PLAIN as alice, then their share
//!   of the messages, pipelined as in `smtp` mode. Measured: the
//!   **submission rate** (accepted messages from the first `MAIL` to the
//!   last 250, with latency percentiles), and the **end-to-end delivery
//!   rate**: messages from the first `MAIL` until the server's queue is
//!   empty again, polled from a second store handle every 20 ms — every
//!   message then relayed over the queue runner's reused, pipelined
//!   connections. Also the server's CPU time over that span (from
//!   `/proc/PID/task/*/schedstat`), its peak RSS, how many messages were
//!   still queued when submission ended (how far delivery lags), and two
//!   checks: smtp-sink's own counter must show every message, and alice's
//!   INBOX must hold no delivery status notification (a bounce or delay
//!   warning would land there). The targets: 2,000 messages/s end
//!   to end for 10,000 messages of 10 KiB to one destination (Postfix
//!   relayed 716/s on such a machine), and 1,000 messages/s of submission
//!   over 20 connections.
//!
//! - `pop3` mode (see `pop3.rs`): a large mailbox of mixed sizes is stored
//!   directly before the server starts, then read back over POP3: STAT
//!   latency, RETR throughput of the whole mailbox on one connection
//!   (pipelined, and one at a time) and memory per idle session.
//! - `imap` mode (see `imap.rs`): APPEND of a large mailbox of mixed sizes
//!   over one connection (LITERAL+ with a window of commands, and one at a
//!   time with synchronising literals); then, on a mailbox stored directly
//!   before the server starts, the first access: SELECT, `UID FETCH` of
//!   FLAGS/RFC822.SIZE/ENVELOPE and of every body, `UID SEARCH` SUBJECT and
//!   TEXT; and memory per session in IDLE with INBOX selected.
//! - `webmail` mode (see `webmail.rs`): alice's INBOX is stored directly
//!   before the server starts (`--messages` messages of mixed sizes, then
//!   a 100 KiB `text/html` newsletter, the newest), and the webmail is
//!   served on an ephemeral plain HTTP port. A built-in keep-alive HTTP/1.1
//!   client (`http.rs`) signs in over `POST /api/session`, then times one
//!   request at a time, cold and over `--samples` repetitions: the list's
//!   first page (`GET /mail/ID`, checked for its 50 rows), the
//!   newsletter's page and its sanitised body, and the JSON list. Then
//!   `--users` signed-in sessions browse at once for `--duration` seconds
//!   (list, a random page, a random message, its body if HTML; a random
//!   think time up to `--think-ms` between requests): requests/s, latency
//!   percentiles, errors. Latency is the client's over loopback. The
//!   issue's targets: the first page of a 10,000-message folder in under
//!   100 ms, a 100 KiB HTML message in under 50 ms, 200 users browsing
//!   with p99 under 300 ms.
//!
//! Meanwhile the server's resident memory is sampled from `/proc/PID/status`
//! every 20 ms, and its `VmHWM` (the kernel's exact high-water mark) read
//! before it is stopped. Reported per run and as the median over `--runs`:
//! accepted messages, errors, wall time, messages/s, latency percentiles, peak
//! RSS and the stored-count check.
//!
//! Everything is bounded: every reply, admin command, start-up and shutdown
//! has a time limit, and the whole load has `--timeout`. Only loopback is
//! used. The client shares the machine with the server, so on a small
//! machine both compete for CPU; the figures are for comparing builds on one
//! machine, not absolute capacity.

mod client;
mod http;
mod imap;
mod mailbox;
mod message;
mod outbound;
mod pop3;
mod server;
mod sink;
mod source;
mod stats;
mod webmail;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail, ensure};
use clap::{Args, Parser, Subcommand};

use crate::message::{MAX_CONNECTIONS, MAX_MESSAGES, MAX_RUNS, MessageTemplate};

/// The largest mailbox the `pop3` mode builds.
const MAX_POP3_MESSAGES: usize = 1_000_000;
/// The most idle POP3 sessions (each takes a descriptor here and in the
/// server).
const MAX_IDLE_SESSIONS: usize = 10_000;
/// The deepest RETR pipeline.
const MAX_WINDOW: usize = 1000;
/// Connections beyond the idle sessions the server must admit: the
/// measuring session and late closes of the warm-up ones.
const WARM_UP_ROOM: usize = 64;
/// The most requests of one kind the `webmail` mode times one at a time.
const MAX_SAMPLES: usize = 100_000;
/// The most webmail users browsing at once (each signs in with a password
/// hash and holds a connection).
const MAX_USERS: usize = 5000;
/// The longest think time between a browsing user's requests: below the
/// server's default `web.idle_timeout` (60 s), which would otherwise close
/// idle connections and count as errors.
const MAX_THINK_MS: u64 = 30_000;
use crate::server::{BenchServer, RssSampler, ServerSetup, Spent, Usage};
use crate::stats::{Latency, RunReport};

/// Benchmarks Mailroom's durable SMTP accept rate, latency and memory.
#[derive(Parser)]
#[command(name = "mailroom-bench", version)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

/// Which client sends the mail.
#[derive(Subcommand)]
enum Mode {
    /// Send with the built-in pipelining client, many messages per connection.
    Smtp(Common),
    /// Send with Postfix's smtp-source (package `postfix`).
    SmtpSource(SourceArgs),
    /// Read a large mailbox back over POP3: STAT latency, RETR throughput,
    /// memory per idle session.
    Pop3(Pop3Args),
    /// Write a large mailbox with APPEND and read it back over IMAP: APPEND
    /// rate, SELECT, FETCH and SEARCH times on first access, memory per
    /// session in IDLE.
    Imap(ImapArgs),
    /// Submit mail for a remote domain (STARTTLS, AUTH) and time its relay
    /// to Postfix's smtp-sink until the queue is empty.
    Outbound(OutboundArgs),
    /// Browse a large INBOX in the webmail: the list's first page and a
    /// 100 KiB HTML message one request at a time, then many signed-in
    /// users at once.
    Webmail(WebmailArgs),
}

/// Options of both modes.
#[derive(Args, Clone)]
struct Common {
    /// Concurrent SMTP connections.
    #[arg(long, default_value_t = 20)]
    connections: usize,
    /// Messages in total per run, split evenly over the connections.
    #[arg(long, default_value_t = 5000)]
    messages: usize,
    /// Message size in octets: 10240, 10k, 1m...
    #[arg(long, default_value = "10k", value_parser = message::parse_size)]
    size: usize,
    #[command(flatten)]
    run: RunArgs,
}

/// How runs are made, in every mode.
#[derive(Args, Clone)]
struct RunArgs {
    /// Runs, each on a fresh server and data directory; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The mailroom binary (default: `mailroom` next to this executable,
    /// built with `cargo build --release -p mailroom` if missing).
    #[arg(long, value_name = "PATH")]
    server: Option<PathBuf>,
    /// Where to create the temporary data directories (default: the system
    /// temporary directory). Its filesystem decides what fsync costs.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Seconds the client part of one run may take before the tool gives up.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    timeout: u64,
}

/// Options of the `smtp-source` mode.
#[derive(Args, Clone)]
struct SourceArgs {
    #[command(flatten)]
    common: Common,
    /// The smtp-source binary (default: found on PATH or in /usr/sbin).
    #[arg(long, value_name = "PATH")]
    smtp_source: Option<PathBuf>,
    /// Pass `-d`: keep each session's connection for all its messages
    /// instead of smtp-source's default of one connection per message.
    #[arg(long)]
    reuse_connections: bool,
}

/// Options of the `outbound` mode.
#[derive(Args, Clone)]
struct OutboundArgs {
    /// Concurrent submission connections.
    #[arg(long, default_value_t = 20)]
    connections: usize,
    /// Messages in total per run, split evenly over the connections.
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// Message size in octets: 10240, 10k, 1m...
    #[arg(long, default_value = "10k", value_parser = message::parse_size)]
    size: usize,
    /// The smtp-sink binary (default: found on PATH or in /usr/sbin).
    #[arg(long, value_name = "PATH")]
    smtp_sink: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

/// Options of the `pop3` mode.
#[derive(Args, Clone)]
struct Pop3Args {
    /// Messages in alice's INBOX, stored before the server starts.
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// Their total size, spread log-normally over 2 KiB to 2 MiB per
    /// message: octets, or with k/m suffixes (binary: 450MB is 450 MiB).
    #[arg(long, default_value = "450MB", value_parser = message::parse_size)]
    total_size: usize,
    /// Unauthenticated sessions held open to measure their memory (0: skip).
    #[arg(long, default_value_t = 1000)]
    idle_sessions: usize,
    /// RETR commands outstanding at once in the pipelined pass.
    #[arg(long, default_value_t = 8)]
    window: usize,
    /// Skip the second, one-command-at-a-time RETR pass.
    #[arg(long)]
    no_strict: bool,
    /// Record the server with `perf record -g` during the pipelined RETR
    /// pass into PATH.runN.
    #[arg(long, value_name = "PATH")]
    perf: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

/// Options of the `imap` mode.
#[derive(Args, Clone)]
struct ImapArgs {
    /// Messages appended, and in the INBOX stored for the first access.
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// Their total size, spread log-normally over 2 KiB to 2 MiB per
    /// message: octets, or with k/m suffixes (binary: 450MB is 450 MiB).
    #[arg(long, default_value = "450MB", value_parser = message::parse_size)]
    total_size: usize,
    /// APPEND commands outstanding at once (LITERAL+) on the one connection.
    #[arg(long, default_value_t = 8)]
    window: usize,
    /// Messages appended strictly one at a time with synchronising literals
    /// (the first ones of the same set; 0: skip).
    #[arg(long, default_value_t = 1000)]
    strict_messages: usize,
    /// Sessions held in IDLE with INBOX selected to measure their memory
    /// (0: skip).
    #[arg(long, default_value_t = 1000)]
    idle_sessions: usize,
    #[command(flatten)]
    run: RunArgs,
}

/// Options of the `webmail` mode.
#[derive(Args, Clone)]
struct WebmailArgs {
    /// Messages in alice's INBOX, stored before the server starts (the
    /// HTML newsletter comes on top).
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// Their total size, spread log-normally over 2 KiB to 2 MiB per
    /// message: octets, or with k/m suffixes (binary: 100MB is 100 MiB).
    /// The list reads headers only, so this mostly costs storing time.
    #[arg(long, default_value = "100MB", value_parser = message::parse_size)]
    total_size: usize,
    /// Requests of each kind timed one at a time, after the cold one.
    #[arg(long, default_value_t = 50)]
    samples: usize,
    /// Signed-in users browsing at once, each on its own connection (0:
    /// skip).
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// Seconds the users browse.
    #[arg(long, default_value_t = 20, value_name = "SECS")]
    duration: u64,
    /// The longest think time between a user's requests, in ms (uniform
    /// from 0: a person clicking through a folder; 200: overload, for
    /// capacity; 0: none, a closed loop).
    #[arg(long, default_value_t = 4000, value_name = "MS")]
    think_ms: u64,
    #[command(flatten)]
    run: RunArgs,
}

/// Makes `runs` runs with `one` (which prints its report), then the line
/// the medians follow. Every run's servers, and so their data directories,
/// are handed back to be kept until the end: as in the SMTP modes, deleting
/// thousands of blob files between runs would slow the next run's writes.
async fn each_run<R, S, Fut>(runs: usize, mut one: impl FnMut(usize) -> Fut) -> Result<(Vec<R>, Vec<S>)>
where
    Fut: std::future::Future<Output = Result<(R, S)>>,
{
    let (mut reports, mut kept) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for run in 1..=runs {
        let (report, server) = one(run).await?;
        reports.push(report);
        kept.push(server);
    }
    println!();
    if reports.len() > 1 {
        println!("median of {} runs:", reports.len());
    }
    Ok((reports, kept))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mailroom-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mailroom-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Validates the options, then runs every run and prints the summary.
async fn run(cli: Cli) -> Result<()> {
    let (common, source) = match cli.mode {
        Mode::Pop3(args) => return pop3_runs(args).await,
        Mode::Imap(args) => return imap_runs(args).await,
        Mode::Outbound(args) => return outbound_runs(args).await,
        Mode::Webmail(args) => return webmail_runs(args).await,
        Mode::Smtp(common) => (common, None),
        Mode::SmtpSource(args) => {
            let binary = source::locate(args.smtp_source.as_deref())?;
            (args.common, Some((binary, args.reuse_connections)))
        }
    };
    check_load(common.connections, common.messages, &common.run)?;
    ensure!(common.size > 0, "--size must be positive");
    if source.is_none() {
        // Checks the size against the header block before anything starts.
        MessageTemplate::new(common.size, 1)?;
    }
    let mode = if source.is_some() { "smtp-source" } else { "smtp" };
    let binary = server_binary(
        common.run.server.as_deref(),
        format!(
            "mailroom-bench {mode}: {} connections, {} messages of {} octets, {} run(s)",
            common.connections, common.messages, common.size, common.run.runs
        ),
    )?;
    let setup = ServerSetup::new(binary, common.run.dir.clone(), common.connections, common.size);

    let mut reports = Vec::with_capacity(common.run.runs);
    // Every run's data directory is kept until all runs are over: deleting
    // thousands of message files between runs makes the file system's inode
    // allocator skip the recently freed inodes for a while, which slowed the
    // next run by up to 3x: the benchmark would measure its own clean-up.
    let mut kept = Vec::with_capacity(common.run.runs);
    for run in 1..=common.run.runs {
        let (report, server) = match &source {
            None => smtp_run(&setup, &common, run).await?,
            Some((binary, reuse)) => source_run(&setup, &common, binary, *reuse).await?,
        };
        kept.push(server);
        report.print(run, common.run.runs);
        ensure!(
            report.stored >= report.accepted,
            "DURABILITY FAILURE in run {run}: stored {} of {} accepted messages",
            report.stored,
            report.accepted
        );
        if report.stored > report.accepted {
            println!(
                "  note: {} more stored than accepted (a message stored whose 250 was lost or refused late)",
                report.stored - report.accepted
            );
        }
        reports.push(report);
    }
    println!();
    if reports.len() > 1 {
        println!("median of {} runs:", reports.len());
    }
    stats::print_summary(&reports);
    let failed: u64 = reports.iter().map(|r| r.errors + r.unsent).sum();
    if failed > 0 {
        bail!("{failed} message(s) were not accepted; see the client errors above");
    }
    Ok(())
}

/// Checks the options of the modes that send messages over connections.
fn check_load(connections: usize, messages: usize, run: &RunArgs) -> Result<()> {
    ensure!((1..=MAX_CONNECTIONS).contains(&connections), "--connections must be 1..={MAX_CONNECTIONS}");
    ensure!((1..=MAX_MESSAGES).contains(&messages), "--messages must be 1..={MAX_MESSAGES}");
    ensure!((1..=MAX_RUNS).contains(&run.runs), "--runs must be 1..={MAX_RUNS}");
    ensure!(run.timeout > 0, "--timeout must be positive");
    Ok(())
}

/// Every run of the `pop3` mode, then the summary.
async fn pop3_runs(args: Pop3Args) -> Result<()> {
    ensure!((1..=MAX_POP3_MESSAGES).contains(&args.messages), "--messages must be 1..={MAX_POP3_MESSAGES}");
    ensure!(args.idle_sessions <= MAX_IDLE_SESSIONS, "--idle-sessions must be 0..={MAX_IDLE_SESSIONS}");
    ensure!((1..=MAX_WINDOW).contains(&args.window), "--window must be 1..={MAX_WINDOW}");
    ensure!((1..=MAX_RUNS).contains(&args.run.runs), "--runs must be 1..={MAX_RUNS}");
    ensure!(args.run.timeout > 0, "--timeout must be positive");
    let sizes = mailbox::sizes(args.messages, args.total_size)?;
    let binary = server_binary(
        args.run.server.as_deref(),
        format!(
            "mailroom-bench pop3: {} messages, {} octets in total ({:.1} MB), {} idle sessions, window {}, {} run(s)",
            args.messages,
            args.total_size,
            args.total_size as f64 / 1e6,
            args.idle_sessions,
            args.window,
            args.run.runs
        ),
    )?;
    let setup = ServerSetup {
        pop3: true,
        ..ServerSetup::new(binary, args.run.dir.clone(), args.idle_sessions + WARM_UP_ROOM, mailbox::MAX_MESSAGE)
    };
    let options = pop3::Options {
        idle_sessions: args.idle_sessions,
        window: args.window,
        strict: !args.no_strict,
        perf: args.perf.clone(),
        limit: Duration::from_secs(args.run.timeout),
    };
    let runs = args.run.runs;
    let (setup, options, sizes) = (&setup, &options, &sizes);
    let (reports, _kept) = each_run(runs, |run| async move {
        let (report, server) = pop3::run(setup, options, sizes, run).await?;
        report.print(run, runs);
        Ok((report, server))
    })
    .await?;
    pop3::print_summary(&reports);
    Ok(())
}

/// Every run of the `imap` mode, then the summary.
async fn imap_runs(args: ImapArgs) -> Result<()> {
    ensure!((1..=MAX_POP3_MESSAGES).contains(&args.messages), "--messages must be 1..={MAX_POP3_MESSAGES}");
    ensure!(args.strict_messages <= args.messages, "--strict-messages must be 0..={}", args.messages);
    ensure!(args.idle_sessions <= MAX_IDLE_SESSIONS, "--idle-sessions must be 0..={MAX_IDLE_SESSIONS}");
    ensure!((1..=MAX_WINDOW).contains(&args.window), "--window must be 1..={MAX_WINDOW}");
    ensure!((1..=MAX_RUNS).contains(&args.run.runs), "--runs must be 1..={MAX_RUNS}");
    ensure!(args.run.timeout > 0, "--timeout must be positive");
    let sizes = mailbox::sizes(args.messages, args.total_size)?;
    let binary = server_binary(
        args.run.server.as_deref(),
        format!(
            "mailroom-bench imap: {} messages, {} octets in total ({:.1} MB), window {}, {} one at a time, {} idle sessions, {} run(s)",
            args.messages,
            args.total_size,
            args.total_size as f64 / 1e6,
            args.window,
            args.strict_messages,
            args.idle_sessions,
            args.run.runs
        ),
    )?;
    let setup = ServerSetup {
        imap: true,
        ..ServerSetup::new(binary, args.run.dir.clone(), args.idle_sessions + WARM_UP_ROOM, mailbox::MAX_MESSAGE)
    };
    let options = imap::Options {
        window: args.window,
        strict_messages: args.strict_messages,
        idle_sessions: args.idle_sessions,
        limit: Duration::from_secs(args.run.timeout),
    };
    let corpus = imap::Corpus::generate(&sizes).await?;
    let runs = args.run.runs;
    let (setup, options, sizes, corpus) = (&setup, &options, &sizes, &corpus);
    let (reports, _kept) = each_run(runs, |run| async move {
        let (report, servers) = imap::run(setup, options, sizes, corpus, run).await?;
        report.print(run, runs);
        Ok((report, servers))
    })
    .await?;
    imap::print_summary(&reports);
    Ok(())
}

/// Every run of the `outbound` mode, then the summary.
async fn outbound_runs(args: OutboundArgs) -> Result<()> {
    check_load(args.connections, args.messages, &args.run)?;
    // Checks the size against the header block before anything starts.
    MessageTemplate::new(args.size, 1)?;
    let sink = sink::locate(args.smtp_sink.as_deref())?;
    let binary = server_binary(
        args.run.server.as_deref(),
        format!(
            "mailroom-bench outbound: {} submission connections, {} messages of {} octets to smtp-sink, {} run(s)",
            args.connections, args.messages, args.size, args.run.runs
        ),
    )?;
    let setup =
        ServerSetup { submission: true, ..ServerSetup::new(binary, args.run.dir.clone(), args.connections, args.size) };
    let options = outbound::Options {
        connections: args.connections,
        messages: args.messages,
        size: args.size,
        sink,
        limit: Duration::from_secs(args.run.timeout),
    };
    let mut reports = Vec::with_capacity(args.run.runs);
    // As in the other modes, every run's directory is kept until the end.
    let mut kept = Vec::with_capacity(args.run.runs);
    let mut failures = Vec::new();
    for run in 1..=args.run.runs {
        let (report, server) = outbound::run(&setup, &options, run).await?;
        kept.push(server);
        report.print(run, args.run.runs);
        if let Some(failure) = report.failure() {
            println!("  FAILED: {failure}");
            failures.push(format!("run {run}: {failure}"));
        }
        reports.push(report);
    }
    println!();
    if reports.len() > 1 {
        println!("median of {} runs:", reports.len());
    }
    outbound::print_summary(&reports);
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    Ok(())
}

/// Every run of the `webmail` mode, then the summary.
async fn webmail_runs(args: WebmailArgs) -> Result<()> {
    ensure!((1..=MAX_POP3_MESSAGES).contains(&args.messages), "--messages must be 1..={MAX_POP3_MESSAGES}");
    ensure!((1..=MAX_SAMPLES).contains(&args.samples), "--samples must be 1..={MAX_SAMPLES}");
    ensure!(args.users <= MAX_USERS, "--users must be 0..={MAX_USERS}");
    ensure!(args.think_ms <= MAX_THINK_MS, "--think-ms must be 0..={MAX_THINK_MS}");
    ensure!((1..=MAX_RUNS).contains(&args.run.runs), "--runs must be 1..={MAX_RUNS}");
    ensure!(args.duration > 0, "--duration must be positive");
    ensure!(args.run.timeout > args.duration, "--timeout must exceed --duration");
    let sizes = mailbox::sizes(args.messages, args.total_size)?;
    let binary = server_binary(
        args.run.server.as_deref(),
        format!(
            "mailroom-bench webmail: {} messages, {} octets in total ({:.1} MB) and a {} KiB HTML message, \
             {} samples, {} users for {} s with 0-{} ms think time, {} run(s)",
            args.messages,
            args.total_size,
            args.total_size as f64 / 1e6,
            webmail::NEWSLETTER_SIZE / 1024,
            args.samples,
            args.users,
            args.duration,
            args.think_ms,
            args.run.runs
        ),
    )?;
    let setup = ServerSetup {
        http: true,
        ..ServerSetup::new(binary, args.run.dir.clone(), args.users + WARM_UP_ROOM, mailbox::MAX_MESSAGE)
    };
    let options = webmail::Options {
        samples: args.samples,
        users: args.users,
        duration: Duration::from_secs(args.duration),
        think_ms: args.think_ms,
        limit: Duration::from_secs(args.run.timeout),
    };
    let runs = args.run.runs;
    let (setup, options, sizes) = (&setup, &options, &sizes);
    let (reports, _kept) = each_run(runs, |run| async move {
        let (report, server) = webmail::run(setup, options, sizes, run).await?;
        report.print(run, runs);
        Ok((report, server))
    })
    .await?;
    webmail::print_summary(&reports);
    let errors: u64 = reports.iter().map(|r| r.browse.errors).sum();
    if errors > 0 {
        bail!("{errors} webmail request(s) failed while browsing; see the first error of each run above");
    }
    Ok(())
}

/// One run with the built-in client.
async fn smtp_run(setup: &ServerSetup, common: &Common, run: usize) -> Result<(RunReport, BenchServer)> {
    let template = Arc::new(MessageTemplate::new(common.size, run)?);
    let mut server = BenchServer::start(setup)?;
    describe_dir(&server, run);
    let idle_kib = server.status_kib("VmRSS")?;
    let sampler = RssSampler::start(server.pid());
    let usage = Usage::start(server.pid());
    let load = client::Load {
        addr: server.addr(),
        connections: common.connections,
        messages: common.messages,
        limit: Duration::from_secs(common.run.timeout),
        submission: None,
    };
    let outcome = client::run(&load, Arc::clone(&template)).await;
    let spent = usage.since();
    let samples = sampler.finish()?;
    let alive = server.ensure_running();
    let mut outcome = match (outcome, alive) {
        (Ok(outcome), Ok(())) => outcome,
        (Ok(o), Err(e)) => {
            return Err(e.context(format!("{} accepted, {} errors, {} unsent", o.accepted, o.errors, o.unsent)));
        }
        (Err(e), _) => return Err(e),
    };
    let end = finish(&mut server).await?;
    let load = ClientFigures {
        accepted: outcome.accepted,
        errors: outcome.errors,
        unsent: outcome.unsent,
        wall: outcome.wall,
        size: template.size(),
        latency: Latency::of(&mut outcome.latencies),
        spent,
    };
    Ok((load.report(idle_kib, &samples, end), server))
}

/// One run with Postfix's smtp-source.
async fn source_run(
    setup: &ServerSetup,
    common: &Common,
    binary: &std::path::Path,
    reuse: bool,
) -> Result<(RunReport, BenchServer)> {
    let mut server = BenchServer::start(setup)?;
    describe_dir(&server, 0);
    let idle_kib = server.status_kib("VmRSS")?;
    let sampler = RssSampler::start(server.pid());
    let usage = Usage::start(server.pid());
    let job = source::Job {
        binary: binary.to_path_buf(),
        addr: server.addr(),
        connections: common.connections,
        messages: common.messages,
        size: common.size,
        reuse_connections: reuse,
        limit: Duration::from_secs(common.run.timeout),
        dir: server.dir().to_path_buf(),
    };
    let outcome = tokio::task::spawn_blocking(move || source::run(&job)).await;
    let spent = usage.since();
    let samples = sampler.finish()?;
    server.ensure_running()?;
    let outcome = outcome??;
    let end = finish(&mut server).await?;
    let load = ClientFigures {
        accepted: outcome.accepted,
        errors: outcome.errors,
        unsent: outcome.unsent,
        wall: outcome.wall,
        size: common.size,
        latency: None,
        spent,
    };
    Ok((load.report(idle_kib, &samples, end), server))
}

/// What the client side of a run measured, whichever client it was.
struct ClientFigures {
    accepted: u64,
    errors: u64,
    unsent: u64,
    wall: Duration,
    size: usize,
    latency: Option<Latency>,
    spent: Spent,
}

impl ClientFigures {
    /// The run's report: these client figures with the server's.
    fn report(self, idle_kib: u64, samples: &server::RssSamples, end: Finish) -> RunReport {
        RunReport {
            accepted: self.accepted,
            errors: self.errors,
            unsent: self.unsent,
            wall: self.wall,
            size: self.size,
            latency: self.latency,
            spent: self.spent,
            hwm_kib: end.hwm_kib,
            sampled_peak_kib: samples.peak_kib,
            samples: samples.count,
            idle_kib,
            stored: end.stored,
            shutdown: end.shutdown,
        }
    }
}

/// What is measured once the load is over.
struct Finish {
    /// VmHWM just before SIGTERM, in KiB.
    hwm_kib: u64,
    /// Time from SIGTERM to exit.
    shutdown: Duration,
    /// Messages in alice's INBOX after the exit.
    stored: u64,
}

/// Reads VmHWM, stops the server, shows what it logged and counts the
/// stored messages.
async fn finish(server: &mut BenchServer) -> Result<Finish> {
    let hwm_kib = server.status_kib("VmHWM")?;
    let shutdown = server.stop()?;
    if let Some((count, tail)) = server.stderr_summary() {
        eprintln!("note: the server logged {count} line(s) at warn or above; the last:\n    {tail}");
    }
    let stored = server::stored_count(server.data_dir()).await?;
    Ok(Finish { hwm_kib, shutdown, stored })
}

/// Prints where the data lives, once, and warns when fsync is free there.
fn describe_dir(server: &BenchServer, run: usize) {
    if run > 1 {
        return;
    }
    let fs = server::filesystem_type(server.dir()).unwrap_or_else(|| "unknown".to_string());
    println!("data directory: {} (filesystem {fs})", server.dir().display());
    if matches!(fs.as_str(), "tmpfs" | "ramfs") {
        println!("WARNING: {fs} makes fsync free; durable-accept figures will look better than on disk (see --dir)");
    }
}

/// ` (built N min ago)` for a file, or nothing if its time is unknown.
/// Finds the server binary and says which it is, warning when either the
/// client or the server is a debug build; `banner` describes the mode's run.
fn server_binary(explicit: Option<&std::path::Path>, banner: String) -> Result<std::path::PathBuf> {
    if cfg!(debug_assertions) {
        eprintln!("WARNING: this is a debug build of mailroom-bench; the client may be the bottleneck (use --release)");
    }
    let binary = server::locate_binary(explicit)?;
    println!("{banner}");
    println!("server binary: {}{}", binary.display(), age(&binary));
    if binary.components().any(|c| c.as_os_str() == "debug") {
        println!("WARNING: the server binary looks like a debug build; figures will not reflect a release build");
    }
    Ok(binary)
}

fn age(path: &std::path::Path) -> String {
    let Ok(elapsed) = std::fs::metadata(path).and_then(|m| m.modified()).map(|t| t.elapsed()) else {
        return String::new();
    };
    match elapsed {
        Ok(d) if d.as_secs() < 120 => format!(" (built {} s ago)", d.as_secs()),
        Ok(d) => format!(" (built {} min ago)", d.as_secs() / 60),
        Err(_) => String::new(),
    }
}
