//! What the browser shows of a stored message: its headers decoded, its
//! main text, its attachments, and its body as a sanitised HTML document.
//!
//! Everything here is pure and synchronous: raw RFC 5322 bytes in, values
//! out. MIME parsing and decoding (RFC 2045 transfer encodings, RFC 2047
//! encoded words, RFC 2231 parameters, charsets) is mail-parser's; this
//! module decides what to show and how to make it safe.
//!
//! The HTML sanitiser (`sanitize`) is a security boundary. The page serves
//! the body document in a sandboxed `<iframe>` under a strict
//! Content-Security-Policy, but that is defence in depth: the sanitiser must
//! be correct on its own. It works from an allow-list of tags, attributes,
//! URL schemes and CSS properties; anything not listed is removed.
//!
//! Parts are named by their IMAP section number (RFC 3501 §6.4.5), so a
//! part id in a webmail URL means the same as in `BODY[1.2]`.
//!
//! Nothing here panics on malformed input: a message that does not parse
//! gives an empty view and an empty document.

mod css;
mod mime;
mod sanitize;
#[cfg(test)]
mod tests;
mod text;

use std::borrow::Cow;
use std::collections::HashMap;

use mail_parser::{Address, HeaderValue, Message, MessagePart, MimeHeaders, PartType};
use serde::Serialize;

use mime::{Section, sections};

/// What the message page shows. Everything is decoded to UTF-8 and safe to
/// put into a template that escapes text; the HTML body is not here but in
/// `body_document`, because it needs its own sandboxed document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MessageView {
    /// The Subject, decoded (RFC 2047); "" if there is none.
    pub subject: String,
    /// The From mailboxes; group syntax is flattened.
    pub from: Vec<Mailbox>,
    /// The To mailboxes.
    pub to: Vec<Mailbox>,
    /// The Cc mailboxes.
    pub cc: Vec<Mailbox>,
    /// The Reply-To mailboxes; a reply goes here when it is set.
    pub reply_to: Vec<Mailbox>,
    /// Unix seconds of the Date header, if it parses to a valid date.
    pub date: Option<i64>,
    /// The Message-ID without `<>`, for threading replies.
    pub message_id: Option<String>,
    /// The Message-IDs from References, without `<>`.
    pub references: Vec<String>,
    /// The Message-IDs from In-Reply-To, without `<>`.
    pub in_reply_to: Vec<String>,
    /// The main text/plain body, decoded to UTF-8. `None` when the message
    /// has no (non-empty) plain text body, e.g. when it only has HTML.
    pub text: Option<String>,
    /// Whether a text/html body exists; the page then shows
    /// `body_document` in an iframe instead of `text`.
    pub has_html: bool,
    /// Whether the HTML refers to remote images (http, https or
    /// protocol-relative) or CSS `url()`s, which `body_document` blocks
    /// unless asked; the page offers to load them.
    pub remote_images: bool,
    /// The parts offered for download, in message order; inline `cid:`
    /// images are listed too.
    pub attachments: Vec<Attachment>,
}

/// One mailbox of an address header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Mailbox {
    /// The display name, decoded (RFC 2047).
    pub name: Option<String>,
    /// The address, `local@domain`.
    pub address: String,
}

/// A part the page offers for download.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Attachment {
    /// The IMAP section number ("2", "1.3"): stable for a stored message
    /// and URL-safe (digits and dots), so it goes into download links as is.
    pub part: String,
    /// The decoded filename (RFC 2231 / RFC 2047), sanitised so that it is
    /// safe in a Content-Disposition header and a file system: no path
    /// separators, no control characters. "attachment-<part>" if there is
    /// none; "<subject>.eml" for a forwarded message (message/rfc822).
    pub filename: String,
    /// Lower-case "type/subtype".
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: u64,
    /// The Content-ID (without `<>`) when the HTML body shows this part
    /// through a `cid:` reference.
    pub inline_cid: Option<String>,
}

/// A part to download.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Part {
    /// The content type; text types carry `charset=utf-8`, because text
    /// is decoded to UTF-8.
    pub content_type: String,
    /// The sanitised filename, as in `Attachment::filename`.
    pub filename: String,
    /// The decoded bytes (transfer encoding removed).
    pub bytes: Vec<u8>,
}

/// Decodes what the message page shows. Never fails: a message that does
/// not parse gives an empty view.
pub fn view(raw: &[u8]) -> MessageView {
    let Some(msg) = mime::parse(raw) else {
        return MessageView::default();
    };
    let cids = cid_urls(&msg, &|_| String::new());
    let report = html_bodies(&msg)
        .map(|html| sanitize::clean(html, false, &cids).1)
        .fold(sanitize::Report::default(), sanitize::Report::merge);
    MessageView {
        subject: msg.subject().unwrap_or_default().to_owned(),
        from: mailboxes(msg.from()),
        to: mailboxes(msg.to()),
        cc: mailboxes(msg.cc()),
        reply_to: mailboxes(msg.reply_to()),
        date: msg.date().filter(|d| d.is_valid()).map(|d| d.to_timestamp()),
        message_id: msg.message_id().map(strip_angle),
        references: ids(msg.references()),
        in_reply_to: ids(msg.in_reply_to()),
        text: main_text(&msg),
        has_html: html_bodies(&msg).next().is_some(),
        remote_images: report.remote_images,
        attachments: attachments(&msg, &report.cids),
    }
}

/// The part with IMAP section number `part`, decoded, for download.
/// Sections inside a forwarded message ("2.1") are found too.
pub fn part(raw: &[u8], part: &str) -> Option<Part> {
    let msg = mime::parse(raw)?;
    let found = mime::find(&msg, part)?;
    Some(download(&found))
}

/// The part whose Content-ID is `cid` (for inline `cid:` images), only if
/// its type is image/*: the cid URL is reachable from mail HTML, so it must
/// not serve anything a browser could run.
pub fn part_by_cid(raw: &[u8], cid: &str) -> Option<Part> {
    let msg = mime::parse(raw)?;
    let cid = strip_angle(cid);
    sections(&msg)
        .into_iter()
        .find(|s| is_image(s.part) && content_id(s.part).is_some_and(|c| c.eq_ignore_ascii_case(&cid)))
        .map(|s| download(&s))
}

/// A complete, sanitised HTML document for the message body, shown inside
/// a sandboxed `<iframe>`.
///
/// `cid_url(cid)` turns a `cid:` reference into the URL the page serves
/// that image from. With `allow_remote_images` false every remote image
/// source is removed, so opening a message tells no tracker that it was
/// read. A message without HTML gets its text body, escaped, with http(s)
/// URLs as links.
///
/// The page serves this with a Content-Security-Policy that forbids
/// scripts and remote loads; that is a second wall, not the first: the
/// document is safe without it.
pub fn body_document(raw: &[u8], allow_remote_images: bool, cid_url: &dyn Fn(&str) -> String) -> String {
    let body = mime::parse(raw).map(|msg| body_html(&msg, allow_remote_images, cid_url)).unwrap_or_default();
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><base target=\"_blank\">\
         <style>body{{margin:8px;overflow-wrap:break-word;font:15px/1.45 system-ui,sans-serif}}</style></head>\
         <body>{body}</body></html>"
    )
}

/// The inner HTML of the body document: the HTML bodies sanitised (with
/// any plain text parts interleaved with them shown as text), or else the
/// text body.
fn body_html(msg: &Message<'_>, allow_remote: bool, cid_url: &dyn Fn(&str) -> String) -> String {
    if html_bodies(msg).next().is_none() {
        return main_text(msg).map(|t| text::to_html(&t)).unwrap_or_default();
    }
    let cids = cid_urls(msg, cid_url);
    let mut out = String::new();
    for part in body_parts(msg, &msg.html_body) {
        match &part.body {
            PartType::Html(html) => out.push_str(&sanitize::clean(html, allow_remote, &cids).0),
            PartType::Text(t) if !t.trim().is_empty() => out.push_str(&text::to_html(t)),
            _ => {}
        }
    }
    out
}

fn body_parts<'a, 'x>(msg: &'a Message<'x>, ids: &'a [u32]) -> impl Iterator<Item = &'a MessagePart<'x>> + 'a {
    ids.iter().filter_map(|&id| msg.parts.get(id as usize))
}

fn html_bodies<'a>(msg: &'a Message<'_>) -> impl Iterator<Item = &'a str> + 'a {
    body_parts(msg, &msg.html_body).filter_map(|p| match &p.body {
        PartType::Html(html) => Some(html.as_ref()),
        _ => None,
    })
}

/// The plain text bodies joined: mail-parser also lists HTML and inline
/// images among the text bodies (for display in order), which the page
/// shows elsewhere. A multipart whose boundary never appears is read as
/// text, which is what it is to a reader too.
fn main_text(msg: &Message<'_>) -> Option<String> {
    let texts: Vec<Cow<'_, str>> = sections(msg)
        .into_iter()
        .filter_map(|s| match &s.part.body {
            PartType::Text(t) if msg.text_body.contains(&s.id) => Some(Cow::Borrowed(t.as_ref())),
            PartType::Text(t) if mime::is_broken_multipart(s.part) => Some(Cow::Borrowed(t.as_ref())),
            PartType::Binary(b) if mime::is_broken_multipart(s.part) => Some(String::from_utf8_lossy(b)),
            _ => None,
        })
        .collect();
    let text = texts.join("\n");
    (!text.trim().is_empty()).then_some(text)
}

/// The attachments mail-parser found in this message (not inside a
/// forwarded one), in section order.
fn attachments(msg: &Message<'_>, referenced_cids: &[String]) -> Vec<Attachment> {
    sections(msg)
        .into_iter()
        .filter(|s| msg.attachments.contains(&s.id) && !mime::is_broken_multipart(s.part))
        .map(|s| {
            let inline_cid = content_id(s.part)
                .filter(|c| referenced_cids.iter().any(|r| r.eq_ignore_ascii_case(c)))
                .map(str::to_owned);
            Attachment {
                filename: mime::filename(&s),
                content_type: mime::content_type(s.part),
                size: mime::decoded(&s).len() as u64,
                inline_cid,
                part: s.number,
            }
        })
        .collect()
}

fn download(section: &Section<'_, '_>) -> Part {
    let content_type = mime::content_type(section.part);
    let content_type = match section.part.body {
        PartType::Text(_) | PartType::Html(_) => format!("{content_type}; charset=utf-8"),
        _ => content_type,
    };
    Part { content_type, filename: mime::filename(section), bytes: mime::decoded(section).into_owned() }
}

/// Content-ID (lower-cased) to URL, for every image part with a
/// Content-ID: the only targets a `cid:` reference may resolve to.
fn cid_urls(msg: &Message<'_>, cid_url: &dyn Fn(&str) -> String) -> HashMap<String, String> {
    sections(msg)
        .into_iter()
        .filter(|s| is_image(s.part))
        .filter_map(|s| content_id(s.part))
        .map(|cid| (cid.to_ascii_lowercase(), cid_url(cid)))
        .collect()
}

fn content_id<'a>(part: &'a MessagePart<'_>) -> Option<&'a str> {
    part.content_id().map(|c| c.trim().trim_start_matches('<').trim_end_matches('>')).filter(|c| !c.is_empty())
}

fn is_image(part: &MessagePart<'_>) -> bool {
    mime::content_type(part).starts_with("image/")
}

fn mailboxes(addr: Option<&Address<'_>>) -> Vec<Mailbox> {
    let Some(addr) = addr else {
        return Vec::new();
    };
    addr.iter()
        .filter_map(|a| {
            Some(Mailbox {
                name: a.name().map(str::to_owned).filter(|n| !n.is_empty()),
                address: a.address()?.to_owned(),
            })
        })
        .collect()
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => vec![strip_angle(id)],
        HeaderValue::TextList(ids) => ids.iter().map(|id| strip_angle(id)).collect(),
        _ => Vec::new(),
    }
}

fn strip_angle(id: &str) -> String {
    id.trim().trim_start_matches('<').trim_end_matches('>').to_owned()
}
