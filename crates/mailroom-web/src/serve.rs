//! The `http` and `https` listeners: the accept loop every protocol
//! shares (connection limits, TLS, graceful shutdown), with HTTP/1.1 per
//! connection.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use mailroom_services::net::{ConnectionLimiter, ListenerOptions, Refusal, Shutdown, accept_loop};
use mailroom_services::tls::ListenerTls;
use tokio::net::TcpListener;
use tower::ServiceExt;
use tracing::debug;

use crate::App;

/// Who is on the other end of a request's connection.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// The client's address: login throttling counts per address.
    pub ip: IpAddr,
    /// Whether the connection is TLS: cookies are `Secure` then.
    pub tls: bool,
}

/// Serves the webmail on `listener` until shutdown; requests in flight get
/// `grace` to finish.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    connections: Arc<ConnectionLimiter>,
    tls: ListenerTls,
    shutdown: Shutdown,
    grace: Duration,
) {
    let router = app.router();
    let idle = app.config.idle_timeout.0;
    let proto = if matches!(tls, ListenerTls::Implicit(_)) { "https" } else { "http" };
    let options = ListenerOptions { proto, connections, shutdown, grace, tls };
    accept_loop(listener, options, refusal, move |stream, security, peer, mut shutdown| {
        let router = router.clone();
        async move {
            let peer = Peer { ip: peer.ip(), tls: security.is_tls() };
            let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(peer);
                router.clone().oneshot(request)
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(idle)
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => log_end(result),
                _ = shutdown.triggered() => {
                    // Finish the request under way, then close.
                    conn.as_mut().graceful_shutdown();
                    log_end(conn.await);
                }
            }
        }
    })
    .await;
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Peer, Self::Rejection> {
        Ok(crate::guard::peer(parts))
    }
}

fn log_end(result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        debug!(error = %e, "connection ended");
    }
}

/// What a refused connection reads before it is closed.
fn refusal(_: Refusal, _: IpAddr) -> Vec<u8> {
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 33\r\nRetry-After: 10\r\nConnection: close\r\n\r\nToo many connections; try again.\n"
        .to_vec()
}
