//! One message: its page (headers, text or a framed HTML body,
//! attachments, actions), and what never changes once stored, served with
//! validators for conditional GET: the rendered body, each part, the raw
//! message.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use mailroom_store::{MailboxRecord, MessageRecord};
use mailroom_types::Flags;
use maud::{Markup, html};
use serde::Deserialize;

use super::{Frame, PageError, csrf, date, encode_segment, frame, page, size};
use crate::cache::Immutable;
use crate::form::Form;
use crate::guard::User;
use crate::render::{self, Mailbox, MessageView};
use crate::{App, WebError};

/// The policy a message's HTML runs under, images blocked: no script, no
/// plugin, no form, no request anywhere but our own inline images; the
/// sandbox denies scripts and same-origin access even if a tag slipped
/// through the sanitiser.
const BODY_POLICY: &str = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; \
     frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox allow-popups allow-popups-to-escape-sandbox";
/// The same once the user asked for remote images.
const BODY_POLICY_IMAGES: &str = "default-src 'none'; img-src 'self' data: https: http:; style-src 'unsafe-inline'; \
     frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox allow-popups allow-popups-to-escape-sandbox";
/// What a downloaded part may do if a browser renders it anyway: nothing.
const PART_POLICY: &str = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox";

/// `?images=1`
#[derive(Deserialize, Default)]
pub(super) struct Images {
    #[serde(default)]
    images: Option<u8>,
}

pub(super) async fn view(
    State(app): State<Arc<App>>,
    user: User,
    Path((id, uid)): Path<(i64, u32)>,
    Query(q): Query<Images>,
) -> Result<Response, PageError> {
    let account = user.session.account;
    let (mailbox, message) = app.message(account, id, uid).await?;
    let raw = app.raw(&message).await?;
    let view = render::view(&raw);
    // Opening a message reads it, as a non-PEEK IMAP fetch does.
    if !message.flags.contains(Flags::SEEN) {
        app.set_flags(mailbox.id, &[message.uid], Flags::SEEN, true).await?;
    }
    let folders = app.folders(account).await?;
    let images = q.images == Some(1);
    let content = message_content(&user, &mailbox, &message, &view, &folders, images);
    let title = if view.subject.is_empty() { "(no subject)".to_string() } else { view.subject.clone() };
    Ok(page(frame(
        &app,
        Frame { title: &title, user: &user, folders: &folders, current: Some(id), notice: None },
        content,
    )))
}

fn people(list: &[Mailbox]) -> Markup {
    html! {
        @for (i, m) in list.iter().enumerate() {
            @if i > 0 { ", " }
            @match &m.name {
                Some(name) if !name.is_empty() => { (name) " <" (m.address) ">" },
                _ => { (m.address) },
            }
        }
    }
}

fn message_content(
    user: &User,
    mailbox: &MailboxRecord,
    message: &MessageRecord,
    view: &MessageView,
    folders: &[crate::mail::Folder],
    images: bool,
) -> Markup {
    let base = format!("/mail/{}/{}", mailbox.id.0, message.uid.get());
    let source = format!("{}:{}", mailbox.id.0, message.uid.get());
    let flagged = message.flags.contains(Flags::FLAGGED);
    html! {
        article #message {
            h1 { @if view.subject.is_empty() { "(no subject)" } @else { (view.subject) } }
            dl #headers {
                dt { "From" } dd { (people(&view.from)) }
                @if !view.to.is_empty() { dt { "To" } dd { (people(&view.to)) } }
                @if !view.cc.is_empty() { dt { "Cc" } dd { (people(&view.cc)) } }
                dt { "Date" } dd { (date(view.date.unwrap_or_else(|| mailroom_types::time::unix_seconds(message.internal_date)))) " UTC" }
            }
            div.actions {
                a.button href={ "/compose?reply=" (source) "&kind=reply" } accesskey="r" { "Reply" }
                a.button href={ "/compose?reply=" (source) "&kind=all" } { "Reply all" }
                a.button href={ "/compose?reply=" (source) "&kind=forward" } accesskey="f" { "Forward" }
                form.inline method="post" action=(base) {
                    (csrf(user))
                    button type="submit" name="op" value="unread" { "Mark unread" }
                    @if flagged { button type="submit" name="op" value="unflag" { "Unflag" } }
                    @else { button type="submit" name="op" value="flag" { "Flag" } }
                    (super::folder::delete_button(crate::mail::role(mailbox) == Some("trash")))
                    (super::folder::move_select(folders, mailbox.id.0))
                }
                a href={ (base) "/raw" } download { "Download .eml" }
            }
            @if view.has_html {
                @if view.remote_images && !images {
                    p.images { "Remote images are blocked to protect your privacy. " a href={ (base) "?images=1" } { "Show images" } }
                }
                iframe #body title="Message body" sandbox="allow-popups allow-popups-to-escape-sandbox"
                    src={ (base) "/body" @if images { "?images=1" } } {}
            } @else if let Some(text) = &view.text {
                pre #text.text { (text) }
            } @else {
                p.empty { "This message has no text." }
            }
            @if !view.attachments.is_empty() {
                section aria-labelledby="attachments-title" {
                    h2 #attachments-title { "Attachments" }
                    ul #attachments {
                        @for a in &view.attachments {
                            li {
                                a href={ (base) "/part/" (a.part) } download=(a.filename) { (a.filename) }
                                " " span.size { "(" (size(a.size)) ", " (a.content_type) ")" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The message actions' form.
#[derive(Deserialize)]
pub(super) struct Act {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    op: String,
    #[serde(default)]
    to: Option<i64>,
}

pub(super) async fn act(
    State(app): State<Arc<App>>,
    user: User,
    Path((id, uid)): Path<(i64, u32)>,
    Form(f): Form<Act>,
) -> Result<Response, PageError> {
    user.check_csrf(Some(&f.csrf))?;
    let done = app.apply(&user, id, &[uid.to_string()], &f.op, f.to).await?;
    let back = match done {
        // It left this folder: back to the list.
        "moved" | "deleted" => format!("/mail/{id}?done={done}"),
        _ if f.op == "unread" => format!("/mail/{id}?done={done}"),
        _ => format!("/mail/{id}/{uid}"),
    };
    Ok(Redirect::to(&back).into_response())
}

/// Serves one representation of a message that never changes: 304 when
/// the client's copy is current, else what `make` builds from the raw
/// bytes (`None`: no such part), with its validators.
async fn immutable(
    app: &App,
    user: &User,
    (id, uid): (i64, u32),
    variant: &str,
    headers: &HeaderMap,
    make: impl FnOnce(Vec<u8>) -> Option<Response>,
) -> Result<Response, PageError> {
    let (mailbox, message) = app.message(user.session.account, id, uid).await?;
    let validators = Immutable::new(&mailbox, &message, variant);
    if validators.is_fresh(headers) {
        return Ok(validators.not_modified());
    }
    let raw = app.raw(&message).await?;
    let mut r = make(raw).ok_or(WebError::NotFound)?;
    validators.apply(r.headers_mut());
    Ok(r)
}

/// The message's body as a document of its own, for the page's frame.
pub(super) async fn body(
    State(app): State<Arc<App>>,
    user: User,
    Path((id, uid)): Path<(i64, u32)>,
    Query(q): Query<Images>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let images = q.images == Some(1);
    let variant = if images { "body+images" } else { "body" };
    immutable(&app, &user, (id, uid), variant, &headers, |raw| {
        let document = render::body_document(&raw, images, &|cid| data_url(&raw, cid));
        let mut r = document.into_response();
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        let policy = if images { BODY_POLICY_IMAGES } else { BODY_POLICY };
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
        Some(r)
    })
    .await
}

/// An inline image as a `data:` URL inside the body document: the
/// sandboxed frame has no origin, so a browser would send its requests
/// without the SameSite=Strict session cookie.
fn data_url(raw: &[u8], cid: &str) -> String {
    use base64::Engine;
    match render::part_by_cid(raw, cid) {
        Some(p) => {
            let kind = p.content_type.split(';').next().unwrap_or("image/png").trim();
            format!("data:{kind};base64,{}", base64::engine::general_purpose::STANDARD.encode(&p.bytes))
        }
        None => String::new(),
    }
}

/// An attachment, downloaded as the file it was.
pub(super) async fn part(
    State(app): State<Arc<App>>,
    user: User,
    Path((id, uid, part)): Path<(i64, u32, String)>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    immutable(&app, &user, (id, uid), &format!("part-{part}"), &headers, |raw| {
        render::part(&raw, &part).map(|p| file_response(p, true))
    })
    .await
}

/// The message as stored, for saving as a `.eml` file.
pub(super) async fn raw(
    State(app): State<Arc<App>>,
    user: User,
    Path((id, uid)): Path<(i64, u32)>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    immutable(&app, &user, (id, uid), "raw", &headers, |bytes| {
        let filename = format!("message-{uid}.eml");
        Some(file_response(render::Part { content_type: "message/rfc822".into(), filename, bytes }, true))
    })
    .await
}

fn file_response(file: render::Part, attachment: bool) -> Response {
    let mut r = file.bytes.into_response();
    let h = r.headers_mut();
    let kind =
        HeaderValue::from_str(&file.content_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, kind);
    if let Ok(v) = HeaderValue::from_str(&disposition(if attachment { "attachment" } else { "inline" }, &file.filename))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PART_POLICY));
    r
}

/// `Content-Disposition` with the name twice (RFC 6266 §4.3): an ASCII
/// fallback, and the exact name in UTF-8 (RFC 8187).
fn disposition(kind: &str, filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{}", encode_segment(filename))
}

#[cfg(test)]
mod tests {
    #[test]
    fn inline_images_travel_inside_the_body_document() {
        let raw = b"From: a@example.test\r\nSubject: logo\r\nMIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/html\r\n\r\n<p>Hi <img src=\"cid:logo@x\"></p>\r\n\
--b\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b--\r\n";
        let doc = crate::render::body_document(raw, false, &|cid| super::data_url(raw, cid));
        assert!(doc.contains("src=\"data:image/png;base64,iVBORw0KGgo=\""), "{doc}");
        assert_eq!(super::data_url(raw, "missing@x"), "");
    }

    #[test]
    fn dispositions_name_the_file_twice() {
        assert_eq!(
            super::disposition("attachment", "résumé \"final\".pdf"),
            "attachment; filename=\"r_sum_ _final_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf"
        );
    }
}
