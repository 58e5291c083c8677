//! The server's TLS identity (RFC 8314 implicit TLS, RFC 3207/2595
//! STARTTLS): the certificate chain and key named in `[tls]`, or else a
//! self-signed certificate generated once into the data directory and
//! reused on every later start, so that clients which pin it on first use
//! (as most mail clients offer to) keep trusting it.
//!
//! rustls with the ring provider; TLS 1.2 and 1.3 only.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
pub use tokio_rustls::TlsAcceptor;
pub use tokio_rustls::server::TlsStream;

use crate::config::Config;

/// Where the self-signed identity lives, under the data directory.
pub const SELF_SIGNED_DIR: &str = "tls";
/// The self-signed certificate's file name in [`SELF_SIGNED_DIR`].
pub const SELF_SIGNED_CERT: &str = "self-signed-cert.pem";
/// The self-signed key's file name in [`SELF_SIGNED_DIR`].
pub const SELF_SIGNED_KEY: &str = "self-signed-key.pem";

/// Why no TLS identity could be set up; each names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or written.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// The certificate file holds no PEM certificate.
    #[error("{0}: no PEM certificate in it")]
    NoCertificate(PathBuf),
    /// The key file holds no PEM private key.
    #[error("{0}: no PEM private key in it (PKCS#8, PKCS#1 or SEC1)")]
    NoKey(PathBuf),
    /// The key does not go with the certificate, or rustls refused them.
    #[error("{cert}: {source}")]
    Rejected { cert: PathBuf, source: rustls::Error },
    /// Generating the self-signed certificate failed.
    #[error("generating a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// How long a client may take over the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// A new connection as its listener serves it: plain (with STARTTLS
/// offered when the listener has an acceptor), or after the implicit-TLS
/// handshake (RFC 8314), which must end within [`HANDSHAKE_TIMEOUT`].
pub async fn open(tls: ListenerTls, stream: TcpStream) -> io::Result<(MaybeTls<TcpStream>, Security)> {
    match tls {
        ListenerTls::Plain(starttls) => Ok((MaybeTls::Plain(stream), Security::Plain(starttls))),
        ListenerTls::Implicit(acceptor) => {
            let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
            Ok((MaybeTls::Tls(Box::new(tls)), Security::Tls))
        }
    }
}

/// How a session's connection is protected, as its listener knows it.
#[derive(Clone)]
pub enum Security {
    /// Under TLS from the first byte (an implicit-TLS listener, RFC 8314).
    Tls,
    /// In the clear; STARTTLS upgrades it when an acceptor is given.
    Plain(Option<TlsAcceptor>),
}

impl Security {
    /// Whether the connection is already protected.
    pub fn is_tls(&self) -> bool {
        matches!(self, Security::Tls)
    }

    /// Whether passwords may be sent by a client at `peer`: under TLS, or
    /// from loopback, where nothing crosses the network (RFC 8314 §5.1,
    /// RFC 9051 §11.1, RFC 1939 §13).
    pub fn allows_passwords(&self, peer: std::net::IpAddr) -> bool {
        self.is_tls() || peer.is_loopback()
    }

    /// The acceptor STARTTLS uses, when it is offered.
    pub fn starttls(&self) -> Option<&TlsAcceptor> {
        match self {
            Security::Plain(acceptor) => acceptor.as_ref(),
            Security::Tls => None,
        }
    }
}

/// What a listener does about TLS.
#[derive(Clone)]
pub enum ListenerTls {
    /// Plain connections; STARTTLS upgrades them when an acceptor is given.
    Plain(Option<TlsAcceptor>),
    /// Every connection begins with the TLS handshake (RFC 8314).
    Implicit(TlsAcceptor),
}

/// A session's stream, which STARTTLS turns from plain into TLS in place.
#[derive(Debug)]
pub enum MaybeTls<S> {
    /// Not (yet) protected.
    Plain(S),
    /// Protected since STARTTLS.
    Tls(Box<TlsStream<S>>),
    /// A handshake failed midway: the connection is unusable.
    Broken,
}

impl<S: AsyncRead + AsyncWrite + Unpin> MaybeTls<S> {
    /// Runs the server side of the TLS handshake on the plain stream, with
    /// the acceptor `security` offers STARTTLS with, within
    /// [`HANDSHAKE_TIMEOUT`]. Bytes the client sent after the STARTTLS
    /// command and before its handshake are read as handshake data, so
    /// they fail it: they are never taken as commands.
    pub async fn start_tls(&mut self, security: &Security) -> io::Result<()> {
        let Some(acceptor) = security.starttls() else {
            return Err(io::Error::other("STARTTLS without an acceptor"));
        };
        let MaybeTls::Plain(plain) = std::mem::replace(self, MaybeTls::Broken) else {
            return Err(io::Error::other("STARTTLS on a stream that is not plain"));
        };
        let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(plain))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        *self = MaybeTls::Tls(Box::new(tls));
        Ok(())
    }
}

fn broken() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the TLS handshake failed")
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Broken => Poll::Ready(Err(broken())),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Broken => Poll::Ready(Err(broken())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Broken => Poll::Ready(Err(broken())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Broken => Poll::Ready(Ok(())),
        }
    }
}

/// The certificate and key files a server with `config` presents: the
/// configured pair, or the self-signed pair in the data directory,
/// generated now for `config.hostname` (and `localhost`) if missing.
pub fn identity_files(config: &Config) -> Result<(PathBuf, PathBuf), TlsError> {
    match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => Ok((cert.clone(), key.clone())),
        // Config validation refuses one without the other.
        _ => self_signed(&config.data_dir.join(SELF_SIGNED_DIR), &config.hostname),
    }
}

/// The acceptor every TLS listener and STARTTLS of a server with `config`
/// uses (see [`identity_files`]).
pub fn acceptor(config: &Config) -> Result<TlsAcceptor, TlsError> {
    let (cert, key) = identity_files(config)?;
    Ok(TlsAcceptor::from(Arc::new(server_config(&cert, &key)?)))
}

/// A rustls server configuration presenting the chain in `cert` with the
/// key in `key` (both PEM).
pub fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    let io_error = |path: &Path| {
        let path = path.to_owned();
        move |e: rustls::pki_types::pem::Error| match e {
            rustls::pki_types::pem::Error::Io(source) => TlsError::Io { path, source },
            other => TlsError::Io { path, source: io::Error::new(io::ErrorKind::InvalidData, other.to_string()) },
        }
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(io_error(cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_error(cert))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_owned()));
    }
    let private = match PrivateKeyDer::from_pem_file(key) {
        Ok(k) => k,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => return Err(TlsError::NoKey(key.to_owned())),
        Err(e) => return Err(io_error(key)(e)),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private))
        .map_err(|source| TlsError::Rejected { cert: cert.to_owned(), source })
}

/// The self-signed pair in `dir`, generated first if either file is
/// missing. The key is written readable by its owner only, and both
/// files are complete before either is used (written aside, then renamed).
fn self_signed(dir: &Path, hostname: &str) -> Result<(PathBuf, PathBuf), TlsError> {
    let (cert, key) = (dir.join(SELF_SIGNED_CERT), dir.join(SELF_SIGNED_KEY));
    if cert.is_file() && key.is_file() {
        return Ok((cert, key));
    }
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let mut names = vec![hostname.to_owned()];
    if hostname != "localhost" {
        names.push("localhost".to_owned());
    }
    let generated = rcgen::generate_simple_self_signed(names)?;
    write_private(&key, generated.signing_key.serialize_pem().as_bytes()).map_err(io(&key))?;
    write_private(&cert, generated.cert.pem().as_bytes()).map_err(io(&cert))?;
    tracing::info!(cert = %cert.display(), "generated a self-signed TLS certificate");
    Ok((cert, key))
}

/// Writes `bytes` to `path` through a temporary file in the same
/// directory, mode 0600, fsync'd, then renamed into place.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn config(dir: &Path) -> Config {
        Config { data_dir: dir.to_owned(), hostname: "mail.example.test".into(), ..Config::default() }
    }

    #[test]
    fn self_signed_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let (cert, key) = identity_files(&config).unwrap();
        assert!(cert.starts_with(dir.path()) && key.starts_with(dir.path()));
        assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        let first = fs::read(&cert).unwrap();
        acceptor(&config).unwrap();
        assert_eq!(fs::read(&cert).unwrap(), first, "a second start reuses the certificate");
        // The names a client checks: the hostname and localhost.
        let der = CertificateDer::from_pem_slice(&first).unwrap();
        let text = String::from_utf8_lossy(&der);
        assert!(text.contains("mail.example.test") && text.contains("localhost"));
    }

    #[test]
    fn configured_pair_is_used_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(&dir.path().join("made"), "other.test").unwrap();
        let mut config = config(dir.path());
        config.tls.cert = Some(cert.clone());
        config.tls.key = Some(key.clone());
        assert_eq!(identity_files(&config).unwrap(), (cert.clone(), key.clone()));
        acceptor(&config).unwrap();
        assert!(!dir.path().join(SELF_SIGNED_DIR).exists(), "no self-signed pair when one is configured");

        // A key that is not the certificate's.
        let (_, wrong_key) = self_signed(&dir.path().join("other"), "other.test").unwrap();
        config.tls.key = Some(wrong_key);
        assert!(matches!(acceptor(&config), Err(TlsError::Rejected { .. })), "mismatched key refused");
        // Files without the PEM items.
        let empty = dir.path().join("empty.pem");
        fs::write(&empty, "nothing here\n").unwrap();
        assert!(matches!(server_config(&empty, &key), Err(TlsError::NoCertificate(p)) if p == empty));
        assert!(matches!(server_config(&cert, &empty), Err(TlsError::NoKey(p)) if p == empty));
        let missing = dir.path().join("missing.pem");
        let err = server_config(&missing, &key).unwrap_err();
        assert!(err.to_string().starts_with(&missing.display().to_string()), "{err}");
    }
}
