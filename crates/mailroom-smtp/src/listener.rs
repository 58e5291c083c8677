//! The accept loop of an SMTP listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailroom_services::net::{ListenerOptions, Refusal, Shutdown, accept_loop};
use mailroom_services::tls::{ListenerTls, MaybeTls, Security};
use mailroom_smtp_proto::{EnhancedCode, Reply};
use tokio::net::{TcpListener, TcpStream};
use tracing::info;

use crate::SmtpContext;
use crate::session::run_session;

/// Serves SMTP on `listener` until shutdown; then stops accepting, lets
/// sessions finish for up to `grace`, and aborts whatever is left. `tls`
/// makes it an implicit-TLS listener, or offers STARTTLS.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<SmtpContext>,
    tls: ListenerTls,
    shutdown: Shutdown,
    grace: Duration,
) {
    let options = ListenerOptions { proto: "smtp", connections: Arc::clone(&ctx.connections), shutdown, grace, tls };
    let hostname = ctx.hostname.clone();
    let refuse = move |refusal, ip| {
        let text = match refusal {
            Refusal::ServerFull => format!("{hostname} Error: too many connections"),
            Refusal::TooManyFromAddress => format!("{hostname} Error: too many connections from {ip}"),
        };
        Reply::new(421, Some(EnhancedCode(4, 7, 0)), text).to_bytes()
    };
    accept_loop(listener, options, refuse, move |stream, security, peer, shutdown| {
        handle(stream, security, peer, Arc::clone(&ctx), shutdown)
    })
    .await;
}

async fn handle(
    stream: MaybeTls<TcpStream>,
    security: Security,
    peer: SocketAddr,
    ctx: Arc<SmtpContext>,
    shutdown: Shutdown,
) {
    match run_session(stream, peer, &ctx, shutdown, security).await {
        Ok(s) => info!(accepted = s.accepted, refused = s.refused, "connection closed"),
        Err(e) => info!(error = %e, "connection lost"),
    }
}
