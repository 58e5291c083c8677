//! SPF, DKIM and DMARC on the MTA role, with the senders' records served by
//! a real dnsmasq on loopback: each case gets the exact
//! `Authentication-Results:` field stored with the message, and the action
//! (INBOX, Junk, or 550 5.7.1 with nothing stored).
//!
//! The client is the harness's peer, 192.0.2.7; it says `EHLO
//! helo.sender.test`, whose SPF record allows it.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use mail_auth::dkim::generate::DkimKeyPair;
use mailroom_services::authenticate::InboundChecks;
use mailroom_services::config::AuthenticationConfig;
use mailroom_services::dns::Resolver;
use mailroom_store::MailStore;
use mailroom_testkit::dnsmasq::{Dnsmasq, Record};
use mailroom_types::Address;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::harness::{SessionOptions, World};

const HELO: &str = "helo.sender.test";
const HOST: &str = "mx.example.test";
/// The HELO identity's SPF result, the same in every case.
const SPF_HELO: &str = "spf=pass (mx.example.test: domain of postmaster@helo.sender.test designates 192.0.2.7 as \
                        permitted sender) smtp.helo=helo.sender.test";

/// Two Ed25519 keys: the one that signs, and another.
struct Keys {
    signing: Vec<u8>,
    published: String,
    other: String,
}

fn keys() -> Keys {
    let signing = DkimKeyPair::generate_ed25519().unwrap();
    let other = DkimKeyPair::generate_ed25519().unwrap();
    let txt = |k: &DkimKeyPair| format!("v=DKIM1; k=ed25519; p={}", k.encoded_public_key());
    Keys { published: txt(&signing), other: txt(&other), signing: signing.private_key().to_vec() }
}

fn records(keys: &Keys) -> Vec<Record> {
    let spf = |name: &str, value: &str| Record::txt(name, value);
    let mut r = vec![
        spf(HELO, "v=spf1 ip4:192.0.2.7 -all"),
        spf("pass.test", "v=spf1 ip4:192.0.2.7 -all"),
        spf("fail.test", "v=spf1 ip4:198.51.100.1 -all"),
        spf("softfail.test", "v=spf1 ip4:198.51.100.1 ~all"),
        Record::a("none.test", "198.51.100.1".parse().unwrap()),
        spf("permerror.test", "v=spf1 ip4:not-an-address -all"),
        spf("ten.test", &format!("v=spf1 {} ip4:192.0.2.7 -all", lookups(10))),
        spf("eleven.test", &format!("v=spf1 {} ip4:192.0.2.7 -all", lookups(11))),
        spf("mailer.test", "v=spf1 ip4:192.0.2.7 -all"),
        spf("signed.test", "v=spf1 -all"),
        Record::txt("sel._domainkey.signed.test", &keys.published),
        Record::txt("sel._domainkey.dkim.test", &keys.published),
        Record::txt("_dmarc.signed.test", "v=DMARC1; p=reject"),
        Record::txt("sel._domainkey.wrongkey.test", &keys.other),
        spf("aligned.test", "v=spf1 ip4:192.0.2.7 -all"),
        Record::txt("_dmarc.aligned.test", "v=DMARC1; p=reject"),
    ];
    for (domain, policy) in [("pnone.test", "none"), ("quarantine.test", "quarantine"), ("reject.test", "reject")] {
        r.push(spf(domain, "v=spf1 ip4:198.51.100.1 -all"));
        r.push(Record::txt(&format!("_dmarc.{domain}"), &format!("v=DMARC1; p={policy}")));
    }
    for i in 1..=11 {
        r.push(Record::a(&format!("h{i}.lookups.test"), "198.51.100.1".parse().unwrap()));
    }
    r
}

/// `n` mechanisms that each cost one DNS lookup and do not match.
fn lookups(n: usize) -> String {
    (1..=n).map(|i| format!("a:h{i}.lookups.test")).collect::<Vec<_>>().join(" ")
}

/// dnsmasq with the records, or `None` (the test skips) when it is not
/// installed outside CI.
fn dnsmasq(records: &[Record]) -> Option<Dnsmasq> {
    match Dnsmasq::start(records).expect("start dnsmasq") {
        Some(dns) => Some(dns),
        None if std::env::var_os("CI").is_some() => panic!("dnsmasq is not installed, but CI is set"),
        None => {
            eprintln!("SKIPPED: dnsmasq not installed");
            None
        }
    }
}

async fn world(dns: &Dnsmasq, checks: AuthenticationConfig) -> World {
    let mut world = World::new().await;
    let resolver = Resolver::new(Some(dns.addr()), Duration::from_secs(5)).unwrap();
    world.inbound = Some(Arc::new(InboundChecks::new(&resolver, checks)));
    world
}

/// A message from `from`, CRLF line ends.
fn message(from: &str, extra: &str) -> String {
    format!(
        "{extra}From: <{from}>\r\nTo: <alice@example.test>\r\nSubject: checks\r\n\
         Date: Sun, 22 Nov 2026 05:55:56 +0000\r\nMessage-ID: <1@sender.test>\r\n\r\nHello.\r\n"
    )
}

/// `message` with an Ed25519 DKIM signature of `domain`, selector `sel`;
/// and the signature's `header.b` (its first 8 base64 characters).
fn sign(key: &[u8], domain: &str, message: &str) -> (String, String) {
    let key = Ed25519Key::from_pkcs8_der(key).unwrap();
    let signature = DkimSigner::from_key(key)
        .domain(domain)
        .selector("sel")
        .headers(["From", "To", "Subject", "Date", "Message-ID"])
        .sign(message.as_bytes())
        .unwrap();
    let b = STANDARD.encode(&signature.b[..6]);
    (format!("{}{message}", signature.to_header()), b)
}

/// What happened to one message: the reply to its end of data, and where
/// it was stored with its bytes.
struct Outcome {
    reply: String,
    stored: Vec<(String, Vec<u8>)>,
}

impl Outcome {
    /// The Authentication-Results field of the one stored copy (unfolded
    /// into lines as stored).
    fn results(&self) -> String {
        assert_eq!(self.stored.len(), 1, "one copy stored: {}", self.reply);
        let text = String::from_utf8(self.stored[0].1.clone()).unwrap();
        let start = text.find("Authentication-Results: ").expect("an Authentication-Results field");
        let rest = &text[start..];
        let mut end = rest.find("\r\n").unwrap() + 2;
        while rest[end..].starts_with('\t') || rest[end..].starts_with(' ') {
            end += rest[end..].find("\r\n").unwrap() + 2;
        }
        rest[..end].to_string()
    }

    fn mailbox(&self) -> &str {
        assert_eq!(self.stored.len(), 1, "one copy stored: {}", self.reply);
        &self.stored[0].0
    }
}

/// Sends one message from `mail_from` (`None`: the null path) to alice.
async fn send(world: &mut World, mail_from: Option<&str>, message: &str) -> Outcome {
    let ctx = world.context(&SessionOptions::default());
    let (stream, task) = world.connect(ctx, false);
    let (read, mut write) = tokio::io::split(stream);
    let mut lines = BufReader::new(read).lines();
    async fn reply(lines: &mut tokio::io::Lines<BufReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>>) -> String {
        loop {
            let line = lines.next_line().await.unwrap().expect("a reply");
            if line.as_bytes().get(3) != Some(&b'-') {
                return line;
            }
        }
    }
    reply(&mut lines).await;
    let from = mail_from.unwrap_or("");
    let data = message.replace("\r\n.", "\r\n..");
    for command in [format!("EHLO {HELO}"), format!("MAIL FROM:<{from}>"), "RCPT TO:<alice@example.test>".into()] {
        write.write_all(format!("{command}\r\n").as_bytes()).await.unwrap();
        let r = reply(&mut lines).await;
        assert!(r.starts_with('2'), "{command}: {r}");
    }
    write.write_all(b"DATA\r\n").await.unwrap();
    assert!(reply(&mut lines).await.starts_with("354"));
    write.write_all(format!("{data}.\r\n").as_bytes()).await.unwrap();
    let end = reply(&mut lines).await;
    write.write_all(b"QUIT\r\n").await.unwrap();
    reply(&mut lines).await;
    task.await.unwrap();

    let account = world.store.account(&Address::parse("alice@example.test").unwrap()).await.unwrap().unwrap();
    let mut stored = Vec::new();
    for mailbox in world.store.mailboxes(account.id).await.unwrap() {
        for m in world.store.messages(mailbox.id).await.unwrap() {
            let mut raw = Vec::new();
            assert!(world.store.read_blob(&m.blob, &mut raw).await.unwrap());
            stored.push((mailbox.name.clone(), raw));
        }
    }
    Outcome { reply: end, stored }
}

/// The field for MAIL FROM `from`, with `spf` the MAIL FROM result and
/// `rest` the DKIM and DMARC parts.
fn expected(spf: &str, rest: &[&str]) -> String {
    let mut field = format!("Authentication-Results: {HOST};\r\n\t{spf};\r\n\t{SPF_HELO}");
    for part in rest {
        field += &format!(";\r\n\t{part}");
    }
    field + "\r\n"
}

fn spf_result(result: &str, comment: &str, from: &str) -> String {
    format!("spf={result} ({HOST}: {comment}) smtp.mailfrom={from}")
}

#[tokio::test]
async fn spf_results() {
    let keys = keys();
    let Some(dns) = dnsmasq(&records(&keys)) else { return };
    let mut world = world(&dns, AuthenticationConfig::default()).await;
    let cases = [
        ("a@pass.test", "pass", "domain of a@pass.test designates 192.0.2.7 as permitted sender"),
        ("a@fail.test", "fail", "domain of a@fail.test does not designate 192.0.2.7 as permitted sender"),
        ("a@softfail.test", "softfail", "domain of a@softfail.test reports soft fail for 192.0.2.7"),
        ("a@none.test", "none", "no SPF records found for a@none.test"),
        ("a@permerror.test", "permerror", "unable to verify SPF record for a@permerror.test"),
        ("a@ten.test", "pass", "domain of a@ten.test designates 192.0.2.7 as permitted sender"),
        ("a@eleven.test", "permerror", "unable to verify SPF record for a@eleven.test"),
    ];
    for (from, result, comment) in cases {
        let domain = from.split('@').nth(1).unwrap();
        let outcome = send(&mut world, Some(from), &message(from, "")).await;
        assert!(outcome.reply.starts_with("250 2.0.0"), "{from}: {}", outcome.reply);
        let results = outcome.results();
        assert_eq!(
            results,
            expected(
                &spf_result(result, comment, from),
                &["dkim=none", &format!("dmarc=none header.from={domain} policy.dmarc=none")]
            ),
            "{from}"
        );
        // Cleared for the next case: each case reads one stored copy.
        clear(&world).await;
    }
}

async fn clear(world: &World) {
    let account = world.store.account(&Address::parse("alice@example.test").unwrap()).await.unwrap().unwrap();
    for mailbox in world.store.mailboxes(account.id).await.unwrap() {
        let uids: Vec<_> = world.store.messages(mailbox.id).await.unwrap().iter().map(|m| m.uid).collect();
        if !uids.is_empty() {
            world.store.expunge(mailbox.id, &uids).await.unwrap();
        }
    }
}

const MAILER_PASS: &str = "spf=pass (mx.example.test: domain of a@mailer.test designates 192.0.2.7 as permitted sender) smtp.mailfrom=a@mailer.test";

#[tokio::test]
async fn dkim_results() {
    let keys = keys();
    let Some(dns) = dnsmasq(&records(&keys)) else { return };
    let mut world = world(&dns, AuthenticationConfig::default()).await;
    let dmarc_none = |domain: &str| format!("dmarc=none header.from={domain} policy.dmarc=none");

    // A valid signature.
    let (signed, b) = sign(&keys.signing, "dkim.test", &message("a@dkim.test", ""));
    let outcome = send(&mut world, Some("a@mailer.test"), &signed).await;
    let dkim = format!("dkim=pass header.d=dkim.test header.s=sel header.b={b}");
    assert_eq!(outcome.results(), expected(MAILER_PASS, &[&dkim, &dmarc_none("dkim.test")]));
    clear(&world).await;

    // The body changed after signing.
    let broken = signed.replace("Hello.", "Hello!");
    let outcome = send(&mut world, Some("a@mailer.test"), &broken).await;
    let dkim = format!("dkim=fail (body hash did not verify) header.d=dkim.test header.s=sel header.b={b}");
    assert_eq!(outcome.results(), expected(MAILER_PASS, &[&dkim, &dmarc_none("dkim.test")]));
    clear(&world).await;

    // No signature at all.
    let outcome = send(&mut world, Some("a@mailer.test"), &message("a@dkim.test", "")).await;
    assert_eq!(outcome.results(), expected(MAILER_PASS, &["dkim=none", &dmarc_none("dkim.test")]));
    clear(&world).await;

    // Signed with a key other than the published one.
    let (signed, b) = sign(&keys.signing, "wrongkey.test", &message("a@wrongkey.test", ""));
    let outcome = send(&mut world, Some("a@mailer.test"), &signed).await;
    let dkim = format!("dkim=fail (verification failed) header.d=wrongkey.test header.s=sel header.b={b}");
    assert_eq!(outcome.results(), expected(MAILER_PASS, &[&dkim, &dmarc_none("wrongkey.test")]));
    assert_eq!(outcome.mailbox(), "INBOX");
}

#[tokio::test]
async fn dmarc_results_and_actions() {
    let keys = keys();
    let Some(dns) = dnsmasq(&records(&keys)) else { return };
    let mut world = world(&dns, AuthenticationConfig::default()).await;

    // Pass by DKIM alignment: MAIL FROM is another domain, the signature
    // is the From domain's.
    let (signed, b) = sign(&keys.signing, "signed.test", &message("a@signed.test", ""));
    let outcome = send(&mut world, Some("a@mailer.test"), &signed).await;
    let dkim = format!("dkim=pass header.d=signed.test header.s=sel header.b={b}");
    let dmarc = "dmarc=pass header.from=signed.test policy.dmarc=reject";
    assert_eq!(outcome.results(), expected(MAILER_PASS, &[&dkim, dmarc]));
    assert_eq!(outcome.mailbox(), "INBOX");
    clear(&world).await;

    // Pass by SPF alignment: MAIL FROM and From share the domain.
    let outcome = send(&mut world, Some("a@aligned.test"), &message("a@aligned.test", "")).await;
    let spf = spf_result("pass", "domain of a@aligned.test designates 192.0.2.7 as permitted sender", "a@aligned.test");
    let dmarc = "dmarc=pass header.from=aligned.test policy.dmarc=reject";
    assert_eq!(outcome.results(), expected(&spf, &["dkim=none", dmarc]));
    assert_eq!(outcome.mailbox(), "INBOX");
    clear(&world).await;

    // Failures: p=none delivers, p=quarantine delivers into Junk.
    for (domain, mailbox) in [("pnone.test", "INBOX"), ("quarantine.test", "Junk")] {
        let from = format!("a@{domain}");
        let outcome = send(&mut world, Some(&from), &message(&from, "")).await;
        assert!(outcome.reply.starts_with("250 2.0.0"), "{domain}: {}", outcome.reply);
        let comment = format!("domain of {from} does not designate 192.0.2.7 as permitted sender");
        let policy = domain.trim_end_matches(".test").trim_start_matches('p');
        let policy = if policy == "none" { "none" } else { "quarantine" };
        let dmarc = format!("dmarc=fail (policy not aligned) header.from={domain} policy.dmarc={policy}");
        assert_eq!(outcome.results(), expected(&spf_result("fail", &comment, &from), &["dkim=none", &dmarc]));
        assert_eq!(outcome.mailbox(), mailbox, "{domain}");
        clear(&world).await;
    }

    // p=reject: refused at the end of data, nothing stored.
    let outcome = send(&mut world, Some("a@reject.test"), &message("a@reject.test", "")).await;
    assert_eq!(outcome.reply, "550 5.7.1 Email rejected per DMARC policy for reject.test");
    assert!(outcome.stored.is_empty());
}

#[tokio::test]
async fn forged_results_are_removed_and_others_kept() {
    let keys = keys();
    let Some(dns) = dnsmasq(&records(&keys)) else { return };
    let forged = "Authentication-Results: MX.example.test;\r\n\tdkim=pass header.d=bank.test\r\n\
                  Authentication-Results: other.test; spf=pass smtp.mailfrom=a@pass.test\r\n";
    let spf = spf_result("pass", "domain of a@pass.test designates 192.0.2.7 as permitted sender", "a@pass.test");
    let ours = expected(&spf, &["dkim=none", "dmarc=none header.from=pass.test policy.dmarc=none"]);

    let mut world = world(&dns, AuthenticationConfig::default()).await;
    let outcome = send(&mut world, Some("a@pass.test"), &message("a@pass.test", forged)).await;
    let text = String::from_utf8(outcome.stored[0].1.clone()).unwrap();
    assert!(!text.contains("bank.test"), "the forgery is gone: {text}");
    // Ours comes right after this server's trace fields, before the rest.
    let (trace, rest) = text.split_at(text.find("Authentication-Results: ").unwrap());
    assert!(trace.starts_with("Return-Path: <a@pass.test>\r\nReceived: from helo.sender.test"), "{text}");
    assert_eq!(trace.matches("\r\n").count(), 4, "Return-Path and a three-line Received: {text}");
    let rest = rest.strip_prefix(ours.as_str()).expect("ours first");
    assert!(rest.starts_with("Authentication-Results: other.test; spf=pass smtp.mailfrom=a@pass.test\r\nFrom:"));

    // With every check off the forgery still goes, and nothing is added.
    let off = AuthenticationConfig { spf: false, dkim: false, dmarc: false };
    let mut world = self::world(&dns, off).await;
    let outcome = send(&mut world, Some("a@pass.test"), &message("a@pass.test", forged)).await;
    let text = String::from_utf8(outcome.stored[0].1.clone()).unwrap();
    assert!(!text.contains("bank.test") && !text.contains("mx.example.test;"), "{text}");
    assert_eq!(text.matches("Authentication-Results:").count(), 1, "{text}");
}

#[tokio::test]
async fn null_sender_is_checked_as_postmaster_at_helo() {
    let keys = keys();
    let Some(dns) = dnsmasq(&records(&keys)) else { return };
    let mut world = world(&dns, AuthenticationConfig::default()).await;
    let outcome = send(&mut world, None, &message("a@pass.test", "")).await;
    let spf = format!(
        "spf=pass ({HOST}: domain of postmaster@{HELO} designates 192.0.2.7 as permitted sender) smtp.mailfrom=<>"
    );
    assert_eq!(outcome.results(), expected(&spf, &["dkim=none", "dmarc=none header.from=pass.test policy.dmarc=none"]));
}

#[tokio::test]
async fn dns_failures_are_temperrors_and_the_message_is_delivered() {
    let keys = keys();
    let Some(dns) = dnsmasq(&records(&keys)) else { return };
    let mut world = world(&dns, AuthenticationConfig::default()).await;
    // dnsmasq refuses names outside its domains, as a broken server would.
    let (signed, b) = sign(&keys.signing, "refused.example", &message("a@refused.example", ""));
    let outcome = send(&mut world, Some("a@refused.example"), &signed).await;
    assert!(outcome.reply.starts_with("250 2.0.0"), "{}", outcome.reply);
    let spf = spf_result("temperror", "temporary dns error validating a@refused.example", "a@refused.example");
    let dkim = format!("dkim=temperror (dns error) header.d=refused.example header.s=sel header.b={b}");
    let dmarc = "dmarc=temperror (dns error) header.from=refused.example policy.dmarc=none";
    assert_eq!(outcome.results(), expected(&spf, &[&dkim, dmarc]));
    assert_eq!(outcome.mailbox(), "INBOX");
}
