//! What a signed-in user can do to their mail, whichever front end asks
//! (pages or `/api/`): every operation checks that the mailbox is the
//! user's, and goes through the store, so IMAP sessions learn of it from
//! the store's change feed at once.

use mailroom_store::{FlagOp, MailStore, MailboxRecord, MailboxStatus, MessageRecord, SpecialUse, StoreError};
use mailroom_types::{AccountId, Flags, MailboxId, Uid};
use serde::Serialize;

use crate::{App, WebError};

/// The most mailboxes whose counts are kept; past it the cache starts over.
const MAX_COUNTED: usize = 100_000;

/// A folder with its counts, for the folder list.
#[derive(Debug, Clone, Serialize)]
pub struct Folder {
    /// Stable across renames: pages and the API name folders by it.
    pub id: i64,
    /// The full name, `/` between levels.
    pub name: String,
    /// `inbox`, `sent`, `drafts`, `trash`, `junk`, `archive`, or none.
    pub role: Option<&'static str>,
    /// Messages in it.
    pub total: u32,
    /// Messages without `\Seen`.
    pub unread: u32,
}

impl Folder {
    /// The last level of the name, for an indented tree.
    pub fn leaf(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or(&self.name)
    }

    /// How deep in the tree it is (0 at the top).
    pub fn depth(&self) -> usize {
        self.name.matches('/').count()
    }
}

/// The role name of a special-use mailbox.
pub fn role(record: &MailboxRecord) -> Option<&'static str> {
    if record.name == "INBOX" {
        return Some("inbox");
    }
    record.special_use.map(|u| match u {
        SpecialUse::Sent => "sent",
        SpecialUse::Drafts => "drafts",
        SpecialUse::Trash => "trash",
        SpecialUse::Junk => "junk",
        SpecialUse::Archive => "archive",
    })
}

impl App {
    /// The user's folders, INBOX first, with counts.
    pub async fn folders(&self, account: AccountId) -> Result<Vec<Folder>, WebError> {
        let mut out = Vec::new();
        for m in self.store.mailboxes(account).await? {
            let (total, unread) = self.counts(&m).await?;
            out.push(Folder { id: m.id.0, role: role(&m), name: m.name, total, unread });
        }
        Ok(out)
    }

    /// A mailbox's message and unread counts. Every page shows them for
    /// every folder, so they are kept per mailbox with the HIGHESTMODSEQ
    /// they were counted at: every arrival, flag change and expunge bumps
    /// it, so an entry whose modseq still matches is exact.
    async fn counts(&self, m: &MailboxRecord) -> Result<(u32, u32), WebError> {
        if let Some(&(modseq, total, unread)) = self.lock_counts().get(&m.id)
            && modseq == m.highest_modseq
        {
            return Ok((total, unread));
        }
        let status = self.store.mailbox_status(m.id).await?;
        let mut counts = self.lock_counts();
        if counts.len() >= MAX_COUNTED {
            counts.clear();
        }
        counts.insert(m.id, (status.highest_modseq, status.messages, status.unseen));
        Ok((status.messages, status.unseen))
    }

    fn lock_counts(&self) -> std::sync::MutexGuard<'_, crate::Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The user's mailbox `id`, or NotFound (also for another user's).
    pub async fn mailbox(&self, account: AccountId, id: i64) -> Result<MailboxRecord, WebError> {
        match self.store.mailbox_by_id(MailboxId(id)).await? {
            Some(m) if m.account == account => Ok(m),
            _ => Err(WebError::NotFound),
        }
    }

    /// The user's mailbox of this special use.
    pub async fn special(&self, account: AccountId, use_: SpecialUse) -> Result<MailboxRecord, WebError> {
        let all = self.store.mailboxes(account).await?;
        all.into_iter()
            .find(|m| m.special_use == Some(use_))
            .ok_or_else(|| WebError::Invalid(format!("there is no {use_:?} folder")))
    }

    /// A mailbox's counters.
    pub async fn status(&self, mailbox: &MailboxRecord) -> Result<MailboxStatus, WebError> {
        Ok(self.store.mailbox_status(mailbox.id).await?)
    }

    /// One message of the user's mailbox `id`.
    pub async fn message(
        &self,
        account: AccountId,
        id: i64,
        uid: u32,
    ) -> Result<(MailboxRecord, MessageRecord), WebError> {
        let mailbox = self.mailbox(account, id).await?;
        let uid = Uid::new(uid).ok_or(WebError::NotFound)?;
        let message = self.store.message(mailbox.id, uid).await?.ok_or(WebError::NotFound)?;
        Ok((mailbox, message))
    }

    /// A message's raw bytes.
    pub async fn raw(&self, message: &MessageRecord) -> Result<Vec<u8>, WebError> {
        let mut buf = Vec::new();
        if self.store.read_blob(&message.blob, &mut buf).await? { Ok(buf) } else { Err(WebError::NotFound) }
    }

    /// Sets or clears flags on messages of a mailbox the caller checked.
    pub async fn set_flags(&self, mailbox: MailboxId, uids: &[Uid], flags: Flags, on: bool) -> Result<(), WebError> {
        let op = if on { FlagOp::Add } else { FlagOp::Remove };
        self.store.store_flags(mailbox, uids, op, flags, &[], None).await?;
        Ok(())
    }

    /// Moves messages to another of the user's folders.
    pub async fn move_to(&self, account: AccountId, from: MailboxId, uids: &[Uid], to: i64) -> Result<(), WebError> {
        let to = self.mailbox(account, to).await?;
        if to.id != from {
            self.store.move_messages(from, uids, to.id).await?;
        }
        Ok(())
    }

    /// Deletes messages: into Trash, or for good when they are in Trash
    /// already (or the account has no Trash).
    pub async fn delete(&self, account: AccountId, from: &MailboxRecord, uids: &[Uid]) -> Result<(), WebError> {
        match self.special(account, SpecialUse::Trash).await {
            Ok(trash) if trash.id != from.id => {
                self.store.move_messages(from.id, uids, trash.id).await?;
            }
            _ => {
                self.store.expunge(from.id, uids).await?;
            }
        }
        Ok(())
    }

    /// Removes every message of a Trash or Junk folder for good.
    pub async fn empty(&self, mailbox: &MailboxRecord) -> Result<usize, WebError> {
        if !matches!(mailbox.special_use, Some(SpecialUse::Trash | SpecialUse::Junk)) {
            return Err(WebError::Invalid("only Trash and Junk can be emptied".into()));
        }
        let uids: Vec<Uid> = self.store.message_index(mailbox.id).await?.iter().map(|m| m.uid).collect();
        Ok(self.store.expunge(mailbox.id, &uids).await?.len())
    }

    /// Creates a folder (and missing parents).
    pub async fn create_folder(&self, account: AccountId, name: &str) -> Result<MailboxRecord, WebError> {
        let name = folder_name(name)?;
        Ok(self.store.create_mailbox(account, &name).await?)
    }

    /// Renames one of the user's folders; INBOX and special folders keep
    /// their names, as clients find them by role and by name.
    pub async fn rename_folder(&self, account: AccountId, id: i64, new: &str) -> Result<(), WebError> {
        let mailbox = self.mailbox(account, id).await?;
        if role(&mailbox).is_some() {
            return Err(WebError::Invalid(format!("{} keeps its name", mailbox.name)));
        }
        let new = folder_name(new)?;
        self.store.rename_mailbox(account, &mailbox.name, &new).await?;
        Ok(())
    }

    /// Deletes one of the user's folders and its messages; INBOX and the
    /// special folders stay.
    pub async fn delete_folder(&self, account: AccountId, id: i64) -> Result<(), WebError> {
        let mailbox = self.mailbox(account, id).await?;
        if role(&mailbox).is_some() {
            return Err(WebError::Invalid(format!("{} cannot be deleted", mailbox.name)));
        }
        self.store.delete_mailbox(account, &mailbox.name).await?;
        Ok(())
    }
}

/// A folder name as typed: trimmed, with no empty levels.
fn folder_name(name: &str) -> Result<String, WebError> {
    let name = name.trim().trim_matches('/');
    if name.is_empty() || name.split('/').any(|level| level.trim().is_empty()) {
        return Err(WebError::Invalid("a folder needs a name".into()));
    }
    Ok(name.to_string())
}

/// Parses UIDs as a form or the API sends them; bad ones are refused.
pub fn uids(values: &[String]) -> Result<Vec<Uid>, WebError> {
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        for part in v.split(',').filter(|p| !p.is_empty()) {
            let n: u32 = part.trim().parse().map_err(|_| WebError::Invalid(format!("bad message id {part:?}")))?;
            out.push(Uid::new(n).ok_or_else(|| WebError::Invalid("bad message id 0".into()))?);
        }
    }
    out.sort_unstable();
    out.dedup();
    if out.is_empty() {
        return Err(WebError::Invalid("no message chosen".into()));
    }
    Ok(out)
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> WebError {
        match e {
            StoreError::NotFound(_) => WebError::NotFound,
            StoreError::AlreadyExists(what) => WebError::Invalid(format!("already exists: {what}")),
            StoreError::InvalidName(what) => WebError::Invalid(format!("not a valid name: {what}")),
            StoreError::Conflict(what) => WebError::Invalid(what),
            other => WebError::Store(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_parse_lists_and_refuse_junk() {
        let got = uids(&["3".into(), "1,2".into(), "3".into()]).unwrap();
        assert_eq!(got.iter().map(|u| u.get()).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(uids(&["0".into()]).is_err());
        assert!(uids(&["x".into()]).is_err());
        assert!(uids(&[]).is_err());
    }

    #[test]
    fn folder_names_are_trimmed_and_need_every_level() {
        assert_eq!(folder_name(" Projects/2026 ").unwrap(), "Projects/2026");
        assert!(folder_name("  ").is_err());
        assert!(folder_name("a//b").is_err());
    }
}
