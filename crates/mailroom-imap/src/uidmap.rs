//! The sequence-number to UID map of a selected mailbox, as runs of
//! consecutive UIDs.
//!
//! Mail mostly arrives in order and is expunged now and then, so a
//! mailbox's UIDs are long runs: 10,000 messages with a few hundred gaps
//! take a few kilobytes here instead of 40 KB as a plain list, which is
//! what keeps a thousand idle sessions on a large mailbox small.

use mailroom_types::Uid;

/// UIDs in ascending order, stored as runs `first..first + len`.
#[derive(Debug, Clone, Default)]
pub(crate) struct UidMap {
    /// (first UID, length) of each run, ascending and never adjacent.
    runs: Vec<(u32, u32)>,
    /// The index of each run's first message.
    starts: Vec<usize>,
    len: usize,
}

impl UidMap {
    /// A map of `uids`, which must be ascending.
    pub(crate) fn from_sorted(uids: impl IntoIterator<Item = Uid>) -> UidMap {
        let mut map = UidMap::default();
        for uid in uids {
            map.push(uid);
        }
        map
    }

    /// How many messages.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The highest UID, 0 when empty.
    pub(crate) fn max(&self) -> u32 {
        self.runs.last().map(|&(first, len)| first + len - 1).unwrap_or(0)
    }

    /// Appends `uid`, which must exceed every UID held.
    pub(crate) fn push(&mut self, uid: Uid) {
        let uid = uid.get();
        debug_assert!(uid > self.max());
        match self.runs.last_mut() {
            Some((first, len)) if *first + *len == uid => *len += 1,
            _ => {
                self.runs.push((uid, 1));
                self.starts.push(self.len);
            }
        }
        self.len += 1;
    }

    /// The UID at `index` (sequence number minus one).
    pub(crate) fn get(&self, index: usize) -> Uid {
        let run = self.starts.partition_point(|&s| s <= index) - 1;
        let (first, _) = self.runs[run];
        Uid::new(first + (index - self.starts[run]) as u32).expect("UIDs held are valid")
    }

    /// The index of `uid`, if held.
    pub(crate) fn index_of(&self, uid: Uid) -> Option<usize> {
        let uid = uid.get();
        let run = self.runs.partition_point(|&(first, _)| first <= uid).checked_sub(1)?;
        let (first, len) = self.runs[run];
        (uid < first + len).then(|| self.starts[run] + (uid - first) as usize)
    }

    /// How many UIDs held are below `uid`: the index of the first one at
    /// or above it.
    pub(crate) fn count_below(&self, uid: u32) -> usize {
        let run = self.runs.partition_point(|&(first, _)| first < uid);
        if run == 0 {
            return 0;
        }
        let (first, len) = self.runs[run - 1];
        self.starts[run - 1] + (uid - first).min(len) as usize
    }

    /// Removes `uid` if held; true if it was.
    pub(crate) fn remove(&mut self, uid: Uid) -> bool {
        let Some(index) = self.index_of(uid) else { return false };
        let run = self.starts.partition_point(|&s| s <= index) - 1;
        let (first, len) = self.runs[run];
        let u = uid.get();
        let later = if len == 1 {
            self.runs.remove(run);
            self.starts.remove(run);
            run
        } else if u == first {
            self.runs[run] = (first + 1, len - 1);
            run + 1
        } else if u == first + len - 1 {
            self.runs[run].1 -= 1;
            run + 1
        } else {
            // Split: the run keeps the UIDs before `u`, a new one those after.
            let before = u - first;
            self.runs[run] = (first, before);
            self.runs.insert(run + 1, (u + 1, len - before - 1));
            self.starts.insert(run + 1, self.starts[run] + before as usize + 1);
            run + 1
        };
        for s in &mut self.starts[later..] {
            *s -= 1;
        }
        self.len -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid(n: u32) -> Uid {
        Uid::new(n).unwrap()
    }

    /// Checks every query against a plain list.
    fn check(map: &UidMap, plain: &[u32]) {
        assert_eq!(map.len(), plain.len());
        assert_eq!(map.max(), plain.last().copied().unwrap_or(0));
        for (i, &u) in plain.iter().enumerate() {
            assert_eq!(map.get(i).get(), u, "get({i})");
            assert_eq!(map.index_of(uid(u)), Some(i), "index_of({u})");
        }
        for u in 1..=plain.last().copied().unwrap_or(0) + 2 {
            assert_eq!(map.index_of(uid(u)).is_some(), plain.contains(&u), "membership of {u}");
            assert_eq!(map.count_below(u), plain.iter().filter(|&&p| p < u).count(), "count_below({u})");
        }
    }

    #[test]
    fn behaves_like_a_sorted_list() {
        let mut plain: Vec<u32> = vec![1, 2, 3, 4, 5, 8, 9, 10, 20, 21, 30];
        let mut map = UidMap::from_sorted(plain.iter().map(|&u| uid(u)));
        check(&map, &plain);
        for u in [3, 1, 10, 30, 20, 21, 8, 7] {
            let held = plain.contains(&u);
            assert_eq!(map.remove(uid(u)), held);
            plain.retain(|&p| p != u);
            check(&map, &plain);
        }
        for u in [31, 32, 40] {
            map.push(uid(u));
            plain.push(u);
            check(&map, &plain);
        }
        for u in plain.clone() {
            map.remove(uid(u));
            plain.retain(|&p| p != u);
            check(&map, &plain);
        }
    }

    #[test]
    fn a_long_run_is_one_run() {
        let map = UidMap::from_sorted((1..=10_000).map(uid));
        assert_eq!(map.runs.len(), 1);
        assert_eq!(map.get(9_999).get(), 10_000);
    }
}
