//! Sending and drafts. A message composed in the browser takes the path
//! one submitted on port 587 takes: the sender is the user, the rate limit
//! is theirs, it is DKIM-signed when its domain has keys, and its local
//! copies, queue entry and Sent copy commit in one transaction before the
//! page says "sent".

use mailroom_services::delivery::StoredMessage;
use mailroom_store::{MailStore, MailboxRecord, NewQueueEntry, Resolution, SpecialUse, Submission};
use mailroom_types::{AccountId, Address, Flags, Uid};
use tracing::info;

use crate::compose::{self, Built, Draft, Sender, Upload};
use crate::guard::User;
use crate::{App, WebError};

/// A message as the composer hands it over.
#[derive(Debug, Clone, Default)]
pub struct Outgoing {
    /// The typed fields.
    pub draft: Draft,
    /// Newly attached files.
    pub uploads: Vec<Upload>,
    /// Attachments carried over from a stored message (the draft being
    /// resumed, or the message being forwarded): its folder, UID and the
    /// parts kept.
    pub carried: Option<(i64, u32, Vec<String>)>,
    /// The draft this replaces, removed once sent or saved again.
    pub replaces: Option<(i64, u32)>,
    /// The message this answers, marked `\Answered` once sent.
    pub answers: Option<(i64, u32)>,
}

/// Where a sent message went.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The queue id, as port 587 would have said it.
    pub id: String,
    /// Recipients delivered locally and queued.
    pub local: usize,
    /// Recipients queued for other domains.
    pub remote: usize,
}

/// `compose::build` or `compose::build_draft`.
type Builder<T> = fn(&Sender, &Draft, &[Upload], i64, &str, u64) -> Result<T, compose::ComposeError>;

impl App {
    /// Sends a composed message for the signed-in user.
    pub async fn send(&self, user: &User, out: Outgoing) -> Result<Sent, WebError> {
        let account = user.session.account;
        if !self.rate.allows(account) {
            return Err(WebError::RateLimited);
        }
        let uploads = self.all_uploads(account, &out).await?;
        let now = self.clock.now();
        let (id, Built { bytes, recipients }) = self.compose(user, &out, &uploads, now, compose::build)?;
        let (local, remote) = self.resolve(&recipients).await?;
        let mut message = self.received(user, &id, now);
        let signature = self.dkim.sign(&[message.as_slice(), &bytes].concat(), now);
        message.extend_from_slice(&signature);
        message.extend_from_slice(&bytes);
        let sent_box = self.special(account, SpecialUse::Sent).await.ok().map(|m| m.id);
        let stored = self.stored(message, now).await?;
        let queue = (!remote.is_empty()).then(|| NewQueueEntry {
            id: id.clone(),
            sender: Some(user.session.address.clone()),
            recipients: remote.clone(),
            created: now,
            first_attempt: now,
        });
        let submission = Submission { message: stored.new_message(), local: local.clone(), queue, sent: sent_box };
        if let Err(e) = self.outbound.submit(&submission).await {
            if let mailroom_store::NewContent::File(blob, _) = &stored.content {
                let _ = self.store.blobs().delete(blob);
            }
            return Err(e.into());
        }
        self.rate.record(account);
        info!(queue_id = %id, user = %user.session.address, size = stored.size, local = local.len(), remote = remote.len(), "webmail message sent");
        // The message is sent; tidying up after it must not say otherwise.
        if let Some((folder, uid)) = out.answers {
            let _ = self.mark(account, folder, uid, Flags::ANSWERED).await;
        }
        if let Some((folder, uid)) = out.replaces {
            let _ = self.discard(account, folder, uid).await;
        }
        Ok(Sent { id: id.as_str().to_string(), local: local.len(), remote: remote.len() })
    }

    /// Saves the composer's state into Drafts (replacing the draft it was
    /// resumed from); returns the new draft's folder and UID.
    pub async fn save_draft(&self, user: &User, out: Outgoing) -> Result<(i64, u32), WebError> {
        let account = user.session.account;
        let drafts = self.special(account, SpecialUse::Drafts).await?;
        let uploads = self.all_uploads(account, &out).await?;
        let now = self.clock.now();
        let (_, bytes) = self.compose(user, &out, &uploads, now, compose::build_draft)?;
        let stored = self.stored(bytes, now).await?;
        let mut message = stored.new_message();
        message.flags = Flags::SEEN | Flags::DRAFT;
        let (uid, _) = self.store.append(drafts.id, &message).await?;
        if let Some((folder, old)) = out.replaces {
            let _ = self.discard(account, folder, old).await;
        }
        Ok((drafts.id.0, uid.get()))
    }

    /// Builds the message (`compose::build` or `build_draft`) from the
    /// user, dated now, with a fresh queue id that also makes its
    /// Message-ID.
    fn compose<T>(
        &self,
        user: &User,
        out: &Outgoing,
        uploads: &[Upload],
        now: std::time::SystemTime,
        build: Builder<T>,
    ) -> Result<(mailroom_types::QueueId, T), WebError> {
        let id = self.ids.queue_id(now);
        let sender = Sender { name: None, address: user.session.address.clone() };
        let message_id = format!("{}@{}", id.as_str(), self.hostname);
        let date = mailroom_types::time::unix_seconds(now);
        let built = build(&sender, &out.draft, uploads, date, &message_id, self.max_message_size)
            .map_err(|e| WebError::Invalid(e.to_string()))?;
        Ok((id, built))
    }

    /// The new uploads and the carried parts, in that order.
    async fn all_uploads(&self, account: AccountId, out: &Outgoing) -> Result<Vec<Upload>, WebError> {
        let mut uploads = Vec::new();
        if let Some((folder, uid, parts)) = out.carried.as_ref().filter(|c| !c.2.is_empty()) {
            let (_, message) = self.message(account, *folder, *uid).await?;
            let raw = self.raw(&message).await?;
            for part in parts {
                let p = crate::render::part(&raw, part).ok_or(WebError::NotFound)?;
                uploads.push(Upload { filename: p.filename, content_type: p.content_type, bytes: p.bytes });
            }
        }
        uploads.extend(out.uploads.iter().cloned());
        Ok(uploads)
    }

    /// Splits recipients into local accounts and remote addresses; an
    /// unknown user of a local domain is refused, as RCPT would be.
    async fn resolve(&self, recipients: &[Address]) -> Result<(Vec<AccountId>, Vec<Address>), WebError> {
        let (mut local, mut remote) = (Vec::new(), Vec::new());
        for address in recipients {
            match self.store.resolve_recipient(address).await? {
                Resolution::Accounts(accounts) => {
                    for a in accounts {
                        if !local.contains(&a) {
                            local.push(a);
                        }
                    }
                }
                Resolution::NotLocal => remote.push(address.clone()),
                Resolution::Unknown => return Err(WebError::Invalid(format!("{address}: no such user here"))),
            }
        }
        Ok((local, remote))
    }

    /// The trace field this server adds (RFC 5321 §4.4), naming the
    /// browser's address as port 587 names the client's.
    fn received(&self, user: &User, id: &mailroom_types::QueueId, now: std::time::SystemTime) -> Vec<u8> {
        let with = if user.peer.tls { "HTTPS" } else { "HTTP" };
        format!(
            "Received: from [{}] by {} with {with} (webmail)\r\n\tid {}; {}\r\n",
            user.peer.ip,
            self.hostname,
            id.as_str(),
            mailroom_types::time::rfc5322(now)
        )
        .into_bytes()
    }

    /// The bytes as the store takes them: inline, or a blob file written
    /// and synced first when large.
    async fn stored(&self, bytes: Vec<u8>, now: std::time::SystemTime) -> Result<StoredMessage, WebError> {
        let blobs = self.store.blobs().clone();
        let id = self.ids.blob_id(now);
        let head_end = mailroom_store::header_section(&bytes).map_or(bytes.len().min(64 * 1024), <[u8]>::len);
        let head = bytes[..head_end].to_vec();
        let (content, size) = tokio::task::spawn_blocking(move || blobs.content(id, bytes))
            .await
            .map_err(|e| WebError::Io(std::io::Error::other(e.to_string())))??;
        Ok(StoredMessage { content, size, head, received_at: now })
    }

    /// Sets a flag on one of the user's messages.
    async fn mark(&self, account: AccountId, folder: i64, uid: u32, flag: Flags) -> Result<(), WebError> {
        let mailbox = self.mailbox(account, folder).await?;
        let uid = Uid::new(uid).ok_or(WebError::NotFound)?;
        self.set_flags(mailbox.id, &[uid], flag, true).await
    }

    /// Removes a draft for good (it was sent, or saved anew).
    async fn discard(&self, account: AccountId, folder: i64, uid: u32) -> Result<(), WebError> {
        let mailbox: MailboxRecord = self.mailbox(account, folder).await?;
        if mailbox.special_use != Some(SpecialUse::Drafts) {
            return Err(WebError::Invalid("only drafts are replaced".into()));
        }
        let uid = Uid::new(uid).ok_or(WebError::NotFound)?;
        self.store.expunge(mailbox.id, &[uid]).await?;
        Ok(())
    }
}
