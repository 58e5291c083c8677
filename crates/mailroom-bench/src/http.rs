//! A minimal HTTP/1.1 client for the `webmail` mode: one keep-alive
//! connection, one request at a time, with the session cookie.
//!
//! It sends `Host`, `Cookie` and, with a body, `Content-Type` and
//! `Content-Length`; it reads the status line, the header fields, and a body
//! framed by `Content-Length` or `Transfer-Encoding: chunked` (RFC 9112
//! §6-7), or, with neither, up to the close. Every read is bounded in time
//! ([`IO_TIMEOUT`]) and in size ([`MAX_HEAD`], [`MAX_BODY`]). A response
//! that says `Connection: close` (or a connection the server closed
//! between requests) makes the next request open a new connection.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// How long any one connect, write or read may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest status line and header section accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// The largest body accepted.
pub const MAX_BODY: usize = 16 * 1024 * 1024;
/// The client's read buffer.
const READ_BUFFER: usize = 64 * 1024;

/// A response, its body whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header fields in order, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header field `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// Whether the server will close the connection after this response.
    fn closes(&self) -> bool {
        self.header("connection").is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    }
}

/// One keep-alive connection to the server.
pub struct HttpConn {
    addr: SocketAddr,
    host: String,
    stream: Option<BufReader<TcpStream>>,
    /// `name=value` sent in `Cookie`, once signed in.
    pub cookie: Option<String>,
    /// Connections opened, the first included.
    pub connects: u64,
}

impl HttpConn {
    /// A client of `addr`; it connects on the first request.
    pub fn new(addr: SocketAddr) -> HttpConn {
        HttpConn { addr, host: addr.to_string(), stream: None, cookie: None, connects: 0 }
    }

    /// Opens the connection now (so that a later request's time does not
    /// include the TCP handshake).
    pub async fn connect(&mut self) -> Result<()> {
        if self.stream.is_none() {
            let stream = bounded("connect", TcpStream::connect(self.addr))
                .await?
                .with_context(|| format!("cannot connect to {}", self.addr))?;
            stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
            self.stream = Some(BufReader::with_capacity(READ_BUFFER, stream));
            self.connects += 1;
        }
        Ok(())
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Result<Response> {
        self.request("GET", path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&mut self, path: &str, json: &str) -> Result<Response> {
        self.request("POST", path, Some(("application/json", json.as_bytes()))).await
    }

    /// Sends a request and reads its response. On an error the connection
    /// is dropped, so the next request starts a new one.
    pub async fn request(&mut self, method: &str, path: &str, body: Option<(&str, &[u8])>) -> Result<Response> {
        let result = self.exchange(method, path, body).await;
        match &result {
            Ok(r) if !r.closes() => {}
            _ => self.stream = None,
        }
        result.with_context(|| format!("{method} {path}"))
    }

    async fn exchange(&mut self, method: &str, path: &str, body: Option<(&str, &[u8])>) -> Result<Response> {
        self.connect().await?;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nAccept: */*\r\n", self.host);
        if let Some(cookie) = &self.cookie {
            head.push_str(&format!("Cookie: {cookie}\r\n"));
        }
        if let Some((kind, bytes)) = body {
            head.push_str(&format!("Content-Type: {kind}\r\nContent-Length: {}\r\n", bytes.len()));
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        if let Some((_, bytes)) = body {
            request.extend_from_slice(bytes);
        }
        let Some(stream) = self.stream.as_mut() else { bail!("not connected") };
        bounded("write", stream.get_mut().write_all(&request)).await?.context("cannot write the request")?;
        read_response(stream, method == "HEAD").await
    }
}

/// Reads one response: head, then the body as its framing says.
pub async fn read_response<R: AsyncBufRead + Unpin>(r: &mut R, head_only: bool) -> Result<Response> {
    let head = read_head(r).await?;
    let (status, headers) = parse_head(&head)?;
    let mut response = Response { status, headers, body: Vec::new() };
    // RFC 9112 §6.3: these never have a body.
    if head_only || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(response);
    }
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|v| v.rsplit(',').next().is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked")));
    if chunked {
        response.body = read_chunked(r).await?;
    } else if let Some(length) = response.header("content-length") {
        let length: usize = length.trim().parse().with_context(|| format!("bad Content-Length {length:?}"))?;
        ensure!(length <= MAX_BODY, "body of {length} octets exceeds {MAX_BODY}");
        let mut body = vec![0; length];
        bounded("reading the body", r.read_exact(&mut body)).await?.context("the body was cut short")?;
        response.body = body;
    } else {
        // Delimited by the close (RFC 9112 §6.3 item 8).
        let mut body = Vec::new();
        bounded("reading the body", r.take(MAX_BODY as u64 + 1).read_to_end(&mut body)).await??;
        ensure!(body.len() <= MAX_BODY, "body exceeds {MAX_BODY} octets");
        response.body = body;
        response.headers.push(("connection".into(), "close".into()));
    }
    Ok(response)
}

/// The status line and header fields up to the empty line, bounded.
async fn read_head<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    loop {
        let before = head.len();
        let n = bounded("waiting for a response", (&mut *r).take(MAX_HEAD as u64).read_until(b'\n', &mut head))
            .await?
            .context("cannot read the response")?;
        ensure!(n > 0, "the server closed the connection");
        ensure!(head.len() <= MAX_HEAD && head.ends_with(b"\n"), "response head longer than {MAX_HEAD} octets");
        let line = &head[before..];
        // Empty lines before the status line are tolerated (RFC 9112 §2.2).
        if line == b"\r\n" || line == b"\n" {
            if before == 0 {
                head.clear();
                continue;
            }
            return Ok(head);
        }
    }
}

/// The status code and the header fields (names lower-cased) of a head.
fn parse_head(head: &[u8]) -> Result<(u16, Vec<(String, String)>)> {
    let text = std::str::from_utf8(head).context("the response head is not UTF-8")?;
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let status_line = lines.next().unwrap_or_default();
    let mut words = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (words.next(), words.next()) else { bail!("bad status line {status_line:?}") };
    ensure!(version.starts_with("HTTP/1."), "not an HTTP/1.x response: {status_line:?}");
    let status: u16 = code.parse().with_context(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else { bail!("bad header line {line:?}") };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok((status, headers))
}

/// A chunked body (RFC 9112 §7.1), its trailer section skipped.
async fn read_chunked<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r).await?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).with_context(|| format!("bad chunk size line {line:?}"))?;
        if size == 0 {
            // Trailer fields, up to the empty line.
            while !read_line(r).await?.is_empty() {}
            return Ok(body);
        }
        ensure!(body.len() + size <= MAX_BODY, "chunked body exceeds {MAX_BODY} octets");
        let start = body.len();
        body.resize(start + size, 0);
        bounded("reading a chunk", r.read_exact(&mut body[start..])).await?.context("a chunk was cut short")?;
        ensure!(read_line(r).await?.is_empty(), "no CRLF after a chunk");
    }
}

/// One line without its line ending, bounded.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<String> {
    let mut buf = Vec::new();
    let n = bounded("reading a chunk header", (&mut *r).take(4096).read_until(b'\n', &mut buf)).await??;
    ensure!(n > 0 && buf.ends_with(b"\n"), "the chunked body was cut short");
    Ok(String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_string())
}

/// Runs `f` bounded by [`IO_TIMEOUT`].
async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> Result<T> {
    match timeout(IO_TIMEOUT, f).await {
        Ok(v) => Ok(v),
        Err(_) => bail!("{what} timed out after {IO_TIMEOUT:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse_all(wire: &[u8], buffer: usize) -> (Vec<Response>, usize) {
        let mut r = BufReader::with_capacity(buffer, wire);
        let mut out = Vec::new();
        while !r.fill_buf().await.unwrap().is_empty() {
            out.push(read_response(&mut r, false).await.unwrap());
        }
        (out, r.buffer().len())
    }

    #[tokio::test]
    async fn content_length_responses_follow_each_other() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\nSet-Cookie: a=b\r\n\r\nhello\
                     HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n\
                     HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
        for buffer in [1, 7, 4096] {
            let (got, left) = parse_all(wire, buffer).await;
            assert_eq!(left, 0);
            assert_eq!(got.len(), 3, "buffer {buffer}");
            assert_eq!((got[0].status, got[0].body.as_slice()), (200, &b"hello"[..]));
            assert_eq!(got[0].header("set-cookie"), Some("a=b"));
            assert_eq!(got[0].header("content-type"), Some("text/html"));
            assert_eq!((got[1].status, got[1].body.len()), (304, 0));
            assert_eq!((got[2].status, got[2].body.len()), (404, 0));
        }
    }

    #[tokio::test]
    async fn chunked_bodies_are_joined() {
        let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                     5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n\
                     HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        for buffer in [1, 3, 4096] {
            let (got, _) = parse_all(wire, buffer).await;
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].body, b"hello, world");
            assert_eq!(got[1].body, b"ok");
        }
    }

    #[tokio::test]
    async fn bad_responses_are_refused() {
        let read = |wire: &'static [u8]| async move { read_response(&mut BufReader::new(wire), false).await };
        assert!(read(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").await.is_err());
        assert!(read(b"SMTP 220 hello\r\n\r\n").await.is_err());
        assert!(read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").await.is_err());
        assert!(read(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n").await.is_err());
        assert!(read(b"").await.is_err());
        let closed = read(b"HTTP/1.0 200 OK\r\n\r\nuntil the end").await.unwrap();
        assert_eq!(closed.body, b"until the end");
        assert!(closed.closes());
    }
}
