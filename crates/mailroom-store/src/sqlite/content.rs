//! Reading a message's bytes wherever they are: an extent of a pack file
//! (version 8 on), a row of `blob_inline` (small messages stored before
//! version 8), or a blob file of its own (large messages).

use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use mailroom_types::BlobId;
use rusqlite::{Connection, OptionalExtension};

use super::convert::{self, Db};
use crate::pack::{Extent, Packs, ReadGuard};
use crate::{BlobBytes, BlobExtent, BlobStore, Result, Scanned, StoreError};

/// Where a blob's bytes are.
enum Location {
    Packed(Extent),
    Inline {
        rowid: i64,
        len: usize,
    },
    /// No row: a blob file, or gone.
    File,
}

/// Reads many blobs on one connection. Holds a [`ReadGuard`] from before
/// its first lookup, so no extent it finds is punched out before it is
/// read, or before the [`BlobExtent`]s it hands out are dropped.
pub(crate) struct ContentReader<'c> {
    conn: &'c Connection,
    packs: &'c Packs,
    files: &'c BlobStore,
    guard: Arc<ReadGuard>,
    /// One incremental-I/O handle moved from row to row of `blob_inline`:
    /// bytes copied once, where a column read copies them into SQLite's
    /// buffer first.
    inline: Option<rusqlite::blob::Blob<'c>>,
}

impl<'c> ContentReader<'c> {
    pub(crate) fn new(conn: &'c Connection, packs: &'c Arc<Packs>, files: &'c BlobStore) -> ContentReader<'c> {
        ContentReader { conn, packs, files, guard: Arc::new(packs.guard()), inline: None }
    }

    /// Each lookup is one statement, in a snapshot of its own.
    fn locate(&self, id: &BlobId) -> Result<Location> {
        let packed = self
            .conn
            .prepare_cached("SELECT pack, start, len FROM blob_packed WHERE blob_id = ?1")
            .db()?
            .query_row([id.as_str()], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))
            .optional()
            .db()?;
        if let Some((pack, offset, len)) = packed {
            return Ok(Location::Packed(Extent { pack, offset: convert::size(offset)?, len: convert::size(len)? }));
        }
        let inline = self
            .conn
            .prepare_cached("SELECT rowid, length(data) FROM blob_inline WHERE blob_id = ?1")
            .db()?
            .query_row([id.as_str()], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .optional()
            .db()?;
        match inline {
            Some((rowid, len)) => {
                let len =
                    usize::try_from(len).map_err(|_| StoreError::Corrupt(format!("blob {id} has a negative size")))?;
                Ok(Location::Inline { rowid, len })
            }
            None => Ok(Location::File),
        }
    }

    /// Reads blob `id` into the first octets of `buf` and returns how many
    /// (`None` if it has no row: it is a file, or gone). `buf` only grows,
    /// so a buffer reused for many blobs is zeroed once, not per read.
    pub(crate) fn read_row(&mut self, id: &BlobId, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        match self.locate(id)? {
            Location::Packed(extent) => self.read_packed(id, extent, buf).map(Some),
            Location::Inline { rowid, len } => self.read_inline(rowid, len, buf).map(Some),
            Location::File => Ok(None),
        }
    }

    /// Like [`ContentReader::read`], but a blob of at least `read_below`
    /// octets that lies in a file is only located, not read.
    pub(crate) fn scan<'b>(
        &mut self,
        id: &BlobId,
        read_below: u64,
        buf: &'b mut Vec<u8>,
    ) -> Result<Option<Scanned<'b>>> {
        match self.locate(id)? {
            Location::Packed(extent) if extent.len >= read_below => {
                let file = self.packs.file(extent.pack)?;
                will_need(&file, extent.offset, extent.len);
                Ok(Some(Scanned::Extent(BlobExtent::new(
                    file,
                    extent.offset,
                    extent.len,
                    Some(Arc::clone(&self.guard)),
                ))))
            }
            Location::Packed(extent) => {
                let len = self.read_packed(id, extent, buf)?;
                Ok(Some(Scanned::Bytes(BlobBytes::new(buf, len))))
            }
            Location::Inline { rowid, len } => {
                let len = self.read_inline(rowid, len, buf)?;
                Ok(Some(Scanned::Bytes(BlobBytes::new(buf, len))))
            }
            Location::File => {
                // A blob file is never rewritten, and an open one stays
                // readable when it is deleted: it needs no guard.
                let file = match std::fs::File::open(self.files.path(id)) {
                    Ok(file) => file,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                let len = file.metadata()?.len();
                if len >= read_below {
                    will_need(&file, 0, len);
                    return Ok(Some(Scanned::Extent(BlobExtent::new(Arc::new(file), 0, len, None))));
                }
                let n = usize::try_from(len).map_err(|_| StoreError::Corrupt(format!("blob {id} is too large")))?;
                grow(buf, n);
                file.read_exact_at(&mut buf[..n], 0)?;
                Ok(Some(Scanned::Bytes(BlobBytes::new(buf, n))))
            }
        }
    }

    fn read_packed(&self, id: &BlobId, extent: Extent, buf: &mut Vec<u8>) -> Result<usize> {
        let len = usize::try_from(extent.len).map_err(|_| StoreError::Corrupt(format!("blob {id} is too large")))?;
        grow(buf, len);
        self.packs.file(extent.pack)?.read_exact_at(&mut buf[..len], extent.offset).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                StoreError::Corrupt(format!("pack {} ends inside blob {id}", extent.pack))
            } else {
                e.into()
            }
        })?;
        Ok(len)
    }

    fn read_inline(&mut self, rowid: i64, len: usize, buf: &mut Vec<u8>) -> Result<usize> {
        let handle = match &mut self.inline {
            Some(handle) => {
                handle.reopen(rowid).db()?;
                handle
            }
            None => self.inline.insert(self.conn.blob_open("main", "blob_inline", "data", rowid, true).db()?),
        };
        grow(buf, len);
        handle.read_at_exact(&mut buf[..len], 0).db()?;
        Ok(len)
    }
}

/// Starts reading a located extent into the page cache, here on a read
/// thread: whoever sends it from there (on an async thread, a little
/// later) then rarely waits for the disk. Only advice: errors are moot.
fn will_need(file: &std::fs::File, offset: u64, len: u64) {
    let _ = rustix::fs::fadvise(file, offset, std::num::NonZeroU64::new(len), rustix::fs::Advice::WillNeed);
}

/// Makes `buf` at least `len` long, zeroing only what it never held.
fn grow(buf: &mut Vec<u8>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0);
    }
}
