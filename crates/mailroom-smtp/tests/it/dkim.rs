//! DKIM signing on the way out: a submitted message is signed by its From:
//! domain's keys after it is final (with `Date:` and `Message-ID:`), the
//! signatures placed below this server's trace fields; mail from a domain
//! without keys is left alone. (The signatures themselves are verified in
//! `mailroom-services` and, independently, by dkimpy in `mailroom`'s tests.)

use std::sync::Arc;

use mailroom_services::dkim::{self, Algorithm, DkimKeys};
use mailroom_types::Domain;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::harness::{SessionOptions, World};

/// Gives `world` one key of each algorithm for `domain`; before the
/// submission policy is made.
fn with_keys(world: &mut World, domain: &str) {
    let dir = world._dir.path().join("keys");
    let domain = Domain::parse(domain).unwrap();
    dkim::generate(&dir, &domain, "r1", Algorithm::Rsa).unwrap();
    dkim::generate(&dir, &domain, "e1", Algorithm::Ed25519).unwrap();
    world.dkim = Arc::new(DkimKeys::load(&dir).unwrap());
}

/// Submits `message` as alice to bob (local) and carol@other.test
/// (queued); returns the final reply.
async fn submit(world: &mut World, from: &str, message: &str) -> String {
    let ctx = world.context(&SessionOptions { submission: true, tls: true, ..SessionOptions::default() });
    let (client, _task) = world.connect(ctx, true);
    let (read, mut write) = tokio::io::split(client);
    let mut read = BufReader::new(read);
    let mut last = String::new();
    let reply = async |read: &mut BufReader<_>| loop {
        let mut line = String::new();
        read.read_line(&mut line).await.unwrap();
        if line.as_bytes().get(3) != Some(&b'-') {
            return line;
        }
    };
    reply(&mut read).await;
    for command in [
        "EHLO client.test".to_string(),
        // alice@example.test / secret
        "AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=".into(),
        format!("MAIL FROM:<{from}>"),
        "RCPT TO:<bob@example.test>".into(),
        "RCPT TO:<carol@other.test>".into(),
        "DATA".into(),
    ] {
        write.write_all(format!("{command}\r\n").as_bytes()).await.unwrap();
        last = reply(&mut read).await;
    }
    assert!(last.starts_with("354"), "{last}");
    write.write_all(format!("{message}.\r\n").as_bytes()).await.unwrap();
    last = reply(&mut read).await;
    write.write_all(b"QUIT\r\n").await.unwrap();
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_is_signed_below_the_trace_fields() {
    let mut world = World::new().await;
    with_keys(&mut world, "example.test");
    let reply =
        submit(&mut world, "alice@example.test", "From: Alice <alice@example.test>\r\nSubject: hi\r\n\r\nHello.\r\n")
            .await;
    assert!(reply.starts_with("250 "), "{reply}");
    let queue = world.queue().await;
    let mut raw = Vec::new();
    mailroom_store::MailStore::read_blob(&world.store, &queue[0].blob, &mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let names: Vec<&str> = text
        .split("\r\n")
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.starts_with([' ', '\t']))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Return-Path", "Received", "DKIM-Signature", "DKIM-Signature", "Date", "Message-ID", "From", "Subject"],
        "{text}"
    );
    // mail-auth folds anywhere, even inside a tag's value: unfolded.
    let unfolded = text.replace("\r\n\t", "");
    assert!(unfolded.contains("a=rsa-sha256;") && unfolded.contains("s=r1;"), "{text}");
    assert!(unfolded.contains("a=ed25519-sha256;") && unfolded.contains("s=e1;"), "{text}");
    assert!(unfolded.contains("d=example.test;"), "{text}");
    // The local copy is the same signed message.
    let inbox = world.inbox("bob@example.test").await;
    assert_eq!(String::from_utf8_lossy(&inbox[0].1), text);
    world.trigger.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_from_a_domain_without_keys_is_not_signed() {
    let mut world = World::new().await;
    with_keys(&mut world, "other-signer.test");
    let reply =
        submit(&mut world, "alice@example.test", "From: alice@example.test\r\nSubject: hi\r\n\r\nHello.\r\n").await;
    assert!(reply.starts_with("250 "), "{reply}");
    let inbox = world.inbox("bob@example.test").await;
    assert!(!String::from_utf8_lossy(&inbox[0].1).contains("DKIM-Signature"));
    world.trigger.trigger();
}
