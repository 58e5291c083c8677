//! STARTTLS for delivery (RFC 3207). Mail between servers is encrypted
//! opportunistically (RFC 7435): a certificate that cannot be verified
//! does not stop delivery, since refusing it would only push the message
//! into plain text. So the handshake accepts any certificate, records
//! whether it would have verified, and still checks every handshake
//! signature, so that the peer does hold the key of the certificate it sent.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use rustls::DigitallySignedStruct;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The TLS session of a connection, for logs and `Received:` clauses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// As rustls names it: `TLSv1_3`, `TLSv1_2`.
    pub protocol_version: String,
    /// As rustls names it: `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// Whether the certificate chain verified against the configured
    /// trust anchors for the server's name.
    pub certificate_verified: bool,
    /// Why it did not.
    pub verify_error: Option<String>,
}

/// The error recorded when no trust anchors are configured.
pub const NO_TRUST_ANCHORS: &str = "not verified: no trust anchors";

/// Runs the client handshake over `tcp` for `server_name` (or `ip` when
/// the name is not a DNS name), verifying the certificate against `roots`
/// when given, for the record only.
pub(super) async fn handshake(
    tcp: TcpStream,
    server_name: &str,
    ip: IpAddr,
    roots: Option<&Arc<RootCertStore>>,
) -> Result<(TlsStream<TcpStream>, TlsInfo), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let webpki = match roots {
        Some(roots) => Some(
            WebPkiServerVerifier::builder_with_provider(Arc::clone(roots), Arc::clone(&provider))
                .build()
                .map_err(|e| format!("trust anchors: {e}"))?,
        ),
        None => None,
    };
    let verifier = Arc::new(RecordingVerifier { provider: Arc::clone(&provider), webpki, outcome: Mutex::new(None) });
    // One configuration per connection, since the verifier records this
    // connection's outcome; nothing is resumed, so every handshake
    // verifies afresh.
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(server_name.trim_end_matches('.').to_owned())
        .unwrap_or_else(|_| ServerName::IpAddress(ip.into()));
    let stream = TlsConnector::from(Arc::new(config)).connect(name, tcp).await.map_err(|e| e.to_string())?;
    let (_, session) = stream.get_ref();
    let protocol_version =
        session.protocol_version().map(|v| v.as_str().map_or_else(|| format!("{v:?}"), str::to_owned));
    let cipher = session.negotiated_cipher_suite().map(|s| {
        let s = s.suite();
        s.as_str().map_or_else(|| format!("{s:?}"), str::to_owned)
    });
    let verified = verifier.outcome.lock().ok().and_then(|mut o| o.take());
    let verify_error = match verified {
        Some(Ok(())) => None,
        Some(Err(e)) => Some(e),
        None => Some("not verified: no certificate checked".to_owned()),
    };
    let info = TlsInfo {
        protocol_version: protocol_version.unwrap_or_default(),
        cipher: cipher.unwrap_or_default(),
        certificate_verified: verify_error.is_none(),
        verify_error,
    };
    Ok((stream, info))
}

/// Accepts every certificate chain, noting whether WebPKI would have.
#[derive(Debug)]
struct RecordingVerifier {
    provider: Arc<CryptoProvider>,
    webpki: Option<Arc<WebPkiServerVerifier>>,
    outcome: Mutex<Option<Result<(), String>>>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let outcome = match &self.webpki {
            None => Err(NO_TRUST_ANCHORS.to_owned()),
            Some(webpki) => webpki
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .map(|_| ())
                .map_err(|e| format!("not verified: {e}")),
        };
        if let Ok(mut slot) = self.outcome.lock() {
            *slot = Some(outcome);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
