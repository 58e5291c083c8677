//! Sending a file's bytes to a client without copying them through user
//! space: `sendfile(2)` moves them from the page cache into the socket.
//! Only a plain TCP stream can take them this way; under TLS the bytes
//! must be encrypted by this process, so they are read as usual.

use std::fs::File;
use std::io;
use std::time::Duration;

use tokio::io::{DuplexStream, Interest};
use tokio::net::TcpStream;

use crate::tls::MaybeTls;

/// The most one `sendfile` call is asked for: a slow client makes the
/// call return early anyway, and the loop waits for room in between.
const MAX_CHUNK: usize = 1 << 20;

/// A stream that can say which TCP socket its writes go straight into.
pub trait DirectSocket {
    /// The socket, when writes to this stream are written to it as they
    /// are (plain TCP); `None` otherwise (TLS, or no socket at all).
    fn socket(&self) -> Option<&TcpStream> {
        None
    }
}

impl DirectSocket for TcpStream {
    fn socket(&self) -> Option<&TcpStream> {
        Some(self)
    }
}

/// Tests' in-memory streams.
impl DirectSocket for DuplexStream {}

impl<S: DirectSocket> DirectSocket for MaybeTls<S> {
    fn socket(&self) -> Option<&TcpStream> {
        match self {
            MaybeTls::Plain(s) => s.socket(),
            MaybeTls::Tls(_) | MaybeTls::Broken => None,
        }
    }
}

/// Sends `len` octets of `file` from `offset` to `socket`, waiting at most
/// `timeout` in all for a client that does not read. Whatever the caller
/// wrote to the socket before must already be written (nothing buffered).
pub async fn send_file(socket: &TcpStream, file: &File, offset: u64, len: u64, timeout: Duration) -> io::Result<()> {
    let send = async {
        let (mut at, end) = (offset, offset + len);
        while at < end {
            socket.writable().await?;
            let chunk = usize::try_from(end - at).map_or(MAX_CHUNK, |left| left.min(MAX_CHUNK));
            let sent = socket.try_io(Interest::WRITABLE, || {
                rustix::fs::sendfile(socket, file, Some(&mut at), chunk).map_err(io::Error::from)
            });
            match sent {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file ends before its bytes")),
                Ok(_) => {}
                // The socket's buffer is full: wait for the client.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    };
    tokio::time::timeout(timeout, send)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client stopped reading"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use tokio::io::AsyncReadExt;

    /// A file's range arrives whole, past many fillings of the socket's
    /// buffer, and a file shorter than asked for is an error.
    #[tokio::test]
    async fn sends_a_range_of_a_file() {
        let mut file = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        file.write_all(&data).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let reader = tokio::spawn(async move {
            let mut client = client;
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        assert!(MaybeTls::Plain(client_stub()).socket().is_none());
        assert!(server.socket().is_some());
        send_file(&server, &file, 1000, 2_500_000, Duration::from_secs(30)).await.unwrap();
        let short = send_file(&server, &file, 2_999_000, 5000, Duration::from_secs(30)).await;
        assert_eq!(short.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        drop(server);
        let got = reader.await.unwrap();
        assert_eq!(got.len(), 2_501_000);
        assert!(got[..2_500_000] == data[1000..2_501_000]);
        assert!(got[2_500_000..] == data[2_999_000..]);
    }

    fn client_stub() -> DuplexStream {
        tokio::io::duplex(16).0
    }
}
