//! Pack files: the bytes of small messages, one after another in large
//! append-only files under `data_dir/packs/`.
//!
//! Why: a message's bytes lie contiguous in one file, so reading one is a
//! single `pread`, and a server can send one to a client without copying
//! it through user space (`sendfile`, see [`crate::BlobExtent`]). Inside
//! SQLite the same bytes were a chain of 4 KiB overflow pages, read page
//! by page, and written twice (WAL, then checkpoint).
//!
//! Durability: a caller appends its message's bytes ([`Packs::append`], no
//! fsync) before it hands the rows that point at them to the writer
//! thread; the writer fdatasyncs every pack written since its last sync
//! ([`Packs::sync`]) right before its batch's COMMIT. When the rows are
//! durable, so are the bytes: one fdatasync per group commit, however many
//! messages it holds.
//!
//! Reclaiming: once a message's last row is gone, its extent is punched
//! out of its pack (`fallocate` PUNCH_HOLE: the file keeps its size, the
//! blocks are freed), but only when no reader that could have looked it up
//! before the deletion is still reading ([`ReadGuard`]): a FETCH that found
//! an extent may send it seconds later, and must never send zeros. Only
//! the server punches (the process that swept at start, [`Packs::sweep`]):
//! another process (an admin command deleting an account) cannot see the
//! server's readers, so what it frees waits for the server's next sweep.
//! Bytes no committed row points at (a crash between append and commit, a
//! failed write, a punch a crash prevented) are freed by that sweep.
//!
//! Each process appends to packs of its own: its first append creates the
//! next unused number, and a pack takes no more appends past [`PACK_MAX`].
//! It holds a lock on each (`flock`) while it lives, so that a sweep never
//! touches a pack another process may still append to. Extents never move.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

/// A pack takes no more appends once it holds this many octets.
pub(crate) const PACK_MAX: u64 = 1 << 30;

/// The unit a sweep frees space in: file systems allocate in blocks of
/// 4 KiB (or a multiple of it).
const BLOCK: u64 = 4096;

/// Where one message's bytes lie: `len` octets at `offset` of pack `pack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extent {
    pub(crate) pack: u32,
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

/// The pack files of one data directory, shared by the store's callers,
/// its readers and its writer thread.
#[derive(Debug)]
pub(crate) struct Packs {
    root: PathBuf,
    /// Open packs by number: the ones appended to, and the ones read.
    open: RwLock<HashMap<u32, Arc<File>>>,
    appending: Mutex<Appending>,
    /// Packs appended to since the last [`Packs::sync`].
    dirty: Mutex<Vec<(u32, Arc<File>)>>,
    epochs: Mutex<Epochs>,
    /// Whether this process frees extents ([`Packs::reclaim`]).
    reclaims: AtomicBool,
    /// [`PACK_MAX`], but in tests.
    max: u64,
}

#[derive(Debug, Default)]
struct Appending {
    /// The pack appends go to, and how long it is.
    current: Option<(u32, Arc<File>, u64)>,
    /// Packs this process created: the sweep leaves them alone.
    own: Vec<u32>,
    /// The number the next pack tries first.
    next: Option<u32>,
}

/// Deleted extents wait here until no reader could still be using them.
#[derive(Debug, Default)]
struct Epochs {
    /// Bumped by every commit that frees extents.
    now: u64,
    /// Live [`ReadGuard`]s by the epoch they began in.
    readers: BTreeMap<u64, usize>,
    /// Extents freed in an epoch, not punched yet.
    freed: Vec<(u64, Extent)>,
}

/// Held by a reader from before it looks an extent up until it has read
/// or sent it: extents deleted meanwhile keep their bytes until it drops.
#[derive(Debug)]
pub(crate) struct ReadGuard {
    packs: Arc<Packs>,
    epoch: u64,
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        let mut epochs = lock(&self.packs.epochs);
        if let Some(count) = epochs.readers.get_mut(&self.epoch) {
            *count -= 1;
            if *count == 0 {
                epochs.readers.remove(&self.epoch);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Packs {
    /// The packs under `root`, created if missing. Opens no pack yet.
    pub(crate) fn open(root: PathBuf) -> io::Result<Packs> {
        Packs::with_max(root, PACK_MAX)
    }

    fn with_max(root: PathBuf, max: u64) -> io::Result<Packs> {
        fs::create_dir_all(&root)?;
        Ok(Packs {
            root,
            open: RwLock::new(HashMap::new()),
            appending: Mutex::new(Appending::default()),
            dirty: Mutex::new(Vec::new()),
            epochs: Mutex::new(Epochs::default()),
            reclaims: AtomicBool::new(false),
            max,
        })
    }

    fn path(&self, pack: u32) -> PathBuf {
        self.root.join(format!("{pack:08}.pack"))
    }

    /// The pack numbers present under the root.
    fn numbers(&self) -> io::Result<Vec<u32>> {
        let mut out: Vec<u32> = fs::read_dir(&self.root)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|name| name.strip_suffix(".pack")?.parse().ok())
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    /// Appends `bytes` to this process's current pack and says where they
    /// are. Not durable until the next [`Packs::sync`].
    pub(crate) fn append(&self, bytes: &[u8]) -> io::Result<Extent> {
        let len = bytes.len() as u64;
        let (pack, file, offset) = {
            let mut appending = lock(&self.appending);
            let full = match &appending.current {
                Some((_, _, at)) => *at > 0 && *at + len > self.max,
                None => true,
            };
            if full {
                self.start_pack(&mut appending)?;
            }
            let Some((pack, file, at)) = appending.current.as_mut() else {
                return Err(io::Error::other("no pack to append to"));
            };
            let offset = *at;
            *at += len;
            (*pack, Arc::clone(file), offset)
        };
        // Writes to disjoint ranges of one file run side by side.
        file.write_all_at(bytes, offset)?;
        // Marked only once written: a sync that takes this mark covers
        // these bytes.
        let mut dirty = lock(&self.dirty);
        if !dirty.iter().any(|(n, _)| *n == pack) {
            dirty.push((pack, file));
        }
        Ok(Extent { pack, offset, len })
    }

    /// Creates the next pack, its directory entry durable.
    fn start_pack(&self, appending: &mut Appending) -> io::Result<()> {
        let mut number = match appending.next {
            Some(n) => n,
            None => self.numbers()?.last().map_or(1, |n| n + 1),
        };
        // Another process (an admin command) may take a number first.
        let file = loop {
            match OpenOptions::new().read(true).write(true).create_new(true).open(self.path(number)) {
                Ok(file) => break file,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => number += 1,
                Err(e) => return Err(e),
            }
        };
        // A new file: nobody else holds it.
        file.try_lock().map_err(io::Error::from)?;
        File::open(&self.root)?.sync_all()?;
        let file = Arc::new(file);
        self.open.write().unwrap_or_else(PoisonError::into_inner).insert(number, Arc::clone(&file));
        appending.own.push(number);
        appending.next = Some(number + 1);
        appending.current = Some((number, file, 0));
        Ok(())
    }

    /// Makes every append made so far durable (fdatasync of each pack
    /// appended to since the last call).
    pub(crate) fn sync(&self) -> io::Result<()> {
        let dirty = std::mem::take(&mut *lock(&self.dirty));
        for (i, (_, file)) in dirty.iter().enumerate() {
            if let Err(e) = file.sync_data() {
                // Not known to be durable: the next sync tries again.
                let mut again = lock(&self.dirty);
                for (pack, file) in &dirty[i..] {
                    if !again.iter().any(|(n, _)| n == pack) {
                        again.push((*pack, Arc::clone(file)));
                    }
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Pack `pack`, opened for reading on first use.
    pub(crate) fn file(&self, pack: u32) -> io::Result<Arc<File>> {
        if let Some(file) = self.open.read().unwrap_or_else(PoisonError::into_inner).get(&pack) {
            return Ok(Arc::clone(file));
        }
        let file = Arc::new(File::open(self.path(pack))?);
        let mut open = self.open.write().unwrap_or_else(PoisonError::into_inner);
        Ok(Arc::clone(open.entry(pack).or_insert(file)))
    }

    /// Starts a read: extents deleted from now on stay readable until the
    /// guard drops.
    pub(crate) fn guard(self: &Arc<Self>) -> ReadGuard {
        let mut epochs = lock(&self.epochs);
        let epoch = epochs.now;
        *epochs.readers.entry(epoch).or_default() += 1;
        ReadGuard { packs: Arc::clone(self), epoch }
    }

    /// From now on, this process punches out what it frees: it is the
    /// server, whose readers are the only ones.
    pub(crate) fn reclaim(&self) {
        self.reclaims.store(true, Ordering::Relaxed);
    }

    /// Takes extents whose rows a commit deleted, and punches out every
    /// freed extent no reader can still be using. In a process that does
    /// not [`Packs::reclaim`], they are left to the server's next sweep.
    pub(crate) fn free(&self, extents: Vec<Extent>) {
        if !self.reclaims.load(Ordering::Relaxed) {
            return;
        }
        let punch: Vec<Extent> = {
            let mut epochs = lock(&self.epochs);
            if !extents.is_empty() {
                let epoch = epochs.now;
                epochs.freed.extend(extents.into_iter().map(|e| (epoch, e)));
                epochs.now += 1;
            }
            // A reader that began in an epoch after an extent's deletion
            // cannot have found it.
            let oldest = epochs.readers.keys().next().copied().unwrap_or(u64::MAX);
            let (done, waiting) = std::mem::take(&mut epochs.freed).into_iter().partition(|(at, _)| *at < oldest);
            epochs.freed = waiting;
            done.into_iter().map(|(_, e)| e).collect()
        };
        for extent in punch {
            if let Err(error) = self.punch(extent) {
                tracing::warn!(pack = extent.pack, offset = extent.offset, %error, "freed message bytes not reclaimed");
            }
        }
    }

    /// Frees the blocks of `extent`; the file keeps its size.
    fn punch(&self, extent: Extent) -> io::Result<()> {
        if extent.len == 0 {
            return Ok(());
        }
        let file = self.file(extent.pack)?;
        punch_hole(&file, extent.offset, extent.len)
    }

    /// Frees what no row points at in the packs this process did not write:
    /// each pack's gaps between the `extents` listed for it (what a crash
    /// left between an append and its commit, or before a punch), its tail
    /// after the last, and a pack with none at all. For a server starting
    /// up, before it serves anyone. Returns how many regions were freed.
    pub(crate) fn sweep(&self, mut extents: impl FnMut(u32) -> io::Result<Vec<(u64, u64)>>) -> io::Result<usize> {
        self.reclaim();
        let own = lock(&self.appending).own.clone();
        let mut freed = 0;
        for pack in self.numbers()?.into_iter().filter(|n| !own.contains(n)) {
            let file = OpenOptions::new().write(true).open(self.path(pack))?;
            match file.try_lock() {
                Ok(()) => {}
                // Another process is appending to it.
                Err(fs::TryLockError::WouldBlock) => continue,
                Err(fs::TryLockError::Error(e)) => return Err(e),
            }
            let mut used = extents(pack)?;
            if used.is_empty() {
                self.open.write().unwrap_or_else(PoisonError::into_inner).remove(&pack);
                fs::remove_file(self.path(pack))?;
                freed += 1;
                continue;
            }
            used.sort_unstable();
            let mut end: u64 = 0;
            for (offset, len) in used {
                // Only whole blocks can be freed; the rest of a gap shares
                // a block with a message.
                let (from, to) = (end.next_multiple_of(BLOCK), offset / BLOCK * BLOCK);
                if from < to && has_data(&file, from, to)? {
                    punch_hole(&file, from, to - from)?;
                    freed += 1;
                }
                end = end.max(offset + len);
            }
            if file.metadata()?.len() > end {
                file.set_len(end)?;
                file.sync_all()?;
                freed += 1;
            }
        }
        Ok(freed)
    }
}

/// Deallocates `len` octets at `offset`; a file system that cannot punch
/// holes keeps them (only space is lost).
fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use rustix::fs::FallocateFlags;
    match rustix::fs::fallocate(file, FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE, offset, len) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::OPNOTSUPP) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether `file` holds data (not a hole) anywhere in `from..to`.
fn has_data(file: &File, from: u64, to: u64) -> io::Result<bool> {
    match rustix::fs::seek(file, rustix::fs::SeekFrom::Data(from)) {
        Ok(at) => Ok(at < to),
        // No data after `from`.
        Err(rustix::io::Errno::NXIO) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(packs: &Packs, e: Extent) -> Vec<u8> {
        let mut buf = vec![0; e.len as usize];
        packs.file(e.pack).unwrap().read_exact_at(&mut buf, e.offset).unwrap();
        buf
    }

    #[test]
    fn appends_lie_one_after_another_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let packs = Packs::open(dir.path().join("packs")).unwrap();
        let a = packs.append(b"first message\r\n").unwrap();
        let b = packs.append(b"second\r\n").unwrap();
        let empty = packs.append(b"").unwrap();
        assert_eq!((a.pack, a.offset, a.len), (1, 0, 15));
        assert_eq!((b.pack, b.offset, b.len), (1, 15, 8));
        assert_eq!(empty.len, 0);
        packs.sync().unwrap();
        assert!(lock(&packs.dirty).is_empty());
        assert_eq!(read(&packs, a), b"first message\r\n");
        assert_eq!(read(&packs, b), b"second\r\n");

        // Another process appends to a pack of its own.
        let other = Packs::open(dir.path().join("packs")).unwrap();
        assert_eq!(other.append(b"x").unwrap().pack, 2);
    }

    #[test]
    fn a_full_pack_takes_no_more_appends() {
        let dir = tempfile::tempdir().unwrap();
        let packs = Packs::with_max(dir.path().join("packs"), 100).unwrap();
        let places: Vec<(u32, u64)> = [60, 40, 1, 150, 10]
            .iter()
            .map(|&n| packs.append(&vec![b'x'; n]).unwrap())
            .map(|e| (e.pack, e.offset))
            .collect();
        // A message larger than a pack still goes whole into a new one.
        assert_eq!(places, [(1, 0), (1, 60), (2, 0), (3, 0), (4, 0)]);
        assert_eq!(lock(&packs.dirty).len(), 4);
        packs.sync().unwrap();
        assert_eq!(lock(&packs.appending).own, [1, 2, 3, 4]);
    }

    #[test]
    fn freed_extents_wait_for_readers_that_could_have_found_them() {
        let dir = tempfile::tempdir().unwrap();
        let packs = Arc::new(Packs::open(dir.path().join("packs")).unwrap());
        let body = vec![b'a'; 64 * 1024];
        let e = packs.append(&body).unwrap();
        let f = packs.append(&body).unwrap();
        packs.sync().unwrap();
        // Not the server: what it frees waits for the server's sweep.
        packs.free(vec![f]);
        assert_eq!(read(&packs, f), body);
        packs.reclaim();
        let reader = packs.guard();
        packs.free(vec![e]);
        assert_eq!(read(&packs, e), body, "a reader from before the deletion still reads the bytes");
        // A reader that began after the deletion does not hold it back.
        let later = packs.guard();
        drop(reader);
        packs.free(Vec::new());
        assert_eq!(read(&packs, e), vec![0; body.len()], "punched once the reader is done");
        drop(later);
        assert!(lock(&packs.epochs).freed.is_empty());
        assert!(lock(&packs.epochs).readers.is_empty());
    }

    #[test]
    fn a_sweep_frees_what_no_row_points_at() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("packs");
        let (kept, lost) = {
            let crashed = Packs::open(root.clone()).unwrap();
            let kept = crashed.append(&[b'k'; 8192]).unwrap();
            let lost = crashed.append(&[b'l'; 8192]).unwrap();
            let kept2 = crashed.append(&[b'm'; 8192]).unwrap();
            crashed.append(&[b't'; 8192]).unwrap();
            let unused = Packs::open(root.clone()).unwrap();
            unused.append(b"never committed").unwrap();
            crashed.sync().unwrap();
            ((kept, kept2), lost)
        };
        let live = Packs::open(root.clone()).unwrap();
        let appending = live.append(b"not committed yet").unwrap();
        let packs = Packs::open(root.clone()).unwrap();
        let own = packs.append(b"this process's own").unwrap();
        let rows = [kept.0, kept.1];
        let freed = packs
            .sweep(|pack| Ok(rows.iter().filter(|e| e.pack == pack).map(|e| (e.offset, e.len)).collect()))
            .unwrap();
        // The gap, the tail, and the pack nothing points at.
        assert_eq!(freed, 3);
        assert_eq!(read(&packs, kept.0), vec![b'k'; 8192]);
        assert_eq!(read(&packs, kept.1), vec![b'm'; 8192]);
        assert_eq!(read(&packs, lost), vec![0; 8192]);
        assert_eq!(fs::metadata(packs.path(1)).unwrap().len(), kept.1.offset + kept.1.len);
        assert!(!packs.path(2).exists());
        assert!(packs.path(own.pack).exists(), "its own pack is left alone");
        assert_eq!(read(&packs, appending), b"not committed yet", "so is a pack another process appends to");
        // A second sweep finds nothing more.
        let again = packs
            .sweep(|pack| Ok(rows.iter().filter(|e| e.pack == pack).map(|e| (e.offset, e.len)).collect()))
            .unwrap();
        assert_eq!(again, 0);
    }
}
