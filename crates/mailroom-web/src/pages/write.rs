//! The composer: new messages, replies, forwards and resumed drafts, sent
//! or saved with one form (multipart, so files can be attached; its size
//! is bounded by `web.max_upload` before any of it is read).

use std::sync::Arc;

use axum::extract::{Multipart, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Frame, Notice, PageError, csrf, frame, page, size, unprocessable};
use crate::compose::{self, ReplyKind, Upload};
use crate::guard::User;
use crate::render;
use crate::sending::Outgoing;
use crate::{App, WebError};

/// `?reply=ID:UID&kind=reply|all|forward` or `?draft=ID:UID`.
#[derive(Deserialize, Default)]
pub(super) struct Start {
    #[serde(default)]
    reply: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    draft: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

/// A carried attachment: the part of the source message, shown with a box
/// to keep or drop it.
struct Carried {
    part: String,
    filename: String,
    size: u64,
}

/// What the composer shows: the message so far and the attachments it
/// carries from a stored message.
#[derive(Default)]
struct Composer {
    out: Outgoing,
    carried: Vec<Carried>,
}

pub(super) async fn form(
    State(app): State<Arc<App>>,
    user: User,
    Query(q): Query<Start>,
) -> Result<Response, PageError> {
    let account = user.session.account;
    let mut s = Composer::default();
    if let Some((id, uid)) = q.draft.as_deref().and_then(pair) {
        let (_, message) = app.message(account, id, uid).await?;
        let raw = app.raw(&message).await?;
        s.out.draft = compose::resume(&raw).0;
        s.carried = carried(&raw);
        s.out.carried = Some((id, uid, s.carried.iter().map(|c| c.part.clone()).collect()));
        s.out.replaces = Some((id, uid));
    } else if let Some((id, uid)) = q.reply.as_deref().and_then(pair) {
        let (_, message) = app.message(account, id, uid).await?;
        let raw = app.raw(&message).await?;
        let kind = match q.kind.as_deref() {
            Some("all") => ReplyKind::ReplyAll,
            Some("forward") => ReplyKind::Forward,
            _ => ReplyKind::Reply,
        };
        let forward = matches!(kind, ReplyKind::Forward);
        s.out.draft = compose::prepare(&raw, kind, std::slice::from_ref(&user.session.address)).0;
        if forward {
            s.carried = carried(&raw);
            s.out.carried = Some((id, uid, s.carried.iter().map(|c| c.part.clone()).collect()));
        } else {
            s.out.answers = Some((id, uid));
        }
    }
    let notice = (q.done.as_deref() == Some("saved")).then(|| Notice::Done("Draft saved.".into()));
    composer(&app, &user, &s, notice).await.map(page)
}

fn carried(raw: &[u8]) -> Vec<Carried> {
    render::view(raw)
        .attachments
        .into_iter()
        .map(|a| Carried { part: a.part, filename: a.filename, size: a.size })
        .collect()
}

/// `"7:42"` as folder 7, UID 42.
fn pair(s: &str) -> Option<(i64, u32)> {
    let (a, b) = s.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

async fn composer(app: &App, user: &User, s: &Composer, notice: Option<Notice>) -> Result<Markup, PageError> {
    let folders = app.folders(user.session.account).await?;
    let d = &s.out.draft;
    let pair_value = |p: Option<(i64, u32)>| p.map(|(a, b)| format!("{a}:{b}")).unwrap_or_default();
    let source = s.out.carried.as_ref().map(|(a, b, _)| format!("{a}:{b}")).unwrap_or_default();
    let content = html! {
        h1 { "Compose" }
        form #compose.stack method="post" action="/compose" enctype="multipart/form-data" {
            (csrf(user))
            input type="hidden" name="in_reply_to" value=(d.in_reply_to.clone().unwrap_or_default());
            input type="hidden" name="references" value=(d.references.join(" "));
            input type="hidden" name="source" value=(source);
            input type="hidden" name="replaces" value=(pair_value(s.out.replaces));
            input type="hidden" name="answers" value=(pair_value(s.out.answers));
            label for="to" { "To" }
            input #to type="text" name="to" value=(d.to) autocomplete="email";
            label for="cc" { "Cc" }
            input #cc type="text" name="cc" value=(d.cc);
            label for="bcc" { "Bcc" }
            input #bcc type="text" name="bcc" value=(d.bcc);
            label for="subject" { "Subject" }
            input #subject type="text" name="subject" value=(d.subject);
            label for="body" { "Message" }
            textarea #body name="body" rows="16" { (d.body) }
            @if !s.carried.is_empty() {
                fieldset #carried {
                    legend { "Attachments" }
                    @for c in &s.carried {
                        label.check {
                            input type="checkbox" name="keep" value=(c.part) checked;
                            " " (c.filename) " (" (size(c.size)) ")"
                        }
                    }
                }
            }
            label for="attachment" { "Attach files (up to " (size(app.config.max_upload.0)) " in all)" }
            input #attachment type="file" name="attachment" multiple;
            div.actions {
                button.primary type="submit" name="op" value="send" { "Send" }
                button type="submit" name="op" value="save" { "Save draft" }
            }
        }
    };
    Ok(frame(app, Frame { title: "Compose", user, folders: &folders, current: None, notice }, content))
}

pub(super) async fn submit(
    State(app): State<Arc<App>>,
    user: User,
    mut multipart: Multipart,
) -> Result<Response, PageError> {
    let mut s = Composer::default();
    let (mut token, mut op, mut source, mut keep) = (String::new(), String::new(), None, Vec::new());
    while let Some(field) = multipart.next_field().await.map_err(|e| WebError::Invalid(format!("bad upload: {e}")))? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "attachment" {
            let filename = field.file_name().unwrap_or_default().to_string();
            let content_type = field.content_type().unwrap_or("application/octet-stream").to_string();
            let bytes = field.bytes().await.map_err(|e| WebError::Invalid(format!("bad upload: {e}")))?;
            if !filename.is_empty() {
                s.out.uploads.push(Upload { filename, content_type, bytes: bytes.to_vec() });
            }
            continue;
        }
        let value = field.text().await.map_err(|e| WebError::Invalid(format!("bad form: {e}")))?;
        let d = &mut s.out.draft;
        match name.as_str() {
            "csrf" => token = value,
            "op" => op = value,
            "to" => d.to = value,
            "cc" => d.cc = value,
            "bcc" => d.bcc = value,
            "subject" => d.subject = value,
            "body" => d.body = value.replace("\r\n", "\n"),
            "in_reply_to" => d.in_reply_to = Some(value).filter(|v| !v.is_empty()),
            "references" => d.references = value.split_whitespace().map(str::to_string).collect(),
            "source" => source = pair(&value),
            "replaces" => s.out.replaces = pair(&value),
            "answers" => s.out.answers = pair(&value),
            "keep" => keep.push(value),
            _ => {}
        }
    }
    user.check_csrf(Some(&token))?;
    s.out.carried = source.map(|(id, uid)| (id, uid, keep.clone()));
    let outcome = match op.as_str() {
        "save" => {
            app.save_draft(&user, s.out.clone()).await.map(|(id, uid)| format!("/compose?draft={id}:{uid}&done=saved"))
        }
        _ => app.send(&user, s.out.clone()).await.map(|_| "/?done=sent".to_string()),
    };
    match outcome {
        Ok(to) => Ok(Redirect::to(&redirect_target(&app, &user, &to).await).into_response()),
        Err(e @ (WebError::Invalid(_) | WebError::RateLimited)) => {
            // Show the form again with what was typed; files must be
            // chosen again (a browser never refills a file input).
            if let Some((id, uid, _)) = s.out.carried
                && let Ok((_, m)) = app.message(user.session.account, id, uid).await
                && let Ok(raw) = app.raw(&m).await
            {
                s.carried = carried(&raw).into_iter().filter(|c| keep.contains(&c.part)).collect();
            }
            let mut text = e.to_string();
            if !s.out.uploads.is_empty() {
                text.push_str(" (Please attach your files again.)");
            }
            Ok(unprocessable(composer(&app, &user, &s, Some(Notice::Error(text))).await?))
        }
        Err(e) => Err(e.into()),
    }
}

/// Where to go after sending: the INBOX with the notice.
async fn redirect_target(app: &App, user: &User, to: &str) -> String {
    if let Some(done) = to.strip_prefix("/?")
        && let Ok(folders) = app.folders(user.session.account).await
        && let Some(inbox) = folders.iter().find(|f| f.role == Some("inbox"))
    {
        return format!("/mail/{}?{done}", inbox.id);
    }
    to.to_string()
}
