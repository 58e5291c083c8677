//! The connection's bytes: a plain or TLS stream, a bounded buffer that
//! reads replies line by line, and writes that coalesce small pieces.
//! Every wait has a deadline; an expired one names the stage it was in.

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::ClientError;
use super::data::{self, CHUNK};
use super::reply::{Reply, ReplyBuilder};

/// The socket, before or after STARTTLS.
pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Between giving the plain stream to the handshake and getting the
    /// TLS one back; a failed handshake leaves it here for good.
    Gone,
}

/// A stream with its read buffer and write scratch space.
pub(super) struct Wire {
    stream: Stream,
    /// Holds at most one line (`max_line` plus CRLF) beyond what was used.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    max_lines: usize,
    /// Where small writes are gathered into one; at most a few [`CHUNK`]s.
    scratch: Vec<u8>,
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection is closed")
}

/// Runs `f` within `limit`, naming `stage` if it does not finish.
pub(super) async fn within<T>(
    limit: Duration,
    stage: &'static str,
    f: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::time::timeout(limit, f).await.map_err(|_| ClientError::Timeout(stage))?
}

impl Wire {
    /// A wire over `stream` refusing reply lines longer than `max_line`
    /// octets and replies of more than `max_lines` lines.
    pub(super) fn new(stream: TcpStream, max_line: usize, max_lines: usize) -> Wire {
        Wire {
            stream: Stream::Plain(stream),
            buf: vec![0; max_line + 2].into_boxed_slice(),
            start: 0,
            end: 0,
            max_lines,
            scratch: Vec::with_capacity(CHUNK),
        }
    }

    /// Whether the server sent bytes not yet read as a reply.
    pub(super) fn has_buffered(&self) -> bool {
        self.start < self.end
    }

    /// The plain stream, for the TLS handshake; the wire is unusable until
    /// [`Wire::set_tls`].
    pub(super) fn take_plain(&mut self) -> Option<TcpStream> {
        match std::mem::replace(&mut self.stream, Stream::Gone) {
            Stream::Plain(s) => Some(s),
            other => {
                self.stream = other;
                None
            }
        }
    }

    /// Continues over the TLS stream the handshake gave.
    pub(super) fn set_tls(&mut self, tls: TlsStream<TcpStream>) {
        self.stream = Stream::Tls(Box::new(tls));
    }

    /// Reads one reply within `limit`.
    pub(super) async fn read_reply(&mut self, limit: Duration, stage: &'static str) -> Result<Reply, ClientError> {
        within(limit, stage, async {
            let mut builder = ReplyBuilder::new(self.max_lines);
            loop {
                let (from, to) = self.read_line().await?;
                if let Some(reply) = builder.push(&self.buf[from..to]).map_err(ClientError::Protocol)? {
                    return Ok(reply);
                }
            }
        })
        .await
    }

    /// The next line in the buffer (its range, LF included), reading more
    /// as needed, without ever holding more than one line's worth.
    async fn read_line(&mut self) -> Result<(usize, usize), ClientError> {
        let mut scanned = self.start;
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[scanned..self.end]) {
                let line = (self.start, scanned + i + 1);
                self.start = line.1;
                return Ok(line);
            }
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            scanned = self.end;
            if self.end == self.buf.len() {
                return Err(ClientError::Protocol(format!("reply line longer than {} octets", self.buf.len() - 2)));
            }
            let n = match &mut self.stream {
                Stream::Plain(s) => s.read(&mut self.buf[self.end..]).await,
                Stream::Tls(s) => s.read(&mut self.buf[self.end..]).await,
                Stream::Gone => Err(gone()),
            }
            .map_err(ClientError::Io)?;
            if n == 0 {
                let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection");
                return Err(ClientError::Io(eof));
            }
            self.end += n;
        }
    }

    /// Writes `parts` within `limit` and flushes: small parts gathered
    /// into one write, large ones written straight from the caller.
    pub(super) async fn write(
        &mut self,
        parts: &[&[u8]],
        limit: Duration,
        stage: &'static str,
    ) -> Result<(), ClientError> {
        within(limit, stage, async {
            self.scratch.clear();
            for part in parts {
                if self.scratch.len() + part.len() <= CHUNK {
                    self.scratch.extend_from_slice(part);
                    continue;
                }
                self.write_scratch().await?;
                if part.len() >= CHUNK {
                    write_all(&mut self.stream, part).await?;
                } else {
                    self.scratch.extend_from_slice(part);
                }
            }
            self.write_scratch().await?;
            self.flush().await
        })
        .await
    }

    /// Writes `message` dot-stuffed and terminated by `CRLF.CRLF`, in
    /// [`CHUNK`]-sized writes, within `limit`.
    pub(super) async fn write_stuffed(
        &mut self,
        message: &[u8],
        limit: Duration,
        stage: &'static str,
    ) -> Result<(), ClientError> {
        within(limit, stage, async {
            self.scratch.clear();
            let mut at_line_start = true;
            for piece in message.chunks(CHUNK) {
                data::stuff(piece, at_line_start, &mut self.scratch);
                at_line_start = piece.ends_with(b"\n");
                if self.scratch.len() >= CHUNK {
                    self.write_scratch().await?;
                }
            }
            self.scratch.extend_from_slice(data::data_terminator(message));
            self.write_scratch().await?;
            self.flush().await
        })
        .await
    }

    async fn write_scratch(&mut self) -> Result<(), ClientError> {
        if !self.scratch.is_empty() {
            write_all(&mut self.stream, &self.scratch).await?;
            self.scratch.clear();
        }
        // A huge message must not leave a huge buffer behind.
        if self.scratch.capacity() > 4 * CHUNK {
            self.scratch = Vec::with_capacity(CHUNK);
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), ClientError> {
        match &mut self.stream {
            Stream::Plain(s) => s.flush().await,
            Stream::Tls(s) => s.flush().await,
            Stream::Gone => Err(gone()),
        }
        .map_err(ClientError::Io)
    }

    /// Closes the write side (TLS close_notify first), ignoring errors.
    pub(super) async fn shutdown(&mut self) {
        let _ = match &mut self.stream {
            Stream::Plain(s) => s.shutdown().await,
            Stream::Tls(s) => s.shutdown().await,
            Stream::Gone => Ok(()),
        };
    }
}

async fn write_all(stream: &mut Stream, bytes: &[u8]) -> Result<(), ClientError> {
    match stream {
        Stream::Plain(s) => s.write_all(bytes).await,
        Stream::Tls(s) => s.write_all(bytes).await,
        Stream::Gone => Err(gone()),
    }
    .map_err(ClientError::Io)
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    /// A message of several chunks, with dotted lines across the chunk
    /// boundaries, arrives stuffed exactly as one pass over it stuffs it.
    #[tokio::test]
    async fn large_messages_are_stuffed_across_chunks() {
        let mut message = Vec::new();
        let mut n = 0;
        while message.len() < 3 * CHUNK + 100 {
            n += 1;
            message.extend_from_slice(format!(".{n}{}\r\n", "x".repeat(n % 97)).as_bytes());
        }
        let mut want = Vec::new();
        data::stuff(&message, true, &mut want);
        want.extend_from_slice(b".\r\n");

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.unwrap();
            got
        });
        let mut wire = Wire::new(client, 512, 10);
        wire.write_stuffed(&message, Duration::from_secs(5), "message").await.unwrap();
        wire.shutdown().await;
        let got = reader.await.unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got == want);
    }
}
