//! Durability: SIGKILL the real binary while four connections deliver,
//! restart it on the same data directory, and check in the store that every
//! message answered `250` is there exactly once with its bytes intact, and
//! that no row points at a missing or truncated blob.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{ServerProcess, SmtpClient, TestConfig, cli_ok, dot_stuff, inbox, open_store, show, split_trace};

const CONNECTIONS: usize = 4;

/// Message `n`: headers naming it, then a body of 4-20 KiB whose every line
/// depends on `n` (some lines start with a dot, to exercise transparency).
fn message(n: u64) -> Vec<u8> {
    let mut m = format!(
        "From: bob@example.test\r\nTo: alice@example.test\r\nSubject: crash-{n}\r\nMessage-ID: <crash-{n}@client.test>\r\n\r\n"
    )
    .into_bytes();
    let size = 4096 + (n.wrapping_mul(7919) % (16 * 1024)) as usize;
    let mut line = 0u64;
    while m.len() < size {
        if line % 10 == 3 {
            m.push(b'.');
        }
        m.extend_from_slice(format!("{n:08x}-{line:05} ").as_bytes());
        for j in 0..60u64 {
            m.push(b'A' + ((n.wrapping_mul(31) + line * 7 + j) % 26) as u8);
        }
        m.extend_from_slice(b"\r\n");
        line += 1;
    }
    m
}

/// The `n` of a stored message's `Subject: crash-n`.
fn message_number(rest: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(rest);
    let start = text.find("\r\nSubject: crash-")? + "\r\nSubject: crash-".len();
    let end = start + text[start..].find("\r\n")?;
    text[start..end].parse().ok()
}

/// Delivers one message on an open session; `Ok(true)` on 250.
fn deliver(c: &mut SmtpClient, n: u64) -> std::io::Result<bool> {
    c.send(b"MAIL FROM:<bob@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")?;
    let (mail, rcpt, data) = (c.read_reply()?, c.read_reply()?, c.read_reply()?);
    if mail.code != 250 || rcpt.code != 250 || data.code != 354 {
        return Ok(false);
    }
    c.send(&dot_stuff(&message(n)))?;
    Ok(c.read_reply()?.code == 250)
}

/// One sending connection: delivers until the connection breaks.
fn sender(addr: SocketAddr, next: Arc<AtomicU64>, acked: Arc<Mutex<Vec<u64>>>, deadline: Instant) {
    let Ok(mut c) = SmtpClient::connect_with_timeout(addr, Duration::from_secs(5)) else { return };
    match (c.read_reply(), c.command("EHLO client.test")) {
        (Ok(g), Ok(e)) if g.code == 220 && e.code == 250 => {}
        _ => return,
    }
    while Instant::now() < deadline {
        let n = next.fetch_add(1, Ordering::SeqCst);
        match deliver(&mut c, n) {
            Ok(true) => acked.lock().unwrap().push(n),
            Ok(false) => {}
            Err(_) => return,
        }
    }
}

fn start_server(cfg: &TestConfig) -> ServerProcess {
    ServerProcess::start(&cfg.path, &[])
}

/// One round: deliver on four connections, SIGKILL after `delay`, restart,
/// check the restarted server takes mail, and stop it with SIGTERM.
fn round(cfg: &TestConfig, delay: Duration, next: &Arc<AtomicU64>, acked: &Arc<Mutex<Vec<u64>>>) {
    let mut server = start_server(cfg);
    let before = acked.lock().unwrap().len();
    let safety = Instant::now() + Duration::from_secs(8);
    let senders: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (addr, next, acked) = (server.addr, Arc::clone(next), Arc::clone(acked));
            thread::spawn(move || sender(addr, next, acked, safety))
        })
        .collect();
    thread::sleep(delay);
    server.sigkill();
    for s in senders {
        s.join().expect("sender thread");
    }
    let this_round = acked.lock().unwrap().len() - before;
    assert!(this_round > 0, "no message was acknowledged before the kill: the round tested nothing");

    let restarted = start_server(cfg);
    let mut c = SmtpClient::open(restarted.addr);
    let n = next.fetch_add(1, Ordering::SeqCst);
    assert!(deliver(&mut c, n).expect("deliver after restart"), "the restarted server refused a message");
    acked.lock().unwrap().push(n);
    assert_eq!(c.command("QUIT").unwrap().code, 221);
    drop(c);
    stop(restarted);
}

fn stop(mut server: ServerProcess) {
    server.sigterm();
    let status = server.wait_exit(Duration::from_secs(10)).expect("server exits within 10 s of SIGTERM");
    assert!(status.success(), "exit status after SIGTERM: {status:?}; stderr: {}", server.stderr_text());
}

#[test]
fn sigkill_during_deliveries_loses_nothing_acknowledged() {
    let cfg = crate::common::write_config("warn", "5s", "");
    cli_ok(&cfg.path, &["domain", "add", "example.test"], "");
    cli_ok(&cfg.path, &["user", "add", "alice@example.test", "--password-stdin"], "secret\n");

    let next = Arc::new(AtomicU64::new(1));
    let acked = Arc::new(Mutex::new(Vec::new()));
    for delay in [600, 900, 750] {
        round(&cfg, Duration::from_millis(delay), &next, &acked);
    }

    let acked = acked.lock().unwrap().clone();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let stored = rt.block_on(async {
        let store = open_store(&cfg.data_dir).await;
        inbox(&store, "alice@example.test").await
    });
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for (record, raw) in &stored {
        assert_eq!(
            record.size,
            raw.len() as u64,
            "uid {:?}: blob {:?} is truncated or padded (size {} vs {} bytes)",
            record.uid,
            record.blob,
            record.size,
            raw.len()
        );
        let traced = split_trace(raw);
        let n = message_number(traced.rest)
            .unwrap_or_else(|| panic!("uid {:?}: stored message without a crash-N subject: {}", record.uid, show(raw)));
        assert!(traced.rest == message(n).as_slice(), "crash-{n} (uid {:?}) is corrupt", record.uid);
        *seen.entry(n).or_default() += 1;
    }
    for (n, count) in &seen {
        assert_eq!(*count, 1, "crash-{n} is stored {count} times (clients never retry)");
    }
    let missing: Vec<u64> = acked.iter().copied().filter(|n| !seen.contains_key(n)).collect();
    assert!(missing.is_empty(), "acknowledged but lost after SIGKILL: {missing:?}");
    assert!(stored.len() >= acked.len(), "stored {} < acknowledged {}", stored.len(), acked.len());
    eprintln!(
        "crash: {} acknowledged, {} stored, {} sent in total over 3 kills",
        acked.len(),
        stored.len(),
        next.load(Ordering::SeqCst) - 1
    );
}
