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
            buf: Vec::new(),
            head: prefix.clone(),
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
        let head = &self.head[self.prefix_len..];
        mailroom_store::header_section(head).unwrap_or(head)
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
        self.head.splice(at..at, extra.iter().copied());
        self.prefix_len += extra.len();
        self.size += extra.len() as u64;
    }

    /// Adds message bytes; spills to disk past [`SPILL_AT`]. A write error is
    /// remembered and reported by [`Sink::finish`], so the session keeps
    /// reading the message and answers 451 at its end.
    pub(crate) async fn push(&mut self, data: &[u8]) {
        if self.head.len() < HEAD_BYTES {
            let take = data.len().min(HEAD_BYTES - self.head.len());
            self.head.extend_from_slice(&data[..take]);
        }
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
        }
        let head = std::mem::take(&mut self.head);
        if self.writer.is_none() {
            match NewContent::inline(self.id.clone(), std::mem::take(&mut self.buf)) {
                Ok(content) => {
                    let size = content.inline_len().unwrap_or(self.size);
                    return Ok(StoredMessage { content, size, head, received_at });
                }
                // Completing the last line took it past the inline limit.
                Err(bytes) => self.buf = bytes,
            }
        }
        let (blob, size) = self.spill(true).await?.ok_or_else(|| io::Error::other("blob not finished"))?;
        // The blob store may have completed an unterminated last line.
        debug_assert!(size == self.size || size == self.size + 2);
        let header = mailroom_store::header_section(&head).unwrap_or_default().to_vec();
        Ok(StoredMessage { content: NewContent::File(blob, header), size, head, received_at })
    }
}
