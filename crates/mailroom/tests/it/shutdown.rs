//! Graceful shutdown of the real binary: SIGTERM in the middle of DATA
//! stops new connections, lets the transaction finish and be stored,
//! answers the next command with 421, and exits 0 promptly.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{
    BIN, ServerProcess, SmtpClient, assert_delivered, cli_ok, dot_stuff, inbox, open_store, write_config,
};

#[test]
fn sigterm_finishes_the_transaction_in_flight() {
    let cfg = write_config("info", "10s", "");
    cli_ok(&cfg.path, &["domain", "add", "example.test"], "");
    cli_ok(&cfg.path, &["user", "add", "alice@example.test", "--password-stdin"], "secret\n");
    let mut server = ServerProcess::start(&cfg.path, &[]);

    let mut c = SmtpClient::open(server.addr);
    assert_eq!(c.command("MAIL FROM:<bob@example.test>").unwrap().code, 250);
    assert_eq!(c.command("RCPT TO:<alice@example.test>").unwrap().code, 250);
    assert_eq!(c.command("DATA").unwrap().code, 354);
    let mut message = b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: shutdown\r\n\r\n".to_vec();
    for i in 0..200 {
        message.extend_from_slice(format!("line {i:03} of a message sent across a SIGTERM\r\n").as_bytes());
    }
    let wire = dot_stuff(&message);
    let (first, second) = wire.split_at(wire.len() / 2);
    c.send(first).unwrap();
    // Let the server read the first half before the signal.
    std::thread::sleep(Duration::from_millis(300));

    server.sigterm();
    let signalled = Instant::now();
    assert!(
        server.wait_for_log("stopped accepting", Duration::from_secs(5)),
        "no 'stopped accepting' log line after SIGTERM; stderr: {}",
        server.stderr_text()
    );

    // A new connection is refused, or connects (listen backlog) but never gets a 220.
    let late = match SmtpClient::connect_with_timeout(server.addr, Duration::from_millis(1500)) {
        Err(_) => None,
        Ok(mut late) => {
            if let Ok(reply) = late.read_reply() {
                assert_ne!(reply.code, 220, "a connection made after SIGTERM was greeted: {reply}");
            }
            Some(late)
        }
    };

    c.send(second).unwrap();
    let done = c.read_reply().expect("reply to the end of data");
    assert_eq!(done.code, 250, "the transaction in flight must complete: {done}");
    // The next command gets 421 (RFC 5321 §3.8); the server may have sent it
    // already, unsolicited, so a failing write is fine.
    let _ = c.send(b"NOOP\r\n");
    let next = c.read_reply().expect("421 after the transaction");
    assert_eq!(next.code, 421, "{next}");
    assert!(next.text().starts_with("4.3.2 "), "{next}");
    assert!(c.closed_by_server(), "the server must close the session after 421");

    let status = server.wait_exit(Duration::from_secs(5)).expect("server exits within 5 s of the last session");
    assert!(status.success(), "exit status {status:?}; stderr: {}", server.stderr_text());
    assert!(signalled.elapsed() < Duration::from_secs(8), "shutdown took {:?}", signalled.elapsed());
    drop(late);

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let stored = rt.block_on(async { inbox(&open_store(&cfg.data_dir).await, "alice@example.test").await });
    assert_eq!(stored.len(), 1, "the message finished during shutdown must be stored once");
    let (record, raw) = &stored[0];
    assert_delivered(record, raw, "bob@example.test", "alice@example.test", "ESMTP", &message);
}

/// Once `smtp listening on` is printed the server is ready, and a service
/// manager may stop it at once: SIGTERM must then be a graceful stop (exit
/// status 0), not the default action of the signal (death by SIGTERM).
///
/// To hit the moment right after the line, a shell is started beforehand
/// that sends the signal with its builtin `kill` as soon as it is told to,
/// and the thread reading the server's stdout tells it the moment the line
/// arrives. Against a server that prints before installing its handler, a
/// few of the 100 attempts lose the race.
#[test]
fn sigterm_right_after_ready_is_graceful() {
    let cfg = write_config("warn", "3s", "");
    for attempt in 1..=100 {
        let mut server = Command::new(BIN)
            .arg("--config")
            .arg(&cfg.path)
            .arg("serve")
            .env_remove("MAILROOM_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mailroom serve");
        let script = format!("read go && kill -TERM {}", server.id());
        let mut killer =
            Command::new("sh").args(["-c", &script]).stdin(Stdio::piped()).spawn().expect("spawn the killer shell");
        let mut trigger = killer.stdin.take().expect("killer stdin");
        // The thread reading stdout pulls the trigger itself, at once.
        let stdout = server.stdout.take().expect("stdout");
        let (told, announced) = mpsc::channel();
        thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut line = String::new();
            while stdout.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line.starts_with("smtp listening on ") {
                    let _ = trigger.write_all(b"go\n");
                    let _ = told.send(());
                    break;
                }
                line.clear();
            }
            // Dropping the trigger unblocks the shell either way.
        });
        if announced.recv_timeout(Duration::from_secs(10)).is_err() {
            let _ = server.kill();
            let _ = server.wait();
            let _ = killer.wait();
            panic!("attempt {attempt}: the server did not announce its address within 10 s");
        }
        // The shell is done (signal sent) before the server may be reaped.
        let killed = killer.wait().expect("wait for the killer shell");
        assert!(killed.success(), "kill -TERM failed: {killed:?}");
        let deadline = Instant::now() + Duration::from_secs(5);
        let status = loop {
            if let Some(status) = server.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = server.kill();
                let _ = server.wait();
                panic!("attempt {attempt}: the server did not exit within 5 s of SIGTERM");
            }
            thread::sleep(Duration::from_millis(5));
        };
        assert!(
            status.success(),
            "attempt {attempt}: SIGTERM right after 'smtp listening on' ended the server with {status:?}: \
             the SIGTERM handler must be installed before readiness is announced"
        );
    }
}
