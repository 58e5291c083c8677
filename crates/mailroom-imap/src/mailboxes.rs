//! Commands on mailboxes as wholes: SELECT/EXAMINE, CLOSE/UNSELECT,
//! CREATE, DELETE, RENAME, SUBSCRIBE/UNSUBSCRIBE, LIST, LSUB, STATUS and
//! APPEND (RFC 9051 §6.3, RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS,
//! RFC 6154 SPECIAL-USE, RFC 4315 UIDPLUS, RFC 7162 QRESYNC).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::task::Poll;
use std::time::{Duration, UNIX_EPOCH};

use mailroom_imap_proto::command::{Flag, InternalDate, List, Qresync, StatusItem};
use mailroom_imap_proto::response::{self, Code, FetchResponse, ListItem, Status};
use mailroom_imap_proto::sequence::SequenceSet;
use mailroom_imap_proto::{DELIMITER, Server};
use mailroom_services::message::header_cache;
use mailroom_store::{AnyStore, MailStore, MailboxRecord, MailboxStatus, NewContent, NewMessage, StoreError};
use mailroom_types::ModSeq;
use tokio::task::JoinHandle;

use crate::flags;
use crate::selected::Selected;
use crate::session::{Outcome, Session, store_failure};

/// The system flags every mailbox takes, for PERMANENTFLAGS.
fn permanent_flags() -> Vec<Flag> {
    flags::defined([])
}

impl Session<'_> {
    /// The account's mailbox called `name`; `None` when it does not exist.
    async fn find(&self, name: &str) -> Result<Option<MailboxRecord>, Outcome> {
        self.ctx.store.mailbox(self.account().id, name).await.map_err(|e| store_failure(&e))
    }

    /// SELECT and EXAMINE (RFC 9051 §6.3.2-3), with CONDSTORE and QRESYNC
    /// (RFC 7162 §3.1.2, §3.2.5).
    pub(crate) async fn select(
        &mut self,
        server: &mut Server,
        name: &str,
        read_only: bool,
        qresync: Option<Qresync>,
    ) -> Outcome {
        // A failed SELECT leaves no mailbox selected (RFC 9051 §6.3.2).
        self.selected = None;
        let record = match self.find(name).await {
            Ok(Some(r)) => r,
            Ok(None) => return Outcome::No(Some(Code::NonExistent), "No such mailbox".into()),
            Err(o) => return o,
        };
        let (view, status) = match Selected::open(&self.ctx.store, record.id, read_only).await {
            Ok(v) => v,
            Err(e) => return store_failure(&e),
        };
        let utf8 = server.utf8_names();
        let rev2 = server.imap4rev2_enabled();
        let style = Self::style(server);
        let out = server.output_mut();
        response::flags(out, &flags::defined(&view.keywords));
        response::exists(out, view.len() as u32);
        if !rev2 {
            response::recent(out, 0);
        }
        let permanent = if read_only { Vec::new() } else { permanent_flags() };
        let code = Code::PermanentFlags { flags: permanent, keywords: !read_only };
        response::status(out, None, Status::Ok, Some(&code), "Flags permitted");
        response::status(out, None, Status::Ok, Some(&Code::UidValidity(status.uid_validity.get())), "UIDs valid");
        response::status(out, None, Status::Ok, Some(&Code::UidNext(status.uid_next.get())), "Predicted next UID");
        let hms = Code::HighestModSeq(status.highest_modseq.0);
        response::status(out, None, Status::Ok, Some(&hms), "Highest");
        if rev2 {
            let item = ListItem { delimiter: Some(DELIMITER), name: &record.name, ..ListItem::default() };
            response::list(out, &item, utf8);
        }
        if let Some(q) = qresync
            && q.uid_validity == status.uid_validity.get()
            && let Err(e) = resync(self, out, &view, &q, style.condstore).await
        {
            return store_failure(&e);
        }
        self.selected = Some(view);
        let code = if read_only { Code::ReadOnly } else { Code::ReadWrite };
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        Outcome::Ok(Some(code), format!("{verb} completed"))
    }

    /// CLOSE (expunging `\Deleted` messages silently, RFC 9051 §6.4.1) and
    /// UNSELECT (RFC 3691).
    pub(crate) async fn close(&mut self, _server: &mut Server, expunge: bool) -> Outcome {
        let Some(view) = self.selected.take() else { return Outcome::Bad("No mailbox selected".into()) };
        if expunge
            && !view.read_only
            && let Err(e) = self.ctx.store.expunge_deleted(view.mailbox, None).await
        {
            return store_failure(&e);
        }
        Outcome::ok(if expunge { "CLOSE completed" } else { "UNSELECT completed" })
    }

    /// CREATE (RFC 9051 §6.3.4): a trailing delimiter only declares the
    /// intent to create inferiors.
    pub(crate) async fn create(&mut self, name: &str) -> Outcome {
        let name = name.strip_suffix(DELIMITER).unwrap_or(name);
        match self.ctx.store.create_mailbox(self.account().id, name).await {
            Ok(_) => Outcome::ok("CREATE completed"),
            Err(e) => name_failure(&e),
        }
    }

    /// DELETE (RFC 9051 §6.3.5). Sessions with the mailbox selected,
    /// this one included, end at their next response.
    pub(crate) async fn delete(&mut self, name: &str) -> Outcome {
        if name.eq_ignore_ascii_case("INBOX") {
            return Outcome::No(Some(Code::Cannot), "INBOX cannot be deleted".into());
        }
        match self.ctx.store.delete_mailbox(self.account().id, name).await {
            Ok(_) => Outcome::ok("DELETE completed"),
            Err(e) => name_failure(&e),
        }
    }

    /// RENAME (RFC 9051 §6.3.6), INBOX's rule included (the store's).
    pub(crate) async fn rename(&mut self, from: &str, to: &str) -> Outcome {
        let to = to.strip_suffix(DELIMITER).unwrap_or(to);
        match self.ctx.store.rename_mailbox(self.account().id, from, to).await {
            Ok(_) => Outcome::ok("RENAME completed"),
            Err(e) => name_failure(&e),
        }
    }

    /// SUBSCRIBE and UNSUBSCRIBE (RFC 9051 §6.3.7-8).
    pub(crate) async fn subscribe(&mut self, name: &str, on: bool) -> Outcome {
        let account = self.account().id;
        let store = &self.ctx.store;
        let done = if on {
            store.add_subscription(account, name).await
        } else {
            store.remove_subscription(account, name).await
        };
        match done {
            Ok(_) if on => Outcome::ok("SUBSCRIBE completed"),
            Ok(true) => Outcome::ok("UNSUBSCRIBE completed"),
            Ok(false) => Outcome::No(Some(Code::NonExistent), "Not subscribed".into()),
            Err(e) => name_failure(&e),
        }
    }

    /// LIST with its RFC 5258 selection and return options.
    pub(crate) async fn list(&mut self, server: &mut Server, list: &List) -> Outcome {
        let utf8 = server.utf8_names();
        if list.patterns.len() == 1 && list.patterns[0].is_empty() && !list.extended {
            // RFC 9051 §6.3.9: an empty name asks for the delimiter.
            let item =
                ListItem { attributes: &["\\Noselect"], delimiter: Some(DELIMITER), name: "", ..ListItem::default() };
            response::list(server.output_mut(), &item, utf8);
            return Outcome::ok("LIST completed");
        }
        let account = self.account().id;
        let boxes = match self.ctx.store.mailboxes(account).await {
            Ok(b) => b,
            Err(e) => return store_failure(&e),
        };
        let want_subs = list.select.subscribed || list.ret.subscribed;
        let subs: BTreeSet<String> = if want_subs {
            match self.ctx.store.subscriptions(account).await {
                Ok(s) => s.into_iter().collect(),
                Err(e) => return store_failure(&e),
            }
        } else {
            BTreeSet::new()
        };
        let existing: BTreeMap<&str, &MailboxRecord> = boxes.iter().map(|b| (b.name.as_str(), b)).collect();
        let mut names: BTreeSet<String> = BTreeSet::new();
        // Return options only add information (RFC 5258 §3.2); only the
        // SUBSCRIBED selection option lists subscribed names that do not
        // exist.
        let listed_subs = subs.iter().map(String::as_str).filter(|_| list.select.subscribed);
        for name in existing.keys().copied().chain(listed_subs) {
            names.insert(name.to_string());
            names.extend(parents(name));
        }
        let patterns: Vec<String> =
            list.patterns.iter().map(|p| normalize_pattern(&format!("{}{p}", list.reference))).collect();
        let matches = |name: &str| patterns.iter().any(|p| wildcard_match(p, name));
        let extended = list.extended || server.imap4rev2_enabled();
        let mut out = Vec::new();
        for name in ordered(&names) {
            let record = existing.get(name.as_str()).copied();
            let has_children =
                names.range(format!("{name}/")..).next().is_some_and(|n| n.starts_with(&format!("{name}/")));
            let subscribed = subs.contains(name.as_str());
            let mut child_info = false;
            if !matches(name) {
                continue;
            }
            if list.select.subscribed && !subscribed {
                // RECURSIVEMATCH: a parent whose inferior is subscribed.
                let child_subscribed = subs.iter().any(|s| s.starts_with(&format!("{name}/")));
                if !(list.select.recursive_match && child_subscribed) {
                    continue;
                }
                child_info = true;
            }
            if list.select.special_use && record.is_none_or(|r| r.special_use.is_none()) {
                continue;
            }
            if record.is_none() && !list.select.subscribed {
                // A parent known only through its inferiors is listed only
                // when no inferior matches (`%` stopping at its level).
                let prefix = format!("{name}/");
                if names.iter().any(|n| n.starts_with(&prefix) && matches(n)) {
                    continue;
                }
            }
            let mut attributes: Vec<&str> = Vec::new();
            if record.is_none() {
                attributes.push(if extended { "\\NonExistent" } else { "\\Noselect" });
            }
            attributes.push(if has_children { "\\HasChildren" } else { "\\HasNoChildren" });
            if let Some(use_) = record.and_then(|r| r.special_use) {
                attributes.push(use_.attribute());
            }
            if want_subs && subscribed {
                attributes.push("\\Subscribed");
            }
            let item = ListItem {
                attributes: &attributes,
                delimiter: Some(DELIMITER),
                name,
                child_info_subscribed: child_info && list.extended,
                old_name: None,
            };
            response::list(&mut out, &item, utf8);
            if let (Some(items), Some(record)) = (&list.ret.status, record) {
                match self.ctx.store.mailbox_status(record.id).await {
                    Ok(status) => response::status_data(&mut out, name, &status_items(&status, items), utf8),
                    Err(e) => return store_failure(&e),
                }
            }
        }
        server.output_mut().extend_from_slice(&out);
        Outcome::ok("LIST completed")
    }

    /// LSUB (IMAP4rev1, RFC 3501 §6.3.9).
    pub(crate) async fn lsub(&mut self, server: &mut Server, reference: &str, pattern: &str) -> Outcome {
        let account = self.account().id;
        let (boxes, subs) = match (self.ctx.store.mailboxes(account).await, self.ctx.store.subscriptions(account).await)
        {
            (Ok(b), Ok(s)) => (b, s),
            (Err(e), _) | (_, Err(e)) => return store_failure(&e),
        };
        let existing: BTreeSet<&str> = boxes.iter().map(|b| b.name.as_str()).collect();
        let subscribed: BTreeSet<&str> = subs.iter().map(String::as_str).collect();
        let pattern = normalize_pattern(&format!("{reference}{pattern}"));
        let mut candidates: BTreeSet<String> = BTreeSet::new();
        for s in &subs {
            candidates.insert(s.clone());
            candidates.extend(parents(s));
        }
        let utf8 = server.utf8_names();
        for name in ordered(&candidates) {
            if !wildcard_match(&pattern, name) {
                continue;
            }
            let mut attributes = Vec::new();
            if !subscribed.contains(name.as_str()) {
                // RFC 3501 §6.3.9: `%` matching a parent of a subscribed
                // name lists it as \Noselect.
                let prefix = format!("{name}/");
                if subs.iter().any(|s| s.starts_with(&prefix) && wildcard_match(&pattern, s)) {
                    continue;
                }
                attributes.push("\\Noselect");
            } else if !existing.contains(name.as_str()) {
                attributes.push("\\Noselect");
            }
            let item = ListItem { attributes: &attributes, delimiter: Some(DELIMITER), name, ..ListItem::default() };
            response::lsub(server.output_mut(), &item, utf8);
        }
        Outcome::ok("LSUB completed")
    }

    /// STATUS (RFC 9051 §6.3.11).
    pub(crate) async fn status(&mut self, server: &mut Server, name: &str, items: &[StatusItem]) -> Outcome {
        let record = match self.find(name).await {
            Ok(Some(r)) => r,
            Ok(None) => return Outcome::No(Some(Code::NonExistent), "No such mailbox".into()),
            Err(o) => return o,
        };
        match self.ctx.store.mailbox_status(record.id).await {
            Ok(status) => {
                let utf8 = server.utf8_names();
                response::status_data(server.output_mut(), &record.name, &status_items(&status, items), utf8);
                Outcome::ok("STATUS completed")
            }
            Err(e) => store_failure(&e),
        }
    }

    /// APPEND (RFC 9051 §6.3.12) with UIDPLUS's APPENDUID: checks the
    /// command and prepares the message; the store write is started by
    /// the caller ([`append_in`]), so that pipelined APPENDs share commits.
    pub(crate) async fn prepare_append(
        &mut self,
        name: &str,
        flag_list: &[Flag],
        date: Option<InternalDate>,
        message: Vec<u8>,
    ) -> Result<(MailboxRecord, NewMessage), Outcome> {
        let record = match self.find(name).await? {
            Some(r) => r,
            None => return Err(Outcome::No(Some(Code::TryCreate), "No such mailbox".into())),
        };
        if message.is_empty() {
            return Err(Outcome::no("An empty message cannot be appended"));
        }
        let (flags, keywords) =
            flags::from_wire(flag_list).map_err(|f| Outcome::Bad(format!("Flag {f} cannot be set")))?;
        let now = self.ctx.clock.now();
        let internal_date = match date {
            Some(d) if d.unix_seconds >= 0 => UNIX_EPOCH + Duration::from_secs(d.unix_seconds as u64),
            Some(_) => return Err(Outcome::Bad("Date before 1970".into())),
            None => now,
        };
        let headers = header_cache(&message);
        let blobs = self.ctx.store.blobs().clone();
        let id = self.ctx.ids.blob_id(now);
        let (content, size) = if message.len() <= NewContent::INLINE_MAX {
            // No file to write: nothing to leave the async thread for.
            blobs.content(id, message).map_err(|e| store_failure(&StoreError::Io(e)))?
        } else {
            match tokio::task::spawn_blocking(move || blobs.content(id, message)).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return Err(store_failure(&StoreError::Io(e))),
                Err(e) => return Err(store_failure(&StoreError::Unavailable(e.to_string()))),
            }
        };
        Ok((record, NewMessage { content, size, internal_date, flags, keywords, headers }))
    }
}

/// Starts storing a prepared APPEND in a task of its own, so that the
/// session reads on and pipelined APPENDs share the store's commits; the
/// task ends with the outcome for the tagged response.
///
/// The task is polled once here before it is spawned: that queues its
/// write in the store at once, so pipelined APPENDs take their UIDs in
/// the order the client sent them.
pub(crate) async fn start_append(store: AnyStore, record: MailboxRecord, message: NewMessage) -> JoinHandle<Outcome> {
    let mut task = Box::pin(append_in(store, record, message));
    match std::future::poll_fn(|cx| Poll::Ready(task.as_mut().poll(cx))).await {
        Poll::Ready(outcome) => tokio::spawn(async move { outcome }),
        Poll::Pending => tokio::spawn(task),
    }
}

/// Stores a prepared APPEND; the outcome for its tagged response.
async fn append_in(store: AnyStore, record: MailboxRecord, message: NewMessage) -> Outcome {
    match store.append(record.id, &message).await {
        Ok((uid, _)) => {
            let code = Code::AppendUid { uid_validity: record.uid_validity.get(), uid: uid.get() };
            Outcome::Ok(Some(code), "APPEND completed".into())
        }
        Err(e) => store_failure(&e),
    }
}

/// QRESYNC's part of SELECT (RFC 7162 §3.2.5.1): what vanished and what
/// changed since the client's modseq.
async fn resync(
    session: &Session<'_>,
    out: &mut Vec<u8>,
    view: &Selected,
    q: &Qresync,
    condstore: bool,
) -> Result<(), StoreError> {
    let since = ModSeq(q.modseq);
    let store = &session.ctx.store;
    let vanished = store.vanished_since(view.mailbox, since).await?;
    let known = q.known_uids.clone();
    let max = view.max_uid().max(vanished.last().map(|u| u.get()).unwrap_or(0));
    let vanished: Vec<u32> = vanished
        .iter()
        .map(|u| u.get())
        .filter(|u| known.as_ref().is_none_or(|k: &SequenceSet| k.contains(*u, max)))
        .collect();
    if !vanished.is_empty() {
        response::vanished(out, true, &vanished);
    }
    for rec in store.changed_since(view.mailbox, since).await? {
        if let Some(seq) = view.seq_of(rec.uid) {
            let mut f = FetchResponse::start(out, seq);
            f.uid(rec.uid.get()).flags(&flags::to_wire(rec.flags, &rec.keywords), false);
            if condstore {
                f.modseq(rec.modseq.0);
            }
            f.finish();
        }
    }
    Ok(())
}

/// The values of `items` from a status snapshot.
fn status_items(status: &MailboxStatus, items: &[StatusItem]) -> Vec<(StatusItem, u64)> {
    items
        .iter()
        .map(|&item| {
            let value = match item {
                StatusItem::Messages => u64::from(status.messages),
                StatusItem::UidNext => u64::from(status.uid_next.get()),
                StatusItem::UidValidity => u64::from(status.uid_validity.get()),
                StatusItem::Unseen => u64::from(status.unseen),
                StatusItem::Deleted => u64::from(status.deleted),
                StatusItem::Size => status.size,
                StatusItem::HighestModSeq => status.highest_modseq.0,
                StatusItem::Recent => u64::from(status.recent),
            };
            (item, value)
        })
        .collect()
}

/// A mailbox-name failure as the client sees it (RFC 5530 codes).
fn name_failure(e: &StoreError) -> Outcome {
    match e {
        StoreError::NotFound(_) => Outcome::No(Some(Code::NonExistent), "No such mailbox".into()),
        StoreError::AlreadyExists(_) => Outcome::No(Some(Code::AlreadyExists), "Mailbox already exists".into()),
        StoreError::InvalidName(why) => Outcome::No(Some(Code::Cannot), format!("Invalid mailbox name: {why}")),
        StoreError::Conflict(why) => Outcome::No(Some(Code::Cannot), why.clone()),
        other => store_failure(other),
    }
}

/// The parents of `name`: `a/b/c` has `a` and `a/b`.
fn parents(name: &str) -> impl Iterator<Item = String> + '_ {
    name.match_indices(DELIMITER).map(|(i, _)| name[..i].to_string())
}

/// INBOX first, then the rest in name order.
fn ordered(names: &BTreeSet<String>) -> impl Iterator<Item = &String> {
    let inbox = names.iter().filter(|n| n.as_str() == "INBOX");
    inbox.chain(names.iter().filter(|n| n.as_str() != "INBOX"))
}

/// INBOX is case-insensitive (RFC 9051 §5.1): a pattern starting with any
/// spelling of it is matched as `INBOX`.
fn normalize_pattern(pattern: &str) -> String {
    let head = pattern.get(..5);
    let rest = pattern.get(5..).unwrap_or("");
    match head {
        Some(h) if h.eq_ignore_ascii_case("INBOX") && (rest.is_empty() || rest.starts_with(DELIMITER)) => {
            format!("INBOX{rest}")
        }
        _ => pattern.to_string(),
    }
}

/// LIST wildcards (RFC 9051 §6.3.9): `*` matches anything, `%` anything
/// but the delimiter. Linear in pattern times name, whatever the pattern.
pub(crate) fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // reach[j]: the pattern so far can match the first j characters.
    let mut reach = vec![false; n.len() + 1];
    reach[0] = true;
    for &pc in &p {
        let mut next = vec![false; n.len() + 1];
        match pc {
            '*' | '%' => {
                // on: some k <= j is reachable with n[k..j] swallowable.
                let mut on = false;
                for j in 0..=n.len() {
                    on = reach[j] || (on && j > 0 && (pc == '*' || n[j - 1] != DELIMITER));
                    next[j] = on;
                }
            }
            c => {
                for j in 0..n.len() {
                    if reach[j] && n[j] == c {
                        next[j + 1] = true;
                    }
                }
            }
        }
        reach = next;
    }
    reach[n.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        for (p, n, m) in [
            ("*", "a/b/c", true),
            ("%", "a", true),
            ("%", "a/b", false),
            ("a/%", "a/b", true),
            ("a/%", "a/b/c", false),
            ("a/*", "a/b/c", true),
            ("a%c", "abc", true),
            ("a%c", "a/c", false),
            ("%/%", "a/b", true),
            ("INBOX", "INBOX", true),
            ("IN*", "INBOX", true),
            ("x", "INBOX", false),
            ("", "", true),
            ("*b", "a/b", true),
            ("%b", "a/b", false),
        ] {
            assert_eq!(wildcard_match(p, n), m, "{p} vs {n}");
        }
    }

    #[test]
    fn inbox_patterns() {
        assert_eq!(normalize_pattern("inbox"), "INBOX");
        assert_eq!(normalize_pattern("Inbox/%"), "INBOX/%");
        assert_eq!(normalize_pattern("inboxes"), "inboxes");
    }
}
