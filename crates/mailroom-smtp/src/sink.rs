//! Where message data goes while it arrives: a bounded memory buffer that
//! spills into a blob file, so no session holds a whole large message. A
//! message that never spilled is stored inline, with its rows.

use std::io;
use std::time::SystemTime;

use mailroom_services::delivery::StoredMessage;
use mailroom_store::{BlobStore, BlobWriter, NewContent};
use mailroom_types::BlobId;

/// Buffered bytes are written to the blob file past this much: what is
/// never spilled is small enough to be stored inline.
const SPILL_AT: usize = NewContent::INLINE_MAX;
/// The header cache and the stored header section come from at most this
/// much of the message start.
const HEAD_BYTES: usize = mailroom_store::MAX_HEADER_SECTION;
/// The buffer starts with room for this much, so that most messages never
/// make it grow (and copy itself) as they arrive.
const FIRST_CAPACITY: usize = 16 * 1024;
// A message spills only once its buffer holds a whole head, so the head
// kept at the first spill is complete.
const _: () = assert!(SPILL_AT >= HEAD_BYTES);

/// The state of a blob after a spill: still open with the (emptied) buffer
/// handed back for reuse, or finished.
enum Spilled {
    Open(BlobWriter, Vec<u8>),
    Finished((BlobId, u64)),
}

/// Computes header fields to add to a message from its header section as
/// the client sent it (a submission's missing `Date:` and `Message-ID:`).
pub(crate) type Completer = Box<dyn FnOnce(&[u8]) -> Vec<u8> + Send + Sync>;

/// One message being received.
pub(crate) struct Sink {
    blobs: BlobStore,
    id: BlobId,
    writer: Option<BlobWriter>,
    buf: Vec<u8>,
    /// The message's first [`HEAD_BYTES`], copied at the first spill;
    /// until then `buf` holds them.
    head: Vec<u8>,
    /// The length of the trace headers at the start.
    prefix_len: usize,
    /// Run once, before the first byte reaches the disk or at the end:
    /// while the message's start is still in `buf`.
    complete: Option<Completer>,
    size: u64,
    failed: Option<io::Error>,
}

impl Sink {
    /// A sink for blob `id` starting with `prefix` (the trace headers),
    /// inserting after it whatever `complete` asks for.
    pub(crate) fn new(blobs: BlobStore, id: BlobId, prefix: Vec<u8>, complete: Option<Completer>) -> Sink {
        let prefix_len = prefix.len();
        let mut sink = Sink {
            blobs,
            id,
            writer: None,
            buf: Vec::with_capacity(FIRST_CAPACITY),
            head: Vec::new(),
            prefix_len,
            complete,
            size: 0,
            failed: None,
        };
        sink.buf.extend_from_slice(&prefix);
        sink.size = prefix.len() as u64;
        sink
    }

    /// The client's header section so far (without the trace headers),
    /// possibly cut short.
    pub(crate) fn client_header(&self) -> &[u8] {
        let head = self.head();
        let head = &head[self.prefix_len.min(head.len())..];
        mailroom_store::header_section(head).unwrap_or(head)
    }

    /// The message's first [`HEAD_BYTES`] (fewer if it is shorter).
    fn head(&self) -> &[u8] {
        if self.writer.is_some() { &self.head } else { &self.buf[..self.buf.len().min(HEAD_BYTES)] }
    }

    /// Runs the completer, once, while the message start is still in `buf`.
    fn run_completer(&mut self) {
        let Some(complete) = self.complete.take() else { return };
        let extra = complete(self.client_header());
        if extra.is_empty() {
            return;
        }
        let at = self.prefix_len;
        self.buf.splice(at..at, extra.iter().copied());
        self.prefix_len += extra.len();
        self.size += extra.len() as u64;
    }

    /// Adds message bytes; spills to disk past [`SPILL_AT`]. A write error is
    /// remembered and reported by [`Sink::finish`], so the session keeps
    /// reading the message and answers 451 at its end.
    pub(crate) async fn push(&mut self, data: &[u8]) {
        self.size += data.len() as u64;
        if self.failed.is_some() {
            return;
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() > SPILL_AT && self.writer.is_none() {
            self.run_completer();
        }
        if self.buf.len() > SPILL_AT
            && let Err(e) = self.spill(false).await
        {
            self.failed = Some(e);
        }
    }

    /// Writes the buffer out (and fsyncs when `finish`) off the async threads.
    async fn spill(&mut self, finish: bool) -> io::Result<Option<(BlobId, u64)>> {
        if self.writer.is_none() {
            // The message's start leaves memory: keep what the header
            // checks and the header cache need of it.
            self.head = self.head().to_vec();
        }
        let blobs = self.blobs.clone();
        let id = self.id.clone();
        let writer = self.writer.take();
        let mut buf = std::mem::take(&mut self.buf);
        let job = move || -> io::Result<Spilled> {
            let mut w = match writer {
                Some(w) => w,
                None => blobs.create(id)?,
            };
            w.write(&buf)?;
            buf.clear();
            if finish { Ok(Spilled::Finished(w.finish()?)) } else { Ok(Spilled::Open(w, buf)) }
        };
        match tokio::task::spawn_blocking(job).await.map_err(io::Error::other)?? {
            Spilled::Open(writer, buf) => {
                self.writer = Some(writer);
                self.buf = buf;
                Ok(None)
            }
            Spilled::Finished(done) => Ok(Some(done)),
        }
    }

    /// Makes the message ready for delivery and describes it: a small one
    /// as inline content (made durable by the delivery's commit), a large
    /// one by finishing (and fsyncing) its blob file.
    pub(crate) async fn finish(mut self, received_at: SystemTime) -> io::Result<StoredMessage> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if self.writer.is_none() {
            self.run_completer();
            match NewContent::inline(self.id.clone(), std::mem::take(&mut self.buf)) {
                Ok(content) => {
                    // Inline content is its own head.
                    let size = content.inline_len().unwrap_or(self.size);
                    return Ok(StoredMessage { content, size, head: Vec::new(), received_at });
                }
                // Completing the last line took it past the inline limit.
                Err(bytes) => self.buf = bytes,
            }
        }
        let (blob, size) = self.spill(true).await?.ok_or_else(|| io::Error::other("blob not finished"))?;
        let head = std::mem::take(&mut self.head);
        // The blob store may have completed an unterminated last line.
        debug_assert!(size == self.size || size == self.size + 2);
        let header = mailroom_store::header_section(&head).unwrap_or_default().to_vec();
        Ok(StoredMessage { content: NewContent::File(blob, header), size, head, received_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailroom_types::IdGenerator;

    const TRACE: &[u8] = b"Received: from a by b; Sun, 22 Nov 2026 05:55:56 +0000\r\n";
    const HEADER: &[u8] = b"From: a@x.test\r\nSubject: Hello\r\n\r\n";

    fn sink(dir: &std::path::Path) -> Sink {
        let blobs = BlobStore::open(dir.join("blobs")).unwrap();
        Sink::new(blobs, IdGenerator::new(1).blob_id(SystemTime::now()), TRACE.to_vec(), None)
    }

    #[tokio::test]
    async fn a_small_message_is_its_own_head() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(dir.path());
        for piece in [&HEADER[..7], &HEADER[7..], b"body\r\n"] {
            sink.push(piece).await;
        }
        assert_eq!(sink.client_header(), HEADER);
        let stored = sink.finish(SystemTime::now()).await.unwrap();
        let whole = [TRACE, HEADER, b"body\r\n"].concat();
        assert!(matches!(&stored.content, NewContent::Inline(_, bytes) if **bytes == whole));
        assert!(stored.head.is_empty(), "no second copy of a message held in memory");
        assert_eq!(stored.head(), whole);
        assert_eq!(stored.new_message().headers.subject, "Hello");
    }

    #[tokio::test]
    async fn a_spilled_message_keeps_its_head() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(dir.path());
        sink.push(HEADER).await;
        let line = [b'x'; 998];
        let mut body = 0;
        while body <= 2 * SPILL_AT {
            sink.push(&line).await;
            sink.push(b"\r\n").await;
            body += line.len() + 2;
        }
        assert!(sink.writer.is_some(), "the message spilled to a file");
        assert_eq!(sink.client_header(), HEADER);
        let stored = sink.finish(SystemTime::now()).await.unwrap();
        let NewContent::File(id, header) = &stored.content else { panic!("a large message goes to a file") };
        assert_eq!(header, &[TRACE, HEADER].concat());
        assert_eq!(stored.head().len(), HEAD_BYTES);
        assert!(stored.head().starts_with(&[TRACE, HEADER].concat()));
        assert_eq!(stored.new_message().headers.subject, "Hello");
        let file = BlobStore::open(dir.path().join("blobs")).unwrap().read(id).unwrap();
        assert_eq!(file.len(), TRACE.len() + HEADER.len() + body);
        assert_eq!(stored.size, file.len() as u64);
    }
}
