//! DKIM signing keys and the signatures of outbound mail (RFC 6376, with
//! Ed25519-SHA256 from RFC 8463 beside RSA-SHA256).
//!
//! Keys live as files, one per selector, readable by their owner only:
//!
//! ```text
//! data_dir/dkim/                              0700
//! data_dir/dkim/<domain>/                     0700
//! data_dir/dkim/<domain>/<selector>.rsa.pem       0600, PKCS#1 "RSA PRIVATE KEY" (2048 bits)
//! data_dir/dkim/<domain>/<selector>.ed25519.pem   0600, PKCS#8 "PRIVATE KEY"
//! ```
//!
//! A domain may have several keys (say one of each algorithm); every key
//! of the `From:` domain signs, so a verifier that knows only RSA still
//! finds a signature it can check (RFC 8463 §4 recommends exactly that).
//! [`generate`] writes a key; [`DkimKeys::load`] reads them all when the
//! server starts; [`DkimKeys::sign`] makes the `DKIM-Signature:` fields.
//!
//! Signatures are relaxed/relaxed over those of the header fields RFC 6376
//! §5.4.1 recommends that the message has; `From`, `To`, `Subject` and
//! `Date` are oversigned (named once more than they occur), so adding one
//! of them afterwards breaks the signature. Other absent fields are not
//! named, so a mailing list that only adds its `List-*` fields keeps the
//! signature intact. The timestamp `t=` comes from the caller's clock: the
//! signing steps are mail-auth's, but not its `DkimSigner::sign`, which
//! reads the wall clock itself.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::{HeaderStream, Writable, Writer};
use mail_auth::dkim::canonicalize::CanonicalHeaders;
use mail_auth::dkim::generate::DkimKeyPair;
use mail_auth::dkim::{Canonicalization, Signature};
use mailroom_types::Domain;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;

/// The directory under `data_dir` that holds the keys.
pub const DIR: &str = "dkim";

/// The header fields signed when present (RFC 6376 §5.4.1's list), as
/// often as they occur.
const SIGNED: &[&str] = &[
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Resent-Date",
    "Resent-From",
    "Resent-Sender",
    "Resent-To",
    "Resent-Cc",
    "Resent-Message-ID",
    "In-Reply-To",
    "References",
    "List-Id",
    "List-Help",
    "List-Unsubscribe",
    "List-Subscribe",
    "List-Post",
    "List-Owner",
    "List-Archive",
    "Message-ID",
    "Sender",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-ID",
    "Content-Description",
];

/// Named a second time in the signer's list: mail-auth then adds one more
/// instance than the message has to `h=`, which a verifier reads as "no
/// further such field", so one added later invalidates the signature.
const OVERSIGNED: &[&str] = &["From", "Subject", "To", "Date"];

/// RSA keys are 2048 bits: the size RFC 8301 §3.2 asks signers to use
/// at least, and one whose record still fits common DNS setups.
pub const RSA_BITS: usize = 2048;

/// A DKIM signing algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    /// RSA-SHA256 (RFC 6376, RFC 8301), 2048 bits.
    Rsa,
    /// Ed25519-SHA256 (RFC 8463).
    Ed25519,
}

impl Algorithm {
    /// The name in `k=` and in key file names: `rsa` or `ed25519`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rsa => "rsa",
            Algorithm::Ed25519 => "ed25519",
        }
    }

    /// Parses `rsa` or `ed25519`.
    pub fn parse(s: &str) -> Option<Algorithm> {
        match s.to_ascii_lowercase().as_str() {
            "rsa" => Some(Algorithm::Rsa),
            "ed25519" => Some(Algorithm::Ed25519),
            _ => None,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why keys could not be generated or loaded.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    /// A key file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file under `data_dir/dkim` is not a key of the kind its name says.
    #[error("{path}: not a usable DKIM key: {reason}")]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The selector is not a DNS label (letters, digits, `-`, dots between).
    #[error("invalid selector {0:?}: use letters, digits and '-' (labels separated by dots)")]
    BadSelector(String),
    /// The domain already has a key with this selector.
    #[error("domain {domain} already has a DKIM key with selector {selector} ({path})")]
    SelectorExists {
        /// The domain.
        domain: String,
        /// The selector.
        selector: String,
        /// The existing key file.
        path: PathBuf,
    },
    /// Key generation failed.
    #[error("cannot generate a {algorithm} key: {reason}")]
    Generate {
        /// The algorithm.
        algorithm: Algorithm,
        /// mail-auth's message.
        reason: String,
    },
}

/// A private key ready to sign.
enum PrivateKey {
    Rsa(RsaKey<Sha256>),
    Ed25519(Ed25519Key),
}

/// One signing key of a domain.
pub struct DkimKey {
    domain: Domain,
    selector: String,
    algorithm: Algorithm,
    path: PathBuf,
    key: PrivateKey,
}

impl DkimKey {
    /// The signing domain (`d=`).
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// The selector (`s=`).
    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The key file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The public key as `p=` wants it: for RSA a SubjectPublicKeyInfo
    /// (what verifiers such as dkimpy and OpenDKIM parse), for Ed25519 the
    /// 32 raw bytes (RFC 8463 §4).
    pub fn public_key(&self) -> Vec<u8> {
        match &self.key {
            PrivateKey::Rsa(k) => rsa_spki(&k.public_key()),
            PrivateKey::Ed25519(k) => k.public_key(),
        }
    }

    /// The DNS records to publish for this key.
    pub fn dns(&self) -> DnsRecords {
        DnsRecords {
            selector: self.selector.clone(),
            domain: self.domain.clone(),
            algorithm: self.algorithm,
            public_key: self.public_key(),
        }
    }

    /// One `DKIM-Signature:` field (CRLF-terminated) for `message`.
    fn sign(&self, message: &[u8], t: u64) -> mail_auth::Result<Vec<u8>> {
        let signature = match &self.key {
            PrivateKey::Rsa(k) => sign_with(k, self.domain.as_str(), &self.selector, message, t)?,
            PrivateKey::Ed25519(k) => sign_with(k, self.domain.as_str(), &self.selector, message, t)?,
        };
        let mut field = Vec::with_capacity(512);
        // As a header field: "DKIM-Signature: v=1; ...", folded, with CRLF.
        signature.write(&mut field, true);
        Ok(field)
    }
}

/// What a domain's administrator publishes in DNS for one key.
#[derive(Clone, Debug)]
pub struct DnsRecords {
    selector: String,
    domain: Domain,
    algorithm: Algorithm,
    public_key: Vec<u8>,
}

impl DnsRecords {
    /// The owner name of the key record: `<selector>._domainkey.<domain>`.
    pub fn name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// The key record's value: `v=DKIM1; k=...; p=...`.
    pub fn value(&self) -> String {
        format!("v=DKIM1; k={}; p={}", self.algorithm, base64(&self.public_key))
    }

    /// The key record as a zone file line, its value split into strings
    /// of at most 255 octets (RFC 1035 §3.3; RFC 6376 §3.6.2.2 joins them).
    pub fn zone_line(&self) -> String {
        let value = self.value();
        let strings: Vec<String> =
            value.as_bytes().chunks(255).map(|c| format!("\"{}\"", String::from_utf8_lossy(c))).collect();
        format!("{}. IN TXT {}", self.name(), strings.join(" "))
    }
}

/// Every key, by domain, loaded once when the server starts.
#[derive(Default)]
pub struct DkimKeys {
    by_domain: BTreeMap<Domain, Vec<DkimKey>>,
}

impl DkimKeys {
    /// No keys: nothing is signed.
    pub fn empty() -> DkimKeys {
        DkimKeys::default()
    }

    /// Every key under `data_dir/dkim`; none when the directory does not
    /// exist. Files not named `<selector>.<rsa|ed25519>.pem` are ignored;
    /// a key file that does not parse is an error, since mail would
    /// otherwise leave unsigned without anyone noticing.
    pub fn load(data_dir: &Path) -> Result<DkimKeys, DkimError> {
        let root = data_dir.join(DIR);
        let mut keys = DkimKeys::default();
        let domains = match fs::read_dir(&root) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(keys),
            Err(source) => return Err(DkimError::Io { path: root, source }),
        };
        for entry in domains {
            let entry = entry.map_err(|source| DkimError::Io { path: root.clone(), source })?;
            let dir = entry.path();
            let Some(domain) = entry.file_name().to_str().and_then(|n| Domain::parse(n).ok()) else { continue };
            if !dir.is_dir() {
                continue;
            }
            let files = fs::read_dir(&dir).map_err(|source| DkimError::Io { path: dir.clone(), source })?;
            let mut list = Vec::new();
            for file in files {
                let file = file.map_err(|source| DkimError::Io { path: dir.clone(), source })?;
                let name = file.file_name();
                let Some((selector, algorithm)) = name.to_str().and_then(parse_file_name) else { continue };
                list.push(read_key(&file.path(), domain.clone(), selector, algorithm)?);
            }
            list.sort_by(|a, b| (a.algorithm, &a.selector).cmp(&(b.algorithm, &b.selector)));
            if !list.is_empty() {
                keys.by_domain.insert(domain, list);
            }
        }
        Ok(keys)
    }

    /// Every key, by domain name, then algorithm (RSA first) and selector.
    pub fn iter(&self) -> impl Iterator<Item = &DkimKey> {
        self.by_domain.values().flatten()
    }

    /// True when there are no keys at all.
    pub fn is_empty(&self) -> bool {
        self.by_domain.is_empty()
    }

    /// The `DKIM-Signature:` fields (each CRLF-terminated) to put at the
    /// top of `message`, one per key of the domain of its first `From:`
    /// address; empty when that domain has no keys or the message has no
    /// `From:`. `now` is the signature's time (`t=`).
    pub fn sign(&self, message: &[u8], now: SystemTime) -> Vec<u8> {
        let Some(domain) = from_domain(message) else { return Vec::new() };
        let Some(keys) = self.by_domain.get(&domain) else { return Vec::new() };
        let t = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut fields = Vec::new();
        for key in keys {
            match key.sign(message, t) {
                Ok(field) => fields.extend_from_slice(&field),
                // Signing fails only on a message without any header
                // field we sign, which one with a From: is not.
                Err(e) => tracing::warn!(domain = %domain, selector = %key.selector, error = %e, "cannot DKIM-sign"),
            }
        }
        fields
    }
}

/// Generates a key for `domain` under `data_dir/dkim` (directories 0700,
/// the key file 0600, written aside and renamed into place) and returns
/// it. Refused when the domain already has a key with this selector, of
/// either algorithm: DNS has one key record per selector.
pub fn generate(data_dir: &Path, domain: &Domain, selector: &str, algorithm: Algorithm) -> Result<DkimKey, DkimError> {
    if !valid_selector(selector) {
        return Err(DkimError::BadSelector(selector.to_owned()));
    }
    let dir = data_dir.join(DIR).join(domain.as_str());
    fs::create_dir_all(data_dir).map_err(|source| DkimError::Io { path: data_dir.to_owned(), source })?;
    create_private_dir(&data_dir.join(DIR))?;
    create_private_dir(&dir)?;
    for a in [Algorithm::Rsa, Algorithm::Ed25519] {
        let existing = dir.join(file_name(selector, a));
        if existing.exists() {
            return Err(DkimError::SelectorExists {
                domain: domain.to_string(),
                selector: selector.to_owned(),
                path: existing,
            });
        }
    }
    let generate_error = |e: mail_auth::Error| DkimError::Generate { algorithm, reason: e.to_string() };
    let (label, der) = match algorithm {
        Algorithm::Rsa => ("RSA PRIVATE KEY", DkimKeyPair::generate_rsa(RSA_BITS).map_err(generate_error)?),
        Algorithm::Ed25519 => ("PRIVATE KEY", DkimKeyPair::generate_ed25519().map_err(generate_error)?),
    };
    let path = dir.join(file_name(selector, algorithm));
    write_new_private(&path, pem(label, der.private_key()).as_bytes())
        .map_err(|source| DkimError::Io { path: path.clone(), source })?;
    read_key(&path, domain.clone(), selector.to_owned(), algorithm)
}

fn file_name(selector: &str, algorithm: Algorithm) -> String {
    format!("{selector}.{algorithm}.pem")
}

fn parse_file_name(name: &str) -> Option<(String, Algorithm)> {
    let stem = name.strip_suffix(".pem")?;
    let (selector, algorithm) = stem.rsplit_once('.')?;
    let algorithm = Algorithm::parse(algorithm)?;
    valid_selector(selector).then(|| (selector.to_owned(), algorithm))
}

/// A selector is one or more DNS labels (RFC 6376 §3.1) of letters,
/// digits and inner hyphens.
fn valid_selector(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn read_key(path: &Path, domain: Domain, selector: String, algorithm: Algorithm) -> Result<DkimKey, DkimError> {
    let bad = |reason: String| DkimError::BadKey { path: path.to_owned(), reason };
    let text = fs::read(path).map_err(|source| DkimError::Io { path: path.to_owned(), source })?;
    let der = PrivateKeyDer::from_pem_slice(&text).map_err(|e| bad(format!("no PEM private key ({e})")))?;
    let key = match (algorithm, der) {
        (Algorithm::Rsa, der @ (PrivateKeyDer::Pkcs1(_) | PrivateKeyDer::Pkcs8(_))) => {
            PrivateKey::Rsa(RsaKey::<Sha256>::from_key_der(der).map_err(|e| bad(e.to_string()))?)
        }
        (Algorithm::Ed25519, PrivateKeyDer::Pkcs8(der)) => PrivateKey::Ed25519(
            // Accepts PKCS#8 v1 too (OpenSSL writes v1, without the public key).
            Ed25519Key::from_pkcs8_maybe_unchecked_der(der.secret_pkcs8_der()).map_err(|e| bad(e.to_string()))?,
        ),
        (algorithm, _) => return Err(bad(format!("not an {algorithm} key in a form Mailroom reads"))),
    };
    Ok(DkimKey { domain, selector, algorithm, path: path.to_owned(), key })
}

/// mail-auth's signing steps (`DkimSigner::sign_stream`) with `t=` given.
fn sign_with<K: SigningKey>(
    key: &K,
    domain: &str,
    selector: &str,
    message: &[u8],
    t: u64,
) -> mail_auth::Result<Signature> {
    let mut signature = Signature {
        v: 1,
        a: key.algorithm(),
        d: domain.to_owned(),
        s: selector.to_owned(),
        h: signed_names(message),
        ch: Canonicalization::Relaxed,
        cb: Canonicalization::Relaxed,
        ..Signature::default()
    };
    let (_, headers, signed, body) = signature.canonicalize(Fields { message, pos: 0, body: message.len() });
    if signed.is_empty() {
        return Err(mail_auth::Error::NoHeadersFound);
    }
    signature.bh = key.hash(body).as_ref().to_vec();
    signature.t = t;
    signature.h = signed;
    signature.b = key.sign(Signed { headers, signature: &signature })?;
    Ok(signature)
}

/// The header fields of a stored message (CRLF line ends, folded lines
/// starting with SP or HTAB) as mail-auth's canonicalisation reads them:
/// name, then the value after the colon through its final CRLF.
struct Fields<'x> {
    message: &'x [u8],
    pos: usize,
    body: usize,
}

impl<'x> HeaderStream<'x> for Fields<'x> {
    fn next_header(&mut self) -> Option<(&'x [u8], &'x [u8])> {
        let rest = &self.message[self.pos..];
        if rest.is_empty() || rest.starts_with(b"\r\n") {
            self.body = (self.pos + 2).min(self.message.len());
            return None;
        }
        let mut end = self.pos;
        loop {
            end = match self.message[end..].iter().position(|b| *b == b'\n') {
                Some(nl) => end + nl + 1,
                None => self.message.len(),
            };
            if !matches!(self.message.get(end), Some(b' ' | b'\t')) {
                break;
            }
        }
        let field = &self.message[self.pos..end];
        self.pos = end;
        Some(match field.iter().position(|b| *b == b':') {
            Some(colon) => (&field[..colon], &field[colon + 1..]),
            None => (field, &[][..]),
        })
    }

    fn body(&mut self) -> &'x [u8] {
        &self.message[self.body..]
    }
}

/// The names for mail-auth's signer: each of [`SIGNED`] the message has,
/// then [`OVERSIGNED`]. mail-auth signs every instance of a listed name
/// and names a listed one it does not find once more in `h=`, signed as
/// absent: hence the oversigning, and why absent fields are left out.
fn signed_names(message: &[u8]) -> Vec<String> {
    let mut fields = Fields { message, pos: 0, body: message.len() };
    let mut present = Vec::new();
    while let Some((name, _)) = fields.next_header() {
        present.push(name.trim_ascii_end().to_ascii_lowercase());
    }
    SIGNED
        .iter()
        .filter(|h| present.iter().any(|p| p.eq_ignore_ascii_case(h.as_bytes())))
        .chain(OVERSIGNED)
        .map(|h| (*h).to_owned())
        .collect()
}

/// What the signature covers: the signed header fields, then the
/// `DKIM-Signature:` field itself with an empty `b=` (RFC 6376 §3.7).
struct Signed<'a> {
    headers: CanonicalHeaders<'a>,
    signature: &'a Signature,
}

impl Writable for Signed<'_> {
    fn write(self, writer: &mut impl Writer) {
        self.headers.write(writer);
        self.signature.write(writer, false);
    }
}

/// The domain of the first address of the message's `From:` field.
fn from_domain(message: &[u8]) -> Option<Domain> {
    let parsed = mail_parser::MessageParser::new().parse_headers(message)?;
    let address = parsed.from()?.first()?.address()?;
    let (_, domain) = address.rsplit_once('@')?;
    Domain::parse(domain).ok()
}

/// Wraps a PKCS#1 RSAPublicKey in a SubjectPublicKeyInfo (RFC 5280
/// §4.1.2.7, algorithm rsaEncryption with NULL parameters).
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    const ALGORITHM: &[u8] =
        &[0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];
    let mut bits = vec![0u8]; // no unused bits
    bits.extend_from_slice(pkcs1);
    let mut body = ALGORITHM.to_vec();
    body.extend(der_tlv(0x03, &bits));
    der_tlv(0x30, &body)
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn create_private_dir(dir: &Path) -> Result<(), DkimError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let io_error = |source| DkimError::Io { path: dir.to_owned(), source };
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_error(e)),
    }
    // Also when it existed (or the umask narrowed the mode at creation).
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_error)
}

/// Writes a new private file: aside (mode 0600), fsync'd, then linked into
/// place, failing if `path` appeared meanwhile.
fn write_new_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    linked?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
