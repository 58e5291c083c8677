//! What every listener shares: the accept loop, connection limits and the
//! shutdown signal.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::tls::{self, ListenerTls, MaybeTls, Security};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The server-wide connection limit is reached.
    ServerFull,
    /// This client address already has its share of connections.
    TooManyFromAddress,
}

/// Counts connections over all listeners, in total and per client address.
///
/// One limiter is shared by every listener so a client cannot multiply its
/// share by spreading over ports.
#[derive(Debug)]
pub struct ConnectionLimiter {
    max_total: usize,
    max_per_ip: usize,
    state: Mutex<LimiterState>,
}

#[derive(Debug, Default)]
struct LimiterState {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

impl ConnectionLimiter {
    /// A limiter allowing `max_total` connections, `max_per_ip` from one address.
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<ConnectionLimiter> {
        Arc::new(ConnectionLimiter { max_total, max_per_ip, state: Mutex::default() })
    }

    /// Admits a connection from `ip`, or says why not. The slot is freed when
    /// the returned guard drops.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionSlot, Refusal> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.total >= self.max_total {
            return Err(Refusal::ServerFull);
        }
        let n = s.per_ip.entry(ip).or_default();
        if *n >= self.max_per_ip {
            return Err(Refusal::TooManyFromAddress);
        }
        *n += 1;
        s.total += 1;
        Ok(ConnectionSlot { limiter: Arc::clone(self), ip })
    }

    /// Connections currently admitted.
    pub fn active(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

/// An admitted connection; frees its slot on drop.
#[derive(Debug)]
pub struct ConnectionSlot {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut s = self.limiter.state.lock().unwrap_or_else(|e| e.into_inner());
        s.total -= 1;
        if let Some(n) = s.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                s.per_ip.remove(&self.ip);
            }
        }
    }
}

/// The "stop accepting, finish what is in flight" signal, sent once.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// Sends the shutdown signal.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

impl Shutdown {
    /// A new signal and its trigger.
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger(tx), Shutdown(rx))
    }

    /// True once shutdown has begun.
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when shutdown begins (at once if it already has, or if the
    /// trigger was dropped).
    pub async fn triggered(&mut self) {
        let _ = self.0.wait_for(|v| *v).await;
    }
}

impl ShutdownTrigger {
    /// Begins shutdown.
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}

/// What a session's wait for client bytes ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Bytes were appended to the buffer.
    Data,
    /// The client closed its side.
    Eof,
    /// Nothing arrived within the idle timeout.
    TimedOut,
    /// Shutdown began while waiting.
    ShuttingDown,
}

/// Waits for client bytes and appends them to the spare capacity of `buf`
/// (never more than that capacity, so the buffer stays bounded), unless the
/// idle `timeout` passes first or, when `shutdown` is given, shutdown
/// begins. Filling spare capacity also avoids zeroing a buffer per read.
pub async fn read_or_stop<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    timeout: Duration,
    shutdown: Option<&mut Shutdown>,
) -> std::io::Result<ReadOutcome> {
    let read = tokio::time::timeout(timeout, stream.read_buf(buf));
    let outcome = |r: Result<std::io::Result<usize>, _>| match r {
        Ok(Ok(0)) => Ok(ReadOutcome::Eof),
        Ok(Ok(_)) => Ok(ReadOutcome::Data),
        Ok(Err(e)) => Err(e),
        Err(_) => Ok(ReadOutcome::TimedOut),
    };
    match shutdown {
        Some(shutdown) => tokio::select! {
            r = read => outcome(r),
            _ = shutdown.triggered() => Ok(ReadOutcome::ShuttingDown),
        },
        None => outcome(read.await),
    }
}

/// How a listener runs: its name for logs, its limits, and its shutdown.
pub struct ListenerOptions {
    /// The protocol name, used as the span name of each connection.
    pub proto: &'static str,
    /// Connection limits shared with every other listener.
    pub connections: Arc<ConnectionLimiter>,
    /// The shutdown signal.
    pub shutdown: Shutdown,
    /// How long sessions may take to finish once shutdown has begun.
    pub grace: Duration,
    /// Plain (with or without STARTTLS) or implicit TLS.
    pub tls: ListenerTls,
}

/// Accepts connections until shutdown, each in its own task with a span
/// (`proto`, `conn_id`, `peer`); a connection over the limits gets the bytes
/// `refuse` makes (the protocol's "go away" line) and is closed. On an
/// implicit-TLS listener the task runs the handshake before `handle` gets
/// the stream; a failed handshake is logged and ends the connection. On
/// shutdown the socket is closed at once (new clients are refused), sessions
/// get `grace` to finish, and whatever is left is aborted. A panicking
/// session is logged and ends alone.
pub async fn accept_loop<H, Fut>(
    listener: TcpListener,
    options: ListenerOptions,
    refuse: impl Fn(Refusal, IpAddr) -> Vec<u8>,
    handle: H,
) where
    H: Fn(MaybeTls<TcpStream>, Security, SocketAddr, Shutdown) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let ListenerOptions { proto, connections, mut shutdown, grace, tls } = options;
    let handle = Arc::new(handle);
    let mut sessions = JoinSet::new();
    let mut next_id: u64 = 0;
    loop {
        tokio::select! {
            _ = shutdown.triggered() => break,
            accepted = listener.accept() => match accepted {
                Ok((mut stream, peer)) => {
                    next_id += 1;
                    let span = info_span!("conn", proto, conn_id = next_id, %peer);
                    let _ = stream.set_nodelay(true);
                    match connections.admit(peer.ip()) {
                        Ok(slot) => {
                            let (handle, tls, shutdown) = (Arc::clone(&handle), tls.clone(), shutdown.clone());
                            sessions.spawn(async move {
                                let _slot = slot;
                                // One line per connection at info is enough
                                // ("connection closed" names the peer too).
                                debug!("connection opened");
                                // Implicit TLS (RFC 8314): the handshake
                                // comes before the greeting.
                                match tls::open(tls, stream).await {
                                    Ok((stream, security)) => handle(stream, security, peer, shutdown).await,
                                    Err(e) => info!(error = %e, "TLS handshake failed"),
                                }
                            }.instrument(span));
                        }
                        Err(refusal) => {
                            let bytes = refuse(refusal, peer.ip());
                            sessions.spawn(async move {
                                info!(?refusal, "connection refused");
                                let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(&bytes)).await;
                            }.instrument(span));
                        }
                    }
                }
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    warn!(proto, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(done) = sessions.join_next(), if !sessions.is_empty() => log_join(proto, done),
        }
    }
    // Close the socket now, so new clients are refused at once instead of
    // waiting for a greeting that will never come.
    drop(listener);
    info!(proto, sessions = sessions.len(), "listener stopped accepting");
    let deadline = tokio::time::sleep(grace);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => {
                warn!(proto, sessions = sessions.len(), "grace period over, aborting sessions");
                sessions.abort_all();
                while sessions.join_next().await.is_some() {}
                break;
            }
            done = sessions.join_next() => match done {
                Some(done) => log_join(proto, done),
                None => break,
            },
        }
    }
}

fn log_join(proto: &str, done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        error!(proto, error = %e, "session panicked");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_total_and_per_address() {
        let l = ConnectionLimiter::new(3, 2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let s1 = l.admit(a).unwrap();
        let _s2 = l.admit(a).unwrap();
        assert_eq!(l.admit(a).unwrap_err(), Refusal::TooManyFromAddress);
        let _s3 = l.admit(b).unwrap();
        assert_eq!(l.admit(b).unwrap_err(), Refusal::ServerFull);
        drop(s1);
        assert_eq!(l.active(), 2);
        assert!(l.admit(a).is_ok());
    }

    #[tokio::test]
    async fn shutdown_is_observed() {
        let (trigger, mut s) = Shutdown::new();
        assert!(!s.is_triggered());
        trigger.trigger();
        s.triggered().await;
        assert!(s.is_triggered());
    }
}
