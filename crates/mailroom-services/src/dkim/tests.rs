use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt};

use super::*;

/// Key records for mail-auth's verifier, which asks this cache first.
#[derive(Default)]
struct Records(Mutex<HashMap<Box<str>, Txt>>);

impl Records {
    fn add(&self, name: &str, value: &str) {
        let key = DomainKey::parse(value.as_bytes()).expect("a key record");
        self.0.lock().unwrap().insert(format!("{name}.").into(), Txt::DomainKey(Arc::new(key)));
    }
}

impl ResolverCache<Box<str>, Txt> for Records {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().unwrap().get(name).cloned()
    }
    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().unwrap().remove(name)
    }
    fn insert(&self, key: Box<str>, value: Txt, _: std::time::Instant) {
        self.0.lock().unwrap().insert(key, value);
    }
}

/// mail-auth's verdict on each signature of `message`, in order.
async fn verify(message: &[u8], records: &Records) -> Vec<DkimResult> {
    // Every lookup is answered by `records`; the resolver is never asked.
    let authenticator = MessageAuthenticator::new(ResolverConfig::default(), ResolverOpts::default()).unwrap();
    let parsed = AuthenticatedMessage::parse(message).expect("a message");
    let outputs = authenticator.verify_dkim(Parameters::new(&parsed).with_txt_cache(records)).await;
    outputs.iter().map(|o| o.result().clone()).collect()
}

fn domain(s: &str) -> Domain {
    Domain::parse(s).unwrap()
}

const MESSAGE: &[u8] = b"From: Alice <alice@example.test>\r\n\
To: bob@example.net\r\n\
Subject: DKIM\r\n\
Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n\
Message-ID: <1@example.test>\r\n\
\r\n\
Signed  body.\r\n\
\r\n";

/// 2026-11-22T10:00:00Z.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_341_600)
}

/// One key of each algorithm for example.test; RSA generation is slow
/// unoptimised, so the tests share one directory.
fn keys_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), &domain("example.test"), "r1", Algorithm::Rsa).unwrap();
        generate(dir.path(), &domain("example.test"), "e1", Algorithm::Ed25519).unwrap();
        dir
    })
    .path()
}

fn records_for(keys: &DkimKeys) -> Records {
    let records = Records::default();
    for key in keys.iter() {
        records.add(&key.dns().name(), &key.dns().value());
    }
    records
}

#[tokio::test]
async fn both_algorithms_sign_and_mail_auth_verifies_each() {
    let keys = DkimKeys::load(keys_dir()).unwrap();
    let fields = keys.sign(MESSAGE, now());
    // mail-auth folds anywhere, even inside a tag's value: unfolded.
    let text = String::from_utf8(fields.clone()).unwrap().replace("\r\n\t", "");
    assert_eq!(text.matches("DKIM-Signature:").count(), 2, "{text}");
    assert!(text.contains("a=rsa-sha256") && text.contains("a=ed25519-sha256"), "{text}");
    assert!(text.contains("c=relaxed/relaxed"), "{text}");
    assert!(text.contains("t=1795341600"), "t= comes from the given clock: {text}");
    assert!(text.ends_with("\r\n"));
    let signed = [fields, MESSAGE.to_vec()].concat();
    assert_eq!(verify(&signed, &records_for(&keys)).await, vec![DkimResult::Pass, DkimResult::Pass]);
}

#[tokio::test]
async fn present_fields_are_signed_and_from_to_subject_date_oversigned() {
    let keys = DkimKeys::load(keys_dir()).unwrap();
    let fields = String::from_utf8(keys.sign(MESSAGE, now())).unwrap();
    let unfolded = fields.replace("\r\n", "").replace([' ', '\t'], "");
    for h in unfolded.split("DKIM-Signature:").skip(1) {
        let tag = h.split(';').find_map(|t| t.strip_prefix("h=")).expect("h=");
        let names: Vec<String> = tag.split(':').map(str::to_ascii_lowercase).collect();
        for name in ["from", "to", "subject", "date"] {
            assert_eq!(names.iter().filter(|n| *n == name).count(), 2, "{name} twice in {tag}");
        }
        assert!(names.iter().any(|n| n == "message-id"), "message-id in {tag}");
        for name in ["reply-to", "cc", "list-id", "resent-from"] {
            assert!(!names.iter().any(|n| n == name), "absent {name} not in {tag}");
        }
    }
    // A second Subject: added in transit breaks both signatures; so does
    // an edited body.
    let records = records_for(&keys);
    let signed = [fields.as_bytes(), MESSAGE].concat();
    let at = find(&signed, b"Subject:");
    let added = [&signed[..at], b"Subject: bought\r\n", &signed[at..]].concat();
    assert!(verify(&added, &records).await.iter().all(|r| *r != DkimResult::Pass));
    let mut edited = signed.clone();
    let at = find(&edited, b"Signed  body");
    edited[at] = b's';
    assert!(verify(&edited, &records).await.iter().all(|r| *r != DkimResult::Pass));
    // A list that only adds its List-* fields leaves the signatures intact.
    let listed = [&b"List-Id: <l.example.net>\r\n"[..], &signed].concat();
    assert_eq!(verify(&listed, &records).await, vec![DkimResult::Pass, DkimResult::Pass]);
    // Nor may a second From: slip in.
    let at = find(&signed, b"From:");
    let added = [&signed[..at], b"From: mallory@example.test\r\n", &signed[at..]].concat();
    assert!(verify(&added, &records).await.iter().all(|r| *r != DkimResult::Pass));
    // Relaxed canonicalisation: refolded header whitespace still verifies.
    let refolded = String::from_utf8(signed).unwrap().replace("Subject: DKIM", "Subject:   DKIM  ");
    assert_eq!(verify(refolded.as_bytes(), &records).await, vec![DkimResult::Pass, DkimResult::Pass]);
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).position(|w| w == needle).unwrap()
}

#[test]
fn other_domains_and_messages_without_from_are_not_signed() {
    let keys = DkimKeys::load(keys_dir()).unwrap();
    assert!(keys.sign(b"From: x@example.org\r\n\r\nbody\r\n", now()).is_empty());
    assert!(keys.sign(b"Subject: no from\r\n\r\nbody\r\n", now()).is_empty());
    // The From: domain decides, whatever its case.
    assert!(!keys.sign(b"From: x@EXAMPLE.test\r\n\r\nbody\r\n", now()).is_empty());
    assert!(DkimKeys::empty().sign(MESSAGE, now()).is_empty());
}

#[test]
fn keys_are_private_files_and_selectors_unique() {
    let dir = keys_dir();
    let root = dir.join(DIR);
    assert_eq!(fs::metadata(&root).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(fs::metadata(root.join("example.test")).unwrap().permissions().mode() & 0o777, 0o700);
    for file in ["r1.rsa.pem", "e1.ed25519.pem"] {
        let path = root.join("example.test").join(file);
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "{file}");
    }
    let rsa = fs::read_to_string(root.join("example.test/r1.rsa.pem")).unwrap();
    assert!(rsa.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
    let ed = fs::read_to_string(root.join("example.test/e1.ed25519.pem")).unwrap();
    assert!(ed.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    // Taken, whichever algorithm asks; and the file is untouched.
    for algorithm in [Algorithm::Rsa, Algorithm::Ed25519] {
        let e = generate(dir, &domain("example.test"), "e1", algorithm).err().unwrap();
        assert!(matches!(e, DkimError::SelectorExists { .. }), "{e}");
    }
    assert_eq!(fs::read_to_string(root.join("example.test/e1.ed25519.pem")).unwrap(), ed);
    let e = generate(dir, &domain("example.test"), "bad_selector", Algorithm::Ed25519).err().unwrap();
    assert!(matches!(e, DkimError::BadSelector(_)), "{e}");
}

#[test]
fn load_finds_nothing_without_a_directory_and_refuses_a_broken_key() {
    let dir = tempfile::tempdir().unwrap();
    assert!(DkimKeys::load(dir.path()).unwrap().is_empty());
    let domain_dir = dir.path().join("dkim/example.test");
    fs::create_dir_all(&domain_dir).unwrap();
    fs::write(domain_dir.join("README"), "ignored").unwrap();
    assert!(DkimKeys::load(dir.path()).unwrap().is_empty());
    fs::write(domain_dir.join("s.ed25519.pem"), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        .unwrap();
    let e = DkimKeys::load(dir.path()).err().unwrap();
    assert!(matches!(e, DkimError::BadKey { .. }), "{e}");
}

#[test]
fn the_txt_record_splits_an_rsa_key_into_255_octet_strings() {
    let keys = DkimKeys::load(keys_dir()).unwrap();
    let rsa = keys.iter().find(|k| k.algorithm() == Algorithm::Rsa).unwrap().dns();
    let line = rsa.zone_line();
    assert!(
        line.starts_with(
            "r1._domainkey.example.test. IN TXT \"v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"
        ),
        "{line}"
    );
    let strings: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
    assert_eq!(strings.len(), 2, "{line}");
    assert_eq!(strings[0].len(), 255);
    assert_eq!(strings.concat(), rsa.value());
    let ed = keys.iter().find(|k| k.algorithm() == Algorithm::Ed25519).unwrap().dns();
    assert!(ed.zone_line().starts_with("e1._domainkey.example.test. IN TXT \"v=DKIM1; k=ed25519; p="));
    assert_eq!(ed.value().len(), "v=DKIM1; k=ed25519; p=".len() + 44);
}

#[test]
fn base64_matches_rfc_4648_vectors() {
    for (input, output) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(input.as_bytes()), output);
    }
}

/// RFC 8463 Appendix A: the example message, its keys (A.2) and its two
/// signatures (A.3).
const RFC8463_BODY: &[u8] = b"From: Joe SixPack <joe@football.example.com>\r\n\
To: Suzie Q <suzie@shopping.example.net>\r\n\
Subject: Is dinner ready?\r\n\
Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n\
Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n\
\r\n\
Hi.\r\n\
\r\n\
We lost the game.  Are you hungry yet?\r\n\
\r\n\
Joe.\r\n";

const RFC8463_SIGNATURES: &[u8] = b"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n \
d=football.example.com; i=@football.example.com;\r\n \
q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n \
subject : date : message-id : from : subject : date;\r\n \
bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n \
b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n \
Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n\
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n \
d=football.example.com; i=@football.example.com;\r\n \
q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n \
date : message-id : from : subject : date;\r\n \
bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n \
b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n \
DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n \
dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n";

const RFC8463_ED25519_DNS: &str = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
const RFC8463_RSA_DNS: &str = "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB";
/// The Ed25519 private key of A.2 (the 32-byte seed).
const RFC8463_ED25519_SEED: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";

fn rfc8463_records() -> Records {
    let records = Records::default();
    records.add("brisbane._domainkey.football.example.com", RFC8463_ED25519_DNS);
    records.add("test._domainkey.football.example.com", RFC8463_RSA_DNS);
    records
}

#[tokio::test]
async fn rfc_8463_example_signatures_verify() {
    let message = [RFC8463_SIGNATURES, RFC8463_BODY].concat();
    assert_eq!(verify(&message, &rfc8463_records()).await, vec![DkimResult::Pass, DkimResult::Pass]);
}

#[tokio::test]
async fn signing_with_the_rfc_8463_key_gives_its_body_hash_and_verifies() {
    // PKCS#8 v1 around the 32-byte seed (RFC 8410 §7).
    let seed = mail_parser::decoders::base64::base64_decode(RFC8463_ED25519_SEED.as_bytes()).unwrap();
    let mut der = vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    der.extend_from_slice(&seed);
    let dir = tempfile::tempdir().unwrap();
    let domain_dir = dir.path().join("dkim/football.example.com");
    fs::create_dir_all(&domain_dir).unwrap();
    fs::write(domain_dir.join("brisbane.ed25519.pem"), pem("PRIVATE KEY", &der)).unwrap();
    let keys = DkimKeys::load(dir.path()).unwrap();
    let key = keys.iter().next().unwrap();
    assert_eq!(key.dns().value(), RFC8463_ED25519_DNS, "the public key of A.2 derives from its private key");
    let fields = String::from_utf8(keys.sign(RFC8463_BODY, now())).unwrap();
    let unfolded = fields.replace("\r\n\t", "");
    assert!(unfolded.contains("bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;"), "the body hash of A.3: {fields}");
    let message = [fields.as_bytes(), RFC8463_BODY].concat();
    assert_eq!(verify(&message, &rfc8463_records()).await, vec![DkimResult::Pass]);
}
