//! The accept loop of a POP3 listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailroom_pop3_proto::{Code, Reply};
use mailroom_services::net::{ListenerOptions, Refusal, Shutdown, accept_loop};
use mailroom_services::tls::{ListenerTls, Security, accept};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info};

use crate::Pop3Context;
use crate::session::run_session;

/// Serves POP3 on `listener` until shutdown; then stops accepting, lets
/// sessions finish for up to `grace`, and aborts whatever is left.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<Pop3Context>,
    tls: ListenerTls,
    shutdown: Shutdown,
    grace: Duration,
) {
    let options = ListenerOptions { proto: "pop3", connections: Arc::clone(&ctx.connections), shutdown, grace };
    let refuse = |refusal, _ip| {
        let text = match refusal {
            Refusal::ServerFull => "Too many connections, try again later.",
            Refusal::TooManyFromAddress => "Too many connections from your address.",
        };
        Reply::err(Some(Code::SysTemp), text).to_bytes()
    };
    accept_loop(listener, options, refuse, move |stream, peer, shutdown| {
        handle(stream, peer, Arc::clone(&ctx), tls.clone(), shutdown)
    })
    .await;
}

async fn handle(stream: TcpStream, peer: SocketAddr, ctx: Arc<Pop3Context>, tls: ListenerTls, shutdown: Shutdown) {
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
        Ok(s) => info!(retrieved = s.retrieved, deleted = s.deleted, "connection closed"),
        Err(e) => info!(error = %e, "connection lost"),
    }
}
