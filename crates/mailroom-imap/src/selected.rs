//! The selected mailbox as this session's client sees it.
//!
//! A client numbers messages 1..n and keeps that numbering until the server
//! tells it otherwise (RFC 9051 §2.3.1.2), so the session holds its own
//! list of the mailbox's messages in sequence order and changes it only by
//! announcing the change:
//!
//! - arrivals are appended, then `* n EXISTS`;
//! - flag changes are `* n FETCH (FLAGS ...)`, with MODSEQ once CONDSTORE
//!   is on;
//! - expunges are `* n EXPUNGE` (or `* VANISHED` with QRESYNC), sent only
//!   when RFC 9051 §7.5.1 allows: never while a FETCH, STORE or SEARCH
//!   (without UID) is answered, and never outside a command. Until then an
//!   expunged message keeps its number here and is marked gone.
//!
//! What changed is learnt from the store: the change feed says *that* the
//! mailbox changed, then [`Selected::refresh`] reads what changed since the
//! last HIGHESTMODSEQ this view holds (`changed_since`, `vanished_since`).
//! Reading HIGHESTMODSEQ first and applying the changes idempotently makes
//! a change that lands between those reads harmless: it is seen now or
//! next time, never lost and never announced twice.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::SystemTime;

use mailroom_imap_proto::response;
use mailroom_imap_proto::response::FetchResponse;
use mailroom_imap_proto::sequence::SequenceSet;
use mailroom_store::{AnyStore, MailStore, MailboxStatus, MessageMeta, StoreError, Summary};
use mailroom_types::{BlobId, Flags, MailboxId, ModSeq, Uid};

use crate::flags;
use crate::uidmap::UidMap;

/// What a command needs to know of one message, read from the store for
/// that command (the view itself holds only UIDs).
#[derive(Debug, Clone)]
pub(crate) struct Msg {
    pub(crate) uid: Uid,
    pub(crate) flags: Flags,
    pub(crate) keywords: Vec<String>,
    pub(crate) modseq: ModSeq,
    pub(crate) size: u64,
    pub(crate) internal_date: SystemTime,
    pub(crate) blob: BlobId,
}

impl From<MessageMeta> for Msg {
    fn from(m: MessageMeta) -> Msg {
        Msg {
            uid: m.uid,
            flags: m.flags,
            keywords: m.keywords,
            modseq: m.modseq,
            size: m.size,
            internal_date: m.internal_date,
            blob: m.blob,
        }
    }
}

/// How untagged updates are written for this client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    /// CONDSTORE is on: FETCH responses with FLAGS carry MODSEQ.
    pub(crate) condstore: bool,
    /// QRESYNC is on: expunges are announced as VANISHED.
    pub(crate) qresync: bool,
}

/// A flag change read from the store, to be announced.
struct FlagUpdate {
    flags: Flags,
    keywords: Vec<String>,
    modseq: ModSeq,
}

/// The selected mailbox. Only the UIDs are kept, four octets a message,
/// so that a thousand sessions idling on a large mailbox stay small;
/// everything else is read from the store when a command needs it.
pub(crate) struct Selected {
    pub(crate) mailbox: MailboxId,
    pub(crate) read_only: bool,
    /// In sequence order: message n has UID `uids.get(n - 1)`.
    uids: UidMap,
    /// The HIGHESTMODSEQ whose changes the view reflects.
    known_modseq: ModSeq,
    /// The number of messages the client believes exist.
    announced: usize,
    /// Expunged in the store, still numbered here until announced.
    gone: BTreeSet<Uid>,
    /// Flag changes read but not yet announced.
    changed: BTreeMap<Uid, FlagUpdate>,
    /// This session's own flag changes since the last refresh, already
    /// reported to the client: the refresh does not announce them again.
    own: HashMap<Uid, ModSeq>,
    /// Keywords announced in `* FLAGS` (or about to be).
    pub(crate) keywords: BTreeSet<String>,
    /// New keywords appeared: `* FLAGS` is sent again.
    pending_keywords: bool,
    /// A change event for this mailbox arrived since the last refresh.
    pub(crate) dirty: bool,
    /// The mailbox was deleted: the session ends.
    pub(crate) deleted: bool,
}

impl Selected {
    /// Opens the view of `mailbox` from the store.
    pub(crate) async fn open(
        store: &AnyStore,
        mailbox: MailboxId,
        read_only: bool,
    ) -> Result<(Selected, MailboxStatus), StoreError> {
        // HIGHESTMODSEQ first: anything committed after it is read again by
        // the next refresh, which is harmless.
        let selection = store.selection(mailbox).await?;
        let status = selection.status;
        let uids = UidMap::from_sorted(selection.uids);
        let keywords = selection.keywords.into_iter().collect();
        let view = Selected {
            mailbox,
            read_only,
            announced: uids.len(),
            uids,
            known_modseq: status.highest_modseq,
            gone: BTreeSet::new(),
            changed: BTreeMap::new(),
            own: HashMap::new(),
            keywords,
            pending_keywords: false,
            dirty: false,
            deleted: false,
        };
        Ok((view, status))
    }

    /// How many messages the client knows.
    pub(crate) fn len(&self) -> usize {
        self.uids.len()
    }

    /// The UID of the message at `index` (sequence number minus one).
    pub(crate) fn uid_at(&self, index: usize) -> Uid {
        self.uids.get(index)
    }

    /// The sequence number of `uid`, if the client knows it.
    pub(crate) fn seq_of(&self, uid: Uid) -> Option<u32> {
        self.index_of(uid).map(|i| i as u32 + 1)
    }

    fn index_of(&self, uid: Uid) -> Option<usize> {
        self.uids.index_of(uid)
    }

    /// True when `uid` was expunged but is still numbered for the client.
    pub(crate) fn is_gone(&self, uid: Uid) -> bool {
        self.gone.contains(&uid)
    }

    /// The indices into the view that `set` names, ascending: by UID (only
    /// UIDs the client knows count; `*` is the highest of them) or by
    /// sequence number, where a number past the last message is an error
    /// (RFC 9051 §9, `seq-number`).
    pub(crate) fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<usize>, &'static str> {
        if uid {
            let mut out = Vec::new();
            for (lo, hi) in set.resolve(self.max_uid()) {
                let start = self.uids.count_below(lo);
                let end = hi.checked_add(1).map_or(self.uids.len(), |h| self.uids.count_below(h));
                out.extend(start..end);
            }
            return Ok(out);
        }
        let count = self.uids.len() as u32;
        if set.max_value().is_some_and(|v| v > count) || (count == 0 && set.uses_last()) {
            return Err("Invalid message sequence number");
        }
        Ok(set.resolve(count).into_iter().flat_map(|(lo, hi)| (lo as usize - 1)..(hi as usize)).collect())
    }

    /// The highest UID the client knows, for `*` in a UID set.
    pub(crate) fn max_uid(&self) -> u32 {
        self.uids.max()
    }

    /// The messages at `indices` (ascending) as the store has them now,
    /// each with its index; a message already expunged from the store is
    /// left out. One read of the mailbox's index for large sets, point
    /// reads for small ones.
    pub(crate) async fn load(&self, store: &AnyStore, indices: &[usize]) -> Result<Vec<(usize, Msg)>, StoreError> {
        let mut out = Vec::with_capacity(indices.len());
        if indices.len() <= 16 {
            for &i in indices {
                if let Some(rec) = store.message(self.mailbox, self.uids.get(i)).await? {
                    let msg = Msg {
                        uid: rec.uid,
                        flags: rec.flags,
                        keywords: rec.keywords,
                        modseq: rec.modseq,
                        size: rec.size,
                        internal_date: rec.internal_date,
                        blob: rec.blob,
                    };
                    out.push((i, msg));
                }
            }
            return Ok(out);
        }
        let mut index = store.message_index(self.mailbox).await?.into_iter().peekable();
        for &i in indices {
            let uid = self.uids.get(i);
            while index.next_if(|m| m.uid < uid).is_some() {}
            if let Some(m) = index.next_if(|m| m.uid == uid) {
                out.push((i, Msg::from(m)));
            }
        }
        Ok(out)
    }

    /// Like [`Selected::load`] for more than a handful of messages, with their
    /// header summaries read in the same pass (FETCH ENVELOPE).
    pub(crate) async fn load_summarized(
        &self,
        store: &AnyStore,
        indices: &[usize],
    ) -> Result<(Vec<(usize, Msg)>, Vec<(Uid, Summary)>), StoreError> {
        let (mut out, mut summaries) = (Vec::with_capacity(indices.len()), Vec::with_capacity(indices.len()));
        let mut index = store.summarized_index(self.mailbox).await?.into_iter().peekable();
        for &i in indices {
            let uid = self.uids.get(i);
            while index.next_if(|(m, _)| m.uid < uid).is_some() {}
            if let Some((m, summary)) = index.next_if(|(m, _)| m.uid == uid) {
                summaries.push((uid, summary));
                out.push((i, Msg::from(m)));
            }
        }
        Ok((out, summaries))
    }

    /// Records this session's own flag change, already reported to the
    /// client, so that the refresh does not announce it again.
    pub(crate) fn note_own(&mut self, uid: Uid, modseq: ModSeq) {
        self.own.insert(uid, modseq);
        self.changed.remove(&uid);
    }

    /// Records expunges to announce (this session's own EXPUNGE or MOVE,
    /// or what the refresh found).
    pub(crate) fn mark_gone(&mut self, uids: &[Uid]) {
        for &uid in uids {
            if self.index_of(uid).is_some() {
                self.gone.insert(uid);
            }
        }
    }

    /// Reads what changed in the store since the view's HIGHESTMODSEQ.
    /// Nothing is announced yet.
    pub(crate) async fn refresh(&mut self, store: &AnyStore) -> Result<(), StoreError> {
        self.dirty = false;
        let status = store.mailbox_status(self.mailbox).await?;
        if status.highest_modseq <= self.known_modseq {
            return Ok(());
        }
        let since = self.known_modseq;
        let vanished = store.vanished_since(self.mailbox, since).await?;
        let changed = store.changed_since(self.mailbox, since).await?;
        self.mark_gone(&vanished);
        let mut max_uid = self.max_uid();
        for rec in changed {
            if self.index_of(rec.uid).is_some() {
                if self.own.get(&rec.uid) != Some(&rec.modseq) {
                    let update = FlagUpdate { flags: rec.flags, keywords: rec.keywords, modseq: rec.modseq };
                    self.changed.insert(rec.uid, update);
                }
            } else if rec.uid.get() > max_uid {
                // New UIDs only ever grow (RFC 9051 §2.3.1.1); a lower one
                // unknown here was expunged and read in the same refresh.
                max_uid = rec.uid.get();
                self.keywords_seen(&rec.keywords);
                self.uids.push(rec.uid);
            }
        }
        self.own.clear();
        self.known_modseq = status.highest_modseq;
        Ok(())
    }

    /// Keywords of new messages or changes, announced at the next
    /// [`Selected::announce`].
    pub(crate) fn keywords_seen(&mut self, keywords: &[String]) {
        self.pending_keywords |= keywords.iter().any(|k| !self.keywords.contains(k));
        if self.pending_keywords {
            self.keywords.extend(keywords.iter().cloned());
        }
    }

    /// Writes the pending untagged updates into `out`: expunges first when
    /// `allow_expunge`, then new keywords, EXISTS for arrivals, and flag
    /// changes.
    pub(crate) fn announce(&mut self, out: &mut Vec<u8>, allow_expunge: bool, style: Style) {
        if allow_expunge && !self.gone.is_empty() {
            let gone: Vec<Uid> = std::mem::take(&mut self.gone).into_iter().collect();
            let before = self.uids.len();
            if style.qresync {
                let uids: Vec<u32> = gone.iter().map(|u| u.get()).collect();
                response::vanished(out, false, &uids);
                for uid in &gone {
                    self.uids.remove(*uid);
                }
            } else {
                // Highest first, so no announced number shifts the next.
                for uid in gone.iter().rev() {
                    if let Some(i) = self.index_of(*uid) {
                        response::expunge(out, i as u32 + 1);
                        self.uids.remove(*uid);
                    }
                }
            }
            self.announced = self.announced.saturating_sub(before - self.uids.len());
            for uid in &gone {
                self.changed.remove(uid);
            }
        }
        let changed_keywords: Vec<String> = self.changed.values().flat_map(|c| c.keywords.iter().cloned()).collect();
        self.keywords_seen(&changed_keywords);
        if std::mem::take(&mut self.pending_keywords) {
            response::flags(out, &flags::defined(&self.keywords));
        }
        if self.uids.len() != self.announced {
            response::exists(out, self.uids.len() as u32);
            self.announced = self.uids.len();
        }
        for (uid, update) in std::mem::take(&mut self.changed) {
            if let Some(seq) = self.seq_of(uid) {
                let mut f = FetchResponse::start(out, seq);
                f.uid(uid.get()).flags(&flags::to_wire(update.flags, &update.keywords), false);
                if style.condstore {
                    f.modseq(update.modseq.0);
                }
                f.finish();
            }
        }
    }
}
