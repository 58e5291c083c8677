//! Opening and closing a session: connect, the 220 greeting, EHLO (HELO
//! when EHLO gets a 5xx, RFC 5321 §4.1.4), STARTTLS per policy and EHLO
//! again (RFC 3207 §4.2), AUTH (RFC 4954), and QUIT.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use super::wire::{Wire, within};
use super::{ClientConfig, ClientError, Connection, Credentials, Extensions, Reply, TlsPolicy, tls};

/// How long QUIT may take: it is a courtesy, not worth waiting for.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

impl Connection {
    /// Connects to `addr`, reads the greeting, says EHLO (or HELO),
    /// upgrades with STARTTLS as `config.tls` says and logs in when
    /// `config.auth` is set. `server_name` is the MX host name, for SNI,
    /// certificate verification and logs.
    ///
    /// Under [`TlsPolicy::Opportunistic`], a failed handshake is followed
    /// by one more attempt without TLS: the connection it broke is lost,
    /// and plain text is what opportunistic TLS falls back to anyway.
    pub async fn open(addr: SocketAddr, server_name: &str, config: &ClientConfig) -> Result<Connection, ClientError> {
        match open_with(addr, server_name, config, config.tls).await {
            Err(ClientError::Tls(e)) if config.tls == TlsPolicy::Opportunistic => {
                warn!(%addr, server = server_name, error = %e, "STARTTLS failed; connecting again without TLS");
                open_with(addr, server_name, config, TlsPolicy::Disabled).await
            }
            other => other,
        }
    }

    /// Says QUIT and waits briefly for the 221, then closes. A connection
    /// that is no longer usable is just closed: after a timeout in the
    /// middle of DATA the server would take QUIT for message text.
    pub async fn quit(mut self) {
        if self.usable {
            let limit = self.command_timeout.min(QUIT_TIMEOUT);
            match self.command(&[b"QUIT\r\n"], limit, "QUIT").await {
                Ok(r) if r.code == 221 => {}
                Ok(r) => debug!(peer = %self.peer, reply = %r, "unexpected reply to QUIT"),
                Err(e) => debug!(peer = %self.peer, error = %e, "QUIT"),
            }
        }
        self.wire.shutdown().await;
    }

    /// Writes `parts` and reads the reply, within `limit` each.
    pub(super) async fn command(
        &mut self,
        parts: &[&[u8]],
        limit: Duration,
        stage: &'static str,
    ) -> Result<Reply, ClientError> {
        self.wire.write(parts, limit, stage).await?;
        self.wire.read_reply(limit, stage).await
    }

    /// EHLO, falling back to HELO (and no extensions) after a 5xx.
    async fn hello(&mut self, helo: &str) -> Result<(), ClientError> {
        let ehlo = self.command(&[b"EHLO ", helo.as_bytes(), b"\r\n"], self.command_timeout, "EHLO").await?;
        let refusal = if ehlo.is_positive() {
            self.extensions = Extensions::parse(&ehlo);
            return Ok(());
        } else if ehlo.is_permanent() {
            debug!(peer = %self.peer, reply = %ehlo, "EHLO refused; trying HELO");
            let reply = self.command(&[b"HELO ", helo.as_bytes(), b"\r\n"], self.command_timeout, "HELO").await?;
            if reply.is_positive() {
                self.extensions = Extensions::default();
                return Ok(());
            }
            reply
        } else {
            ehlo
        };
        Err(if refusal.is_closing() { ClientError::Closed(refusal) } else { ClientError::Ehlo(refusal) })
    }

    /// STARTTLS, the handshake, and EHLO again. A refused STARTTLS is an
    /// error only when TLS is required.
    async fn start_tls(&mut self, config: &ClientConfig, policy: TlsPolicy) -> Result<(), ClientError> {
        let reply = self.command(&[b"STARTTLS\r\n"], self.command_timeout, "STARTTLS").await?;
        if reply.is_closing() {
            return Err(ClientError::Closed(reply));
        }
        if reply.code != 220 {
            if policy == TlsPolicy::Required {
                return Err(ClientError::Tls(format!("STARTTLS refused: {reply}")));
            }
            info!(peer = %self.peer, server = %self.server_name, %reply, "STARTTLS refused; continuing without TLS");
            return Ok(());
        }
        // Anything the server sent after its 220 was sent in the clear and
        // must not be taken as coming through TLS (the STARTTLS injection
        // of CVE-2011-0411, from the server's side).
        if self.wire.has_buffered() {
            return Err(ClientError::Protocol("data after the reply to STARTTLS".to_owned()));
        }
        let Some(tcp) = self.wire.take_plain() else {
            return Err(ClientError::Protocol("STARTTLS on a connection already under TLS".to_owned()));
        };
        let handshake = tls::handshake(tcp, &self.server_name, self.peer.ip(), config.roots.as_ref());
        let (stream, info) = tokio::time::timeout(self.command_timeout, handshake)
            .await
            .map_err(|_| ClientError::Tls("handshake timed out".to_owned()))?
            .map_err(ClientError::Tls)?;
        self.wire.set_tls(stream);
        info!(
            peer = %self.peer,
            server = %self.server_name,
            version = %info.protocol_version,
            cipher = %info.cipher,
            verified = info.certificate_verified,
            verify_error = info.verify_error.as_deref().unwrap_or(""),
            "TLS established"
        );
        self.tls = Some(info);
        self.extensions = Extensions::default();
        self.hello(&config.helo).await
    }

    /// AUTH PLAIN with an initial response (RFC 4616), else AUTH LOGIN.
    async fn authenticate(&mut self, credentials: &Credentials) -> Result<(), ClientError> {
        if self.tls.is_none() && !self.peer.ip().is_loopback() {
            return Err(ClientError::AuthWithoutTls);
        }
        let limit = self.command_timeout;
        let (username, password) = (credentials.username.as_bytes(), credentials.password.expose().as_bytes());
        let reply = if self.extensions.offers_auth("PLAIN") {
            let mut plain = Vec::with_capacity(username.len() + password.len() + 2);
            plain.push(0);
            plain.extend_from_slice(username);
            plain.push(0);
            plain.extend_from_slice(password);
            let response = BASE64.encode(plain);
            self.command(&[b"AUTH PLAIN ", response.as_bytes(), b"\r\n"], limit, "AUTH").await?
        } else if self.extensions.offers_auth("LOGIN") {
            let mut reply = self.command(&[b"AUTH LOGIN\r\n"], limit, "AUTH").await?;
            for answer in [username, password] {
                if reply.code != 334 {
                    break;
                }
                reply = self.command(&[BASE64.encode(answer).as_bytes(), b"\r\n"], limit, "AUTH").await?;
            }
            reply
        } else {
            return Err(ClientError::AuthUnavailable);
        };
        match reply.code {
            235 => {
                debug!(peer = %self.peer, user = %credentials.username, "authenticated");
                Ok(())
            }
            421 => Err(ClientError::Closed(reply)),
            _ => Err(ClientError::Auth(reply)),
        }
    }

    /// Sends QUIT without waiting, on the way out after a refusal.
    async fn abandon(mut self) {
        let _ = self.wire.write(&[b"QUIT\r\n"], self.command_timeout.min(QUIT_TIMEOUT), "QUIT").await;
        self.wire.shutdown().await;
    }
}

/// [`Connection::open`] with the TLS policy given.
async fn open_with(
    addr: SocketAddr,
    server_name: &str,
    config: &ClientConfig,
    policy: TlsPolicy,
) -> Result<Connection, ClientError> {
    let connect = async { TcpStream::connect(addr).await.map_err(ClientError::Connect) };
    let tcp = within(config.connect_timeout, "connect", connect).await?;
    // Commands are written whole; waiting to coalesce them only adds delay.
    tcp.set_nodelay(true).map_err(ClientError::Connect)?;
    let mut conn = Connection {
        wire: Wire::new(tcp, config.max_reply_line.max(512), config.max_reply_lines.max(1)),
        peer: addr,
        server_name: server_name.to_owned(),
        extensions: Extensions::default(),
        tls: None,
        usable: true,
        command_timeout: config.command_timeout,
        data_timeout: config.data_timeout,
    };
    let greeting = conn.wire.read_reply(config.command_timeout, "greeting").await?;
    if greeting.is_closing() {
        return Err(ClientError::Closed(greeting));
    }
    if greeting.code != 220 {
        // RFC 5321 §3.1: after a 554 greeting the client sends QUIT.
        conn.abandon().await;
        return Err(ClientError::Greeting(greeting));
    }
    conn.hello(&config.helo).await?;
    match policy {
        TlsPolicy::Disabled => {}
        _ if conn.extensions.starttls => conn.start_tls(config, policy).await?,
        TlsPolicy::Required => {
            conn.abandon().await;
            return Err(ClientError::TlsRequired);
        }
        TlsPolicy::Opportunistic => debug!(%addr, server = server_name, "STARTTLS not offered"),
    }
    if let Some(credentials) = &config.auth
        && let Err(e) = conn.authenticate(credentials).await
    {
        if matches!(e, ClientError::AuthWithoutTls | ClientError::AuthUnavailable | ClientError::Auth(_)) {
            conn.abandon().await;
        }
        return Err(e);
    }
    debug!(%addr, server = server_name, tls = conn.tls.is_some(), "connected");
    Ok(conn)
}
