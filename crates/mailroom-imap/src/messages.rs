//! Commands that change messages of the selected mailbox: STORE (RFC 9051
//! §6.4.6, RFC 7162 UNCHANGEDSINCE), COPY and MOVE (RFC 9051 §6.4.7-8,
//! RFC 4315 COPYUID), EXPUNGE and UID EXPUNGE (RFC 9051 §6.4.3, RFC 4315).

use mailroom_imap_proto::Server;
use mailroom_imap_proto::command::{StoreFlags, StoreMode};
use mailroom_imap_proto::response::{self, Code, FetchResponse, Status};
use mailroom_imap_proto::sequence::{SequenceSet, compress};
use mailroom_store::{FlagOp, MailStore};
use mailroom_types::{ModSeq, Uid};

use crate::flags;
use crate::session::{Outcome, Session, store_failure};

impl Session<'_> {
    /// STORE and UID STORE.
    pub(crate) async fn store(
        &mut self,
        server: &mut Server,
        uid: bool,
        set: &SequenceSet,
        req: &StoreFlags,
    ) -> Outcome {
        let style = Self::style(server);
        let Some(view) = self.selected.as_mut() else { return Outcome::Bad("No mailbox selected".into()) };
        if view.read_only {
            return Outcome::no("Mailbox is read-only");
        }
        let indices = match view.resolve(set, uid) {
            Ok(i) => i,
            Err(e) => return Outcome::Bad(e.into()),
        };
        let (bits, keywords) = match flags::from_wire(&req.flags) {
            Ok(f) => f,
            Err(flag) => return Outcome::Bad(format!("Flag {flag} cannot be set")),
        };
        let uids: Vec<Uid> = indices.iter().map(|&i| view.uid_at(i)).filter(|u| !view.is_gone(*u)).collect();
        let op = match req.mode {
            StoreMode::Add => FlagOp::Add,
            StoreMode::Remove => FlagOp::Remove,
            StoreMode::Replace => FlagOp::Replace,
        };
        let unchanged_since = req.unchanged_since.map(ModSeq);
        let changes = match self.ctx.store.store_flags(view.mailbox, &uids, op, bits, &keywords, unchanged_since).await
        {
            Ok(c) => c,
            Err(e) => return store_failure(&e),
        };
        let condstore = style.condstore || unchanged_since.is_some();
        let out = server.output_mut();
        let mut updated = Vec::with_capacity(changes.len());
        for change in changes {
            view.note_own(change.uid, change.modseq);
            view.keywords_seen(&change.keywords);
            updated.push(change.uid);
            // RFC 7162 §3.1.3: with CONDSTORE even a silent STORE reports
            // the new MODSEQ.
            if req.silent && !condstore {
                continue;
            }
            let Some(seq) = view.seq_of(change.uid) else { continue };
            let mut f = FetchResponse::start(out, seq);
            // RFC 7162 §3.2.4: with QRESYNC every FETCH carries its UID.
            if uid || style.qresync {
                f.uid(change.uid.get());
            }
            if !req.silent {
                f.flags(&flags::to_wire(change.flags, &change.keywords), false);
            }
            if condstore {
                f.modseq(change.modseq.0);
            }
            f.finish();
        }
        if unchanged_since.is_some() {
            // RFC 7162 §3.1.3: the messages left alone, by UID or number.
            let failed: Vec<u32> = uids
                .iter()
                .filter(|u| !updated.contains(u))
                .filter_map(|u| if uid { Some(u.get()) } else { view.seq_of(*u) })
                .collect();
            if !failed.is_empty() {
                return Outcome::Ok(Some(Code::Modified(failed)), "Conditional STORE failed".into());
            }
        }
        Outcome::ok("STORE completed")
    }

    /// COPY, MOVE and their UID forms.
    pub(crate) async fn copy(
        &mut self,
        server: &mut Server,
        uid: bool,
        set: &SequenceSet,
        name: &str,
        moving: bool,
    ) -> Outcome {
        let verb = if moving { "MOVE" } else { "COPY" };
        let account = self.account().id;
        let Some(view) = self.selected.as_mut() else { return Outcome::Bad("No mailbox selected".into()) };
        if moving && view.read_only {
            return Outcome::no("Mailbox is read-only");
        }
        let indices = match view.resolve(set, uid) {
            Ok(i) => i,
            Err(e) => return Outcome::Bad(e.into()),
        };
        let uids: Vec<Uid> = indices.iter().map(|&i| view.uid_at(i)).filter(|u| !view.is_gone(*u)).collect();
        let dest = match self.ctx.store.mailbox(account, name).await {
            Ok(Some(d)) => d,
            Ok(None) => return Outcome::No(Some(Code::TryCreate), "No such mailbox".into()),
            Err(e) => return store_failure(&e),
        };
        let store = &self.ctx.store;
        let done = if moving {
            store.move_messages(view.mailbox, &uids, dest.id).await
        } else {
            store.copy_messages(view.mailbox, &uids, dest.id).await
        };
        let outcome = match done {
            Ok(o) => o,
            Err(e) => return store_failure(&e),
        };
        let missing = outcome.pairs.len() < uids.len() || uids.len() < indices.len();
        let code = (!outcome.pairs.is_empty()).then(|| Code::CopyUid {
            uid_validity: outcome.uid_validity.get(),
            source: outcome.pairs.iter().map(|p| p.0.get()).collect(),
            dest: outcome.pairs.iter().map(|p| p.1.get()).collect(),
        });
        if missing && outcome.pairs.is_empty() && !uids.is_empty() {
            return Outcome::No(Some(Code::ExpungeIssued), "The messages no longer exist".into());
        }
        if !moving {
            return Outcome::Ok(code, "COPY completed".into());
        }
        // RFC 6851 §4.3: COPYUID goes in an untagged OK before the
        // expunges; the session announces those before its tagged reply.
        if let Some(code) = &code {
            response::status(server.output_mut(), None, Status::Ok, Some(code), "Moved");
        }
        let moved: Vec<Uid> = outcome.pairs.iter().map(|p| p.0).collect();
        view.mark_gone(&moved);
        Outcome::ok(format!("{verb} completed"))
    }

    /// EXPUNGE, and UID EXPUNGE restricted to a UID set.
    pub(crate) async fn expunge(&mut self, _server: &mut Server, uids: Option<&SequenceSet>) -> Outcome {
        let Some(view) = self.selected.as_mut() else { return Outcome::Bad("No mailbox selected".into()) };
        if view.read_only {
            return Outcome::no("Mailbox is read-only");
        }
        let within: Option<Vec<Uid>> = match uids {
            Some(set) => match view.resolve(set, true) {
                Ok(indices) => Some(indices.iter().map(|&i| view.uid_at(i)).collect()),
                Err(e) => return Outcome::Bad(e.into()),
            },
            None => None,
        };
        match self.ctx.store.expunge_deleted(view.mailbox, within.as_deref()).await {
            Ok(removed) => {
                tracing::debug!(removed = %compress(&removed.iter().map(|u| u.get()).collect::<Vec<_>>()), "expunged");
                view.mark_gone(&removed);
                Outcome::ok("EXPUNGE completed")
            }
            Err(e) => store_failure(&e),
        }
    }
}
