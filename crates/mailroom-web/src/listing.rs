//! A folder's message list: newest first, one page at a time, read from
//! the store's indexes and the kept header sections only, so the first
//! page of a 10,000-message folder costs one index read and one page of
//! headers, never the messages themselves. Search reads the header cache,
//! and the bodies only when asked to.

use mail_parser::{MessageParser, MimeHeaders};
use mailroom_store::{MailStore, MailboxRecord, MessageMeta};
use mailroom_types::{Flags, Uid};
use serde::{Deserialize, Serialize};

use crate::{App, WebError};

/// One row of the list.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The message's UID in the folder.
    pub uid: u32,
    /// The sender's display name, else address.
    pub from: String,
    /// The sender's address.
    pub from_address: String,
    /// The recipients, as the `To:` field names them (for Sent).
    pub to: String,
    /// The decoded subject.
    pub subject: String,
    /// `Date:` as Unix seconds, else the arrival time.
    pub date: i64,
    /// Octets.
    pub size: u64,
    /// Marks.
    pub seen: bool,
    /// Flagged for attention.
    pub flagged: bool,
    /// Replied to.
    pub answered: bool,
    /// Likely has attachments (a multipart/mixed message).
    pub attachment: bool,
}

/// Where a search looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    /// Subject, From, To and body.
    #[default]
    All,
    /// The subject only.
    Subject,
    /// The From: field.
    From,
    /// The To: and Cc: fields.
    To,
    /// The decoded text of the body.
    Body,
}

/// What a list request asks: `?page=2&q=word&in=subject`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListQuery {
    /// Which page, from 1.
    #[serde(default)]
    pub page: Option<usize>,
    /// Words to search for.
    #[serde(default)]
    pub q: Option<String>,
    /// Where to search.
    #[serde(default, rename = "in")]
    pub field: Option<Field>,
}

impl ListQuery {
    /// The search, if any.
    pub fn search(&self) -> Option<(&str, Field)> {
        self.q.as_deref().map(|q| (q, self.field.unwrap_or_default()))
    }
}

/// One page of a folder.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// Its rows, newest first.
    pub rows: Vec<Row>,
    /// Which page (from 1).
    pub page: usize,
    /// How many pages there are.
    pub pages: usize,
    /// Messages listed in all (matching the search, if any).
    pub total: usize,
}

impl App {
    /// Page `page` (from 1) of a folder, or of the messages matching
    /// `query` in `field`.
    pub async fn page(
        &self,
        mailbox: &MailboxRecord,
        page: usize,
        query: Option<(&str, Field)>,
    ) -> Result<Page, WebError> {
        let (mut uids, index) = match query.filter(|(q, _)| !q.trim().is_empty()) {
            Some((q, field)) => {
                let mut index = self.store.message_index(mailbox.id).await?;
                let hits = self.search(mailbox, &index, q.trim(), field).await?;
                index.retain(|m| hits.binary_search(&m.uid).is_ok());
                (index.iter().map(|m| m.uid).collect::<Vec<_>>(), Some(index))
            }
            // The UIDs alone come from the (mailbox, uid) index without
            // reading a row; only the page's rows are looked up below. The
            // whole message index would cost a row lookup per message.
            None => (self.store.selection(mailbox.id).await?.uids, None),
        };
        // Newest first: UIDs grow with arrival.
        uids.reverse();
        let size = self.config.page_size.max(1);
        let pages = uids.len().div_ceil(size).max(1);
        let page = page.clamp(1, pages);
        let slice: Vec<Uid> = uids.iter().skip((page - 1) * size).take(size).copied().collect();
        let mut metas = Vec::with_capacity(slice.len());
        for &uid in &slice {
            match &index {
                Some(index) => metas.extend(index.binary_search_by_key(&uid, |m| m.uid).ok().map(|i| index[i].clone())),
                // Gone since the UIDs were read: not listed.
                None => metas.extend(self.store.message(mailbox.id, uid).await?.map(|m| MessageMeta {
                    uid: m.uid,
                    modseq: m.modseq,
                    flags: m.flags,
                    keywords: m.keywords,
                    size: m.size,
                    internal_date: m.internal_date,
                    blob: m.blob,
                })),
            }
        }
        let mut sorted = slice;
        sorted.sort_unstable();
        let headers = self.store.headers(mailbox.id, &sorted).await?;
        let mut rows = Vec::with_capacity(metas.len());
        for meta in &metas {
            let header = headers.binary_search_by_key(&meta.uid, |(u, _)| *u).ok().map(|i| &headers[i].1);
            rows.push(row(meta, header.map(Vec::as_slice).unwrap_or_default()));
        }
        Ok(Page { rows, page, pages, total: uids.len() })
    }

    /// The UIDs (ascending) whose `field` contains `query`, ignoring case.
    async fn search(
        &self,
        mailbox: &MailboxRecord,
        index: &[MessageMeta],
        query: &str,
        field: Field,
    ) -> Result<Vec<Uid>, WebError> {
        let needle = query.to_lowercase();
        let mut hits = Vec::new();
        if field != Field::Body {
            let uids: Vec<Uid> = index.iter().map(|m| m.uid).collect();
            for (uid, header) in self.store.headers(mailbox.id, &uids).await? {
                if header_matches(&header, &needle, field) {
                    hits.push(uid);
                }
            }
        }
        if matches!(field, Field::Body | Field::All) {
            let rest: Vec<&MessageMeta> = index.iter().filter(|m| hits.binary_search(&m.uid).is_err()).collect();
            let blobs = rest.iter().map(|m| m.blob.clone()).collect();
            let needle = needle.clone();
            let found = self
                .store
                .scan_blobs(blobs, move |_, raw| raw.is_some_and(|raw| body_matches(raw.bytes(), &needle)))
                .await?;
            hits.extend(rest.iter().zip(found).filter(|(_, hit)| *hit).map(|(m, _)| m.uid));
            hits.sort_unstable();
        }
        Ok(hits)
    }
}

fn row(meta: &MessageMeta, header: &[u8]) -> Row {
    let parsed = MessageParser::new().parse_headers(header);
    let (mut from, mut from_address, mut to, mut subject, mut date, mut attachment) =
        (String::new(), String::new(), String::new(), String::new(), None, false);
    if let Some(m) = parsed.as_ref() {
        if let Some(a) = m.from().and_then(|f| f.first()) {
            from_address = a.address().unwrap_or_default().to_string();
            from = a.name().filter(|n| !n.trim().is_empty()).map_or_else(|| from_address.clone(), str::to_string);
        }
        to = m
            .to()
            .map(|t| t.iter().map(|a| a.name().or(a.address()).unwrap_or_default()).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        subject = m.subject().unwrap_or_default().to_string();
        date = m.date().map(|d| d.to_timestamp());
        attachment = m.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("multipart")
                && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("mixed"))
        });
    }
    let arrived = mailroom_types::time::unix_seconds(meta.internal_date);
    Row {
        uid: meta.uid.get(),
        from,
        from_address,
        to,
        subject,
        date: date.unwrap_or(arrived),
        size: meta.size,
        seen: meta.flags.contains(Flags::SEEN),
        flagged: meta.flags.contains(Flags::FLAGGED),
        answered: meta.flags.contains(Flags::ANSWERED),
        attachment,
    }
}

/// Whether the decoded header fields `field` names contain `needle`
/// (lower case).
fn header_matches(header: &[u8], needle: &str, field: Field) -> bool {
    let Some(m) = MessageParser::new().parse_headers(header) else { return false };
    let has = |s: Option<&str>| s.is_some_and(|s| s.to_lowercase().contains(needle));
    let addresses =
        |a: Option<&mail_parser::Address>| a.is_some_and(|a| a.iter().any(|a| has(a.name()) || has(a.address())));
    let subject = || has(m.subject());
    let from = || addresses(m.from());
    let to = || addresses(m.to()) || addresses(m.cc());
    match field {
        Field::Subject => subject(),
        Field::From => from(),
        Field::To => to(),
        Field::All => subject() || from() || to(),
        Field::Body => false,
    }
}

/// Whether a message's decoded text parts contain `needle` (lower case).
fn body_matches(raw: &[u8], needle: &str) -> bool {
    let Some(m) = MessageParser::new().parse(raw) else { return false };
    (0..m.text_body_count()).any(|i| m.body_text(i).is_some_and(|t| t.to_lowercase().contains(needle)))
        || (0..m.html_body_count()).any(|i| m.body_html(i).is_some_and(|t| t.to_lowercase().contains(needle)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_search_decodes_and_ignores_case() {
        let h = b"From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.test>\r\nTo: Bob <bob@example.test>\r\nCc: carol@example.test\r\nSubject: =?UTF-8?B?R3LDvMOfZQ==?= from Berlin\r\n\r\n";
        assert!(header_matches(h, "grüße", Field::Subject));
        assert!(header_matches(h, "jürgen", Field::From));
        assert!(!header_matches(h, "jürgen", Field::To));
        assert!(header_matches(h, "carol@", Field::To));
        assert!(header_matches(h, "berlin", Field::All));
        assert!(!header_matches(h, "berlin", Field::Body));
    }

    #[test]
    fn body_search_reads_decoded_text() {
        let m = b"Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9 au lait\r\n";
        assert!(body_matches(m, "café"));
        assert!(!body_matches(m, "tea"));
    }
}
