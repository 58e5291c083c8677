//! The accept loop of a POP3 listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailroom_pop3_proto::{Code, Reply};
use mailroom_services::net::{ListenerOptions, Refusal, Shutdown, accept_loop};
use mailroom_services::tls::{ListenerTls, MaybeTls, Security};
use tokio::net::{TcpListener, TcpStream};
use tracing::info;

use crate::Pop3Context;
use crate::session::run_session;

/// Serves POP3 on `listener` until shutdown; then stops accepting, lets
/// sessions finish for up to `grace`, and aborts whatever is left. `tls`
/// makes it an implicit-TLS listener, or offers STARTTLS.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<Pop3Context>,
    tls: ListenerTls,
    shutdown: Shutdown,
    grace: Duration,
) {
    let options = ListenerOptions { proto: "pop3", connections: Arc::clone(&ctx.connections), shutdown, grace, tls };
    let refuse = |refusal, _ip| {
        let text = match refusal {
            Refusal::ServerFull => "Too many connections, try again later.",
            Refusal::TooManyFromAddress => "Too many connections from your address.",
        };
        Reply::err(Some(Code::SysTemp), text).to_bytes()
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
    ctx: Arc<Pop3Context>,
    shutdown: Shutdown,
) {
    match run_session(stream, peer, &ctx, shutdown, security).await {
        Ok(s) => info!(retrieved = s.retrieved, deleted = s.deleted, "connection closed"),
        Err(e) => info!(error = %e, "connection lost"),
    }
}
