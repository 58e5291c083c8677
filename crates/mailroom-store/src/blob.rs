//! The blob store: one file per large raw message under `data_dir/blobs/`
//! (small ones are appended to pack files, see [`crate::NewContent`]).
//!
//! Layout: `blobs/<shard>/<name>`, where the shard is the hour bucket encoded
//! in the [`BlobId`]. A blob is written by a [`BlobWriter`], fsync'd by
//! [`BlobWriter::finish`], and its directory is fsync'd by the metadata
//! commit that first references it (once per directory per group commit).
//! Blob files are immutable once finished.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mailroom_types::BlobId;

use crate::NewContent;
use crate::pack::ReadGuard;

/// A blob as [`crate::MailStore::scan_extents`] hands it to its visitor:
/// read, or only located.
#[derive(Debug)]
pub enum Scanned<'a> {
    /// Its bytes, read.
    Bytes(BlobBytes<'a>),
    /// Where its bytes lie, not read.
    Extent(BlobExtent),
}

impl<'a> Scanned<'a> {
    /// The bytes, when they were read.
    pub fn into_bytes(self) -> Option<BlobBytes<'a>> {
        match self {
            Scanned::Bytes(bytes) => Some(bytes),
            Scanned::Extent(_) => None,
        }
    }
}

/// Where a message's bytes lie in a file, so that a server can send them
/// to a socket straight from the page cache (`sendfile`) without reading
/// them into memory first. The bytes stay there while this is held, even
/// if the message is expunged meanwhile.
#[derive(Debug, Clone)]
pub struct BlobExtent {
    file: Arc<File>,
    offset: u64,
    len: u64,
    /// Keeps a pack's extent from being punched out while held.
    _guard: Option<Arc<ReadGuard>>,
}

impl BlobExtent {
    pub(crate) fn new(file: Arc<File>, offset: u64, len: u64, guard: Option<Arc<ReadGuard>>) -> BlobExtent {
        BlobExtent { file, offset, len, _guard: guard }
    }

    /// The file holding the bytes.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Where in [`BlobExtent::file`] they begin.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// How many octets.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty message.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A blob's bytes as [`crate::MailStore::scan_blobs`] hands them to its
/// visitor: the front of a buffer the read thread reuses for every blob.
/// The buffer only grows, so it is zeroed once, not before every read.
#[derive(Debug)]
pub struct BlobBytes<'a> {
    buf: &'a mut Vec<u8>,
    len: usize,
}

impl<'a> BlobBytes<'a> {
    pub(crate) fn new(buf: &'a mut Vec<u8>, len: usize) -> BlobBytes<'a> {
        debug_assert!(len <= buf.len());
        BlobBytes { buf, len }
    }

    /// The blob's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The bytes as a buffer of their own, without a copy; the buffer
    /// `spare` makes becomes the read thread's in its place. A visitor that
    /// sends the bytes on hands back, as `spare`, a buffer it is done with:
    /// its length is kept, so the next read into it zeroes nothing.
    ///
    /// A buffer more than twice the size of the blob (it held a larger one
    /// before) stays with the read thread, and the bytes are copied out
    /// instead (`spare` is not called): what a visitor keeps is never much
    /// more than the bytes.
    pub fn take(self, spare: impl FnOnce() -> Vec<u8>) -> Vec<u8> {
        /// Small blobs may take a buffer of this size whatever they fill.
        const SMALL: usize = 8 * 1024;
        if self.buf.capacity() > 2 * self.len.max(SMALL) {
            return self.bytes().to_vec();
        }
        let mut bytes = std::mem::replace(self.buf, spare());
        bytes.truncate(self.len);
        bytes
    }
}

/// Where raw message bytes live.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens (creating if needed) the blob directory `root`.
    pub fn open(root: PathBuf) -> io::Result<BlobStore> {
        fs::create_dir_all(&root)?;
        Ok(BlobStore { root })
    }

    /// The file holding `id`.
    pub fn path(&self, id: &BlobId) -> PathBuf {
        self.root.join(id.shard()).join(id.file_name())
    }

    /// The directory holding `id`.
    pub fn dir(&self, id: &BlobId) -> PathBuf {
        self.root.join(id.shard())
    }

    /// Starts writing a new blob. Fails if `id` already exists, so two
    /// writers can never share a file.
    pub fn create(&self, id: BlobId) -> io::Result<BlobWriter> {
        let dir = self.dir(&id);
        if !dir.is_dir() {
            fs::create_dir_all(&dir)?;
            // The new shard directory's own entry must be durable too.
            sync_dir(&self.root)?;
        }
        let path = self.path(&id);
        let file = OpenOptions::new().write(true).create_new(true).open(&path)?;
        Ok(BlobWriter { file: Some(file), path, id, written: 0, tail: [0; 2] })
    }

    /// Content for a message held whole in memory (IMAP APPEND, a copy to
    /// Sent): inline when it is small enough, else written into a finished
    /// blob file, which blocks on its fsyncs. Returns the content and its
    /// size, the last line completed with CRLF either way.
    pub fn content(&self, id: BlobId, bytes: Vec<u8>) -> io::Result<(NewContent, u64)> {
        match NewContent::inline(id.clone(), bytes) {
            Ok(content) => {
                let size = content.inline_len().unwrap_or_default();
                Ok((content, size))
            }
            Err(bytes) => {
                let mut writer = self.create(id)?;
                writer.write(&bytes)?;
                let (id, size) = writer.finish()?;
                let header = crate::header_section(&bytes).unwrap_or_default().to_vec();
                Ok((NewContent::File(id, header), size))
            }
        }
    }

    /// Reads a whole blob file (see [`crate::MailStore::read_blob`] for any
    /// message's bytes).
    pub fn read(&self, id: &BlobId) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        File::open(self.path(id))?.read_to_end(&mut buf)?;
        Ok(buf)
    }

    /// Reads a whole blob into `buf`, replacing its contents; a caller
    /// reading many blobs reuses one warm buffer instead of faulting in a
    /// fresh allocation per blob.
    pub fn read_into(&self, id: &BlobId, buf: &mut Vec<u8>) -> io::Result<()> {
        buf.clear();
        File::open(self.path(id))?.read_to_end(buf)?;
        Ok(())
    }

    /// The blobs in the `newest` most recent shard directories (a crash can
    /// only leave unfinished or uncommitted blobs there). Files whose names
    /// are not blob ids are ignored.
    pub fn recent_blobs(&self, newest: usize) -> io::Result<Vec<BlobId>> {
        let mut shards: Vec<String> = fs::read_dir(&self.root)?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| name.len() == 8)
            .collect();
        // Fixed-width hex hours: name order is time order.
        shards.sort();
        let mut out = Vec::new();
        for shard in shards.iter().rev().take(newest) {
            for entry in fs::read_dir(self.root.join(shard))?.filter_map(|e| e.ok()) {
                if let Some(id) = entry.file_name().to_str().and_then(|name| BlobId::parse(&format!("{shard}{name}"))) {
                    out.push(id);
                }
            }
        }
        Ok(out)
    }

    /// Removes a blob; a missing file is not an error.
    pub fn delete(&self, id: &BlobId) -> io::Result<()> {
        match fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Fsyncs a directory so the entries created in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A blob being written. Dropped without [`BlobWriter::finish`], it deletes
/// its file, so an aborted transfer leaves nothing behind.
#[derive(Debug)]
pub struct BlobWriter {
    file: Option<File>,
    path: PathBuf,
    id: BlobId,
    written: u64,
    /// The last two octets written, to complete the last line at finish.
    tail: [u8; 2],
}

impl BlobWriter {
    /// The id of the blob being written.
    pub fn id(&self) -> &BlobId {
        &self.id
    }

    /// Octets written so far.
    pub fn len(&self) -> u64 {
        self.written
    }

    /// True when nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// Appends bytes. Callers batch their writes; this does no buffering.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        let file = self.file.as_mut().ok_or_else(|| io::Error::other("blob writer already finished"))?;
        file.write_all(buf)?;
        self.written += buf.len() as u64;
        match buf {
            [.., a, b] => self.tail = [*a, *b],
            [b] => self.tail = [self.tail[1], *b],
            [] => {}
        }
        Ok(())
    }

    /// Ends the last line with CRLF if it lacks one, fsyncs the file and its
    /// directory entry, and hands back the blob's id and size: from here on
    /// the blob survives a crash.
    ///
    /// Every blob thus holds complete CRLF lines (RFC 5322 §2.1), whoever
    /// wrote it: BDAT content may lack the final line end, and readers count
    /// on it (a POP3 size must equal the octets RETR sends).
    pub fn finish(mut self) -> io::Result<(BlobId, u64)> {
        if self.written > 0 && self.tail != *b"\r\n" {
            self.write(b"\r\n")?;
        }
        let file = self.file.take().ok_or_else(|| io::Error::other("blob writer already finished"))?;
        let dir = self.path.parent().map(Path::to_path_buf).unwrap_or_default();
        if let Err(e) = file.sync_all().and_then(|()| sync_dir(&dir)) {
            let _ = fs::remove_file(&self.path);
            return Err(e);
        }
        Ok((self.id.clone(), self.written))
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailroom_types::IdGenerator;
    use std::time::SystemTime;

    #[test]
    fn taken_bytes_move_unless_the_buffer_is_much_larger() {
        // A buffer the size of its blob moves to the visitor, uncopied, and
        // the spare (with its contents) becomes the read thread's.
        let mut buf = vec![7u8; 20_000];
        let at = buf.as_ptr();
        let taken = BlobBytes::new(&mut buf, 15_000).take(|| vec![1; 300]);
        assert_eq!((taken.as_ptr(), taken.len()), (at, 15_000));
        assert!(taken.iter().all(|&b| b == 7));
        assert_eq!(buf, vec![1; 300]);

        // A buffer that once held a much larger blob stays; the bytes are
        // copied into one their size.
        let mut big = vec![0u8; 1 << 20];
        big[..5].copy_from_slice(b"small");
        let at = big.as_ptr();
        let copied = BlobBytes::new(&mut big, 5).take(|| unreachable!("no spare is needed"));
        assert_eq!(copied, b"small");
        assert!(copied.capacity() < 1 << 20);
        assert_eq!((big.as_ptr(), big.len()), (at, 1 << 20));
    }

    #[test]
    fn write_finish_read_and_abort() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("blobs")).unwrap();
        let ids = IdGenerator::new(1);
        let mut w = store.create(ids.blob_id(SystemTime::now())).unwrap();
        w.write(b"hello ").unwrap();
        w.write(b"world\r\n").unwrap();
        let (id, size) = w.finish().unwrap();
        assert_eq!(size, 13);
        assert_eq!(store.read(&id).unwrap(), b"hello world\r\n");
        assert!(store.create(id.clone()).is_err(), "an existing blob is never overwritten");

        let mut aborted = store.create(ids.blob_id(SystemTime::now())).unwrap();
        aborted.write(b"partial").unwrap();
        let path = store.path(aborted.id());
        drop(aborted);
        assert!(!path.exists(), "an unfinished blob leaves no file");
        store.delete(&id).unwrap();
        store.delete(&id).unwrap();
    }

    #[test]
    fn finish_completes_the_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("blobs")).unwrap();
        let ids = IdGenerator::new(2);
        for (parts, stored) in [
            (&[&b"Subject: x\r\n\r\nno end"[..]][..], &b"Subject: x\r\n\r\nno end\r\n"[..]),
            (&[&b"a\r"[..], &b"\n"[..]][..], &b"a\r\n"[..]),
            (&[&b"a\r\n"[..], &b"b\r"[..]][..], &b"a\r\nb\r\r\n"[..]),
            (&[][..], &b""[..]),
        ] {
            let mut w = store.create(ids.blob_id(SystemTime::now())).unwrap();
            for p in parts {
                w.write(p).unwrap();
            }
            let (id, size) = w.finish().unwrap();
            assert_eq!(store.read(&id).unwrap(), stored);
            assert_eq!(size, stored.len() as u64);
        }
    }
}
