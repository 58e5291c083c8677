//! DKIM on the way out, checked by an independent verifier: alice submits
//! with swaks to her server, which holds an RSA and an Ed25519 key for
//! example.test and signs with both; the message is delivered over SMTP
//! (a route) to a second server; there dkimpy (Debian's python3-dkim)
//! verifies each signature, fetching the public keys from a real dnsmasq
//! on loopback that serves the records `mailroom dkim` prints.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailroom_services::dkim::{self, Algorithm};
use mailroom_testkit::dnsmasq::{Dnsmasq, Record};
use mailroom_types::Domain;

use crate::common::{InProcess, inbox, require_tool, run_with_timeout, show};

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@other.test";
/// Debian's interpreter, where python3-dkim lives (not a pyenv shim).
const PYTHON: &str = "/usr/bin/python3";

/// True when dkimpy and dnspython can be imported; skips (or fails on CI)
/// otherwise.
fn have_dkimpy() -> bool {
    let mut cmd = Command::new(PYTHON);
    cmd.args(["-c", "import dkim, dns.resolver"]);
    let ok = Path::new(PYTHON).exists() && run_with_timeout(cmd, b"", Duration::from_secs(20)).status.success();
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("python3-dkim is not installed, but CI is set: scripts/test must install it");
        }
        eprintln!("SKIPPED: python3-dkim not installed");
    }
    ok
}

/// dkimpy's verdict on each signature of `message`, keys from `dns`:
/// lines "<index> <algorithm> <selector> pass|fail".
fn dkimpy(message: &[u8], dns: SocketAddr) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("message.eml");
    std::fs::write(&file, message).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/dkim/verify.py");
    let mut cmd = Command::new(PYTHON);
    cmd.arg(script).arg(&file).arg(dns.port().to_string());
    let out = run_with_timeout(cmd, b"", Duration::from_secs(30));
    assert!(out.status.success(), "verify.py failed: {}", show(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
}

#[test]
fn dkimpy_verifies_rsa_and_ed25519_signatures_of_submitted_mail() {
    if !require_tool("swaks") || !have_dkimpy() {
        return;
    }
    let b = InProcess::start_domain("other.test", &[BOB], |c| c.hostname = "mx.other.test".into());
    // Keys made before alice's server starts, as `mailroom dkim generate` would.
    let records = Arc::new(Mutex::new(Vec::new()));
    let a = InProcess::start_domain("example.test", &[ALICE], |c| {
        c.delivery.routes.insert("other.test".into(), vec![b.addr.into()]);
        c.queue.poll_interval = mailroom_services::config::HumanDuration(Duration::from_millis(200));
        let domain = Domain::parse("example.test").unwrap();
        for (selector, algorithm) in [("r1", Algorithm::Rsa), ("e1", Algorithm::Ed25519)] {
            let key = dkim::generate(&c.data_dir, &domain, selector, algorithm).unwrap();
            records.lock().unwrap().push(Record::txt(&key.dns().name(), &key.dns().value()));
        }
    });
    let records = records.lock().unwrap().clone();
    let Some(dns) = Dnsmasq::start(&records).expect("start dnsmasq") else {
        assert!(std::env::var_os("CI").is_none(), "dnsmasq is not installed, but CI is set");
        eprintln!("SKIPPED: dnsmasq not installed");
        return;
    };

    let submission = a.submission_addr();
    let mut cmd = Command::new("swaks");
    cmd.args(["--server", &submission.ip().to_string(), "--port", &submission.port().to_string()])
        .args(["--tls", "--auth", "PLAIN", "--auth-user", ALICE, "--auth-password", &format!("pw-{ALICE}")])
        .args(["--from", ALICE, "--to", BOB, "--header", "Subject: signed"])
        .args(["--body", "Signed  twice.\n\nBye.", "--timeout", "20"]);
    let out = run_with_timeout(cmd, b"", Duration::from_secs(30));
    assert!(out.status.success(), "swaks: {}{}", show(&out.stdout), show(&out.stderr));

    let deadline = Instant::now() + Duration::from_secs(20);
    let message = loop {
        let got = b.rt.block_on(inbox(&b.store, BOB));
        if let Some((_, raw)) = got.into_iter().next() {
            break raw;
        }
        assert!(Instant::now() < deadline, "the message never reached {BOB}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = String::from_utf8_lossy(&message);
    assert_eq!(text.matches("DKIM-Signature:").count(), 2, "{text}");

    let verdicts = dkimpy(&message, dns.addr());
    assert_eq!(verdicts, ["0 rsa-sha256 r1 pass", "1 ed25519-sha256 e1 pass"], "{text}");

    // The control: a changed body fails both, so a pass above is earned.
    let tampered = text.replace("Signed  twice.", "Signed thrice.");
    assert_ne!(tampered, text);
    let verdicts = dkimpy(tampered.as_bytes(), dns.addr());
    assert_eq!(verdicts, ["0 rsa-sha256 r1 fail", "1 ed25519-sha256 e1 fail"]);
}
