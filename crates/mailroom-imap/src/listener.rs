//! The accept loop of an IMAP listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailroom_services::net::{ListenerOptions, Refusal, Shutdown, accept_loop};
use mailroom_services::tls::{ListenerTls, MaybeTls, Security};
use tokio::net::{TcpListener, TcpStream};
use tracing::info;

use crate::ImapContext;
use crate::session::run_session;

/// Serves IMAP on `listener` until shutdown; then stops accepting, lets
/// sessions finish for up to `grace`, and aborts whatever is left. `tls`
/// makes it an implicit-TLS listener, or offers STARTTLS.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<ImapContext>,
    tls: ListenerTls,
    shutdown: Shutdown,
    grace: Duration,
) {
    let options = ListenerOptions { proto: "imap", connections: Arc::clone(&ctx.connections), shutdown, grace, tls };
    // RFC 9051 §7.1.5: a server refusing a connection greets with BYE.
    let refuse = |refusal, _ip| {
        let text = match refusal {
            Refusal::ServerFull => "* BYE Too many connections, try again later.\r\n",
            Refusal::TooManyFromAddress => "* BYE Too many connections from your address.\r\n",
        };
        text.as_bytes().to_vec()
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
    ctx: Arc<ImapContext>,
    shutdown: Shutdown,
) {
    match run_session(stream, peer, &ctx, shutdown, security).await {
        Ok(s) => info!(commands = s.commands, "connection closed"),
        Err(e) => info!(error = %e, "connection lost"),
    }
}
