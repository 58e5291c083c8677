//! The accept loop of an SMTP listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailroom_services::net::{Refusal, Shutdown};
use mailroom_smtp_proto::{EnhancedCode, Reply};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tracing::{Instrument, error, info, info_span, warn};

use crate::SmtpContext;
use crate::session::run_session;

/// Serves SMTP on `listener` until shutdown; then stops accepting, lets
/// sessions finish for up to `grace`, and aborts whatever is left.
pub async fn serve(listener: TcpListener, ctx: Arc<SmtpContext>, mut shutdown: Shutdown, grace: Duration) {
    let mut sessions = JoinSet::new();
    let mut next_id: u64 = 0;
    loop {
        tokio::select! {
            _ = shutdown.triggered() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    next_id += 1;
                    let span = info_span!("smtp", conn_id = next_id, %peer);
                    let ctx = Arc::clone(&ctx);
                    let shutdown = shutdown.clone();
                    sessions.spawn(handle(stream, peer, ctx, shutdown).instrument(span));
                }
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(done) = sessions.join_next(), if !sessions.is_empty() => log_join(done),
        }
    }
    // Close the socket now, so new clients are refused at once instead of
    // waiting for a greeting that will never come.
    drop(listener);
    info!(sessions = sessions.len(), "smtp listener stopped accepting");
    let deadline = tokio::time::sleep(grace);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => {
                warn!(sessions = sessions.len(), "grace period over, aborting sessions");
                sessions.abort_all();
                while sessions.join_next().await.is_some() {}
                break;
            }
            done = sessions.join_next() => match done {
                Some(done) => log_join(done),
                None => break,
            },
        }
    }
}

fn log_join(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        error!(error = %e, "smtp session panicked");
    }
}

async fn handle(mut stream: TcpStream, peer: SocketAddr, ctx: Arc<SmtpContext>, shutdown: Shutdown) {
    let _ = stream.set_nodelay(true);
    let _slot = match ctx.connections.admit(peer.ip()) {
        Ok(slot) => slot,
        Err(refusal) => {
            let text = match refusal {
                Refusal::ServerFull => format!("{} Error: too many connections", ctx.hostname),
                Refusal::TooManyFromAddress => {
                    format!("{} Error: too many connections from {}", ctx.hostname, peer.ip())
                }
            };
            info!(?refusal, "connection refused");
            let reply = Reply::new(421, Some(EnhancedCode(4, 7, 0)), text);
            let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(&reply.to_bytes())).await;
            return;
        }
    };
    info!("connection opened");
    match run_session(stream, peer, &ctx, shutdown).await {
        Ok(s) => info!(accepted = s.accepted, refused = s.refused, "connection closed"),
        Err(e) => info!(error = %e, "connection lost"),
    }
}
