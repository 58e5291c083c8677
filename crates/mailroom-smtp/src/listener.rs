//! The accept loop of an SMTP listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailroom_services::net::{ListenerOptions, Refusal, Shutdown, accept_loop};
use mailroom_services::tls::{ListenerTls, Security, accept};
use mailroom_smtp_proto::{EnhancedCode, Reply};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info};

use crate::SmtpContext;
use crate::session::run_session;

/// Serves SMTP on `listener` until shutdown; then stops accepting, lets
/// sessions finish for up to `grace`, and aborts whatever is left.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<SmtpContext>,
    tls: ListenerTls,
    shutdown: Shutdown,
    grace: Duration,
) {
    let options = ListenerOptions { proto: "smtp", connections: Arc::clone(&ctx.connections), shutdown, grace };
    let hostname = ctx.hostname.clone();
    let refuse = move |refusal, ip| {
        let text = match refusal {
            Refusal::ServerFull => format!("{hostname} Error: too many connections"),
            Refusal::TooManyFromAddress => format!("{hostname} Error: too many connections from {ip}"),
        };
        Reply::new(421, Some(EnhancedCode(4, 7, 0)), text).to_bytes()
    };
    accept_loop(listener, options, refuse, move |stream, peer, shutdown| {
        handle(stream, peer, Arc::clone(&ctx), tls.clone(), shutdown)
    })
    .await;
}

async fn handle(stream: TcpStream, peer: SocketAddr, ctx: Arc<SmtpContext>, tls: ListenerTls, shutdown: Shutdown) {
    // The "connection closed" line names the peer too (the span), so at
    // info one line per connection is enough; logging costs CPU per line.
    debug!("connection opened");
    let result = match tls {
        ListenerTls::Plain(starttls) => run_session(stream, peer, &ctx, shutdown, Security::Plain(starttls)).await,
        // Implicit TLS (RFC 8314): the handshake comes before the greeting.
        ListenerTls::Implicit(acceptor) => match accept(&acceptor, stream).await {
            Ok(stream) => run_session(stream, peer, &ctx, shutdown, Security::Tls).await,
            Err(e) => {
                info!(error = %e, "TLS handshake failed");
                return;
            }
        },
    };
    match result {
        Ok(s) => info!(accepted = s.accepted, refused = s.refused, "connection closed"),
        Err(e) => info!(error = %e, "connection lost"),
    }
}
