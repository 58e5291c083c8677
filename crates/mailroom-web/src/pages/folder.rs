//! A folder's message list with search and bulk actions, and the folder
//! management page.

use std::sync::Arc;

use crate::form::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use mailroom_store::MailboxRecord;
use mailroom_types::Flags;
use maud::{Markup, html};
use serde::Deserialize;

use super::{Frame, Notice, PageError, csrf, date, frame, page, size};
use crate::guard::User;
use crate::listing::{Field, ListQuery, Page};
use crate::mail::{Folder, role, uids};
use crate::{App, WebError};

/// `?done=`: the outcome a redirect announces.
#[derive(Deserialize, Default)]
pub(super) struct Done {
    #[serde(default)]
    done: Option<String>,
}

pub(super) async fn list(
    State(app): State<Arc<App>>,
    user: User,
    Path(id): Path<i64>,
    Query(q): Query<ListQuery>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let account = user.session.account;
    let mailbox = app.mailbox(account, id).await?;
    let field = q.field.unwrap_or_default();
    let listed = app.page(&mailbox, q.page.unwrap_or(1), q.search()).await?;
    let folders = app.folders(account).await?;
    let notice = done.done.as_deref().and_then(done_notice).map(|t| Notice::Done(t.to_string()));
    let content = list_content(&user, &mailbox, &folders, &listed, &q, field);
    let title = mailbox.name.clone();
    Ok(page(frame(&app, Frame { title: &title, user: &user, folders: &folders, current: Some(id), notice }, content)))
}

/// The fixed outcomes a redirect may announce (never text from the URL).
fn done_notice(key: &str) -> Option<&'static str> {
    Some(match key {
        "sent" => "Message sent.",
        "saved" => "Draft saved.",
        "moved" => "Moved.",
        "deleted" => "Deleted.",
        "emptied" => "Folder emptied.",
        "marked" => "Done.",
        _ => return None,
    })
}

fn list_content(
    user: &User,
    mailbox: &MailboxRecord,
    folders: &[Folder],
    listed: &Page,
    q: &ListQuery,
    field: Field,
) -> Markup {
    let r = role(mailbox);
    let outgoing = matches!(r, Some("sent" | "drafts"));
    let base = format!("/mail/{}", mailbox.id.0);
    let query = q.q.clone().unwrap_or_default();
    let link = |page: usize| {
        let mut url = format!("{base}?page={page}");
        if !query.is_empty() {
            url.push_str(&format!("&q={}&in={}", super::encode_segment(&query), field_name(field)));
        }
        url
    };
    html! {
        div.folder-head {
            h1 { (mailbox.name) }
            form.search role="search" method="get" action=(base) {
                label.visually-hidden for="q" { "Search" }
                input #q type="search" name="q" value=(query) placeholder="Search";
                label.visually-hidden for="in" { "Search in" }
                select #in name="in" {
                    @for (f, label) in [(Field::All, "Everywhere"), (Field::Subject, "Subject"), (Field::From, "From"), (Field::To, "To"), (Field::Body, "Body")] {
                        option value=(field_name(f)) selected[f == field] { (label) }
                    }
                }
                button type="submit" { "Search" }
            }
            @if matches!(r, Some("trash" | "junk")) && listed.total > 0 {
                form.inline method="post" action={ (base) "/empty" } {
                    (csrf(user))
                    button.danger type="submit" data-confirm="Delete every message in this folder for good?" { "Empty " (mailbox.name) }
                }
            }
        }
        form #list method="post" action=(base) {
            (csrf(user))
            div.actions {
                button type="submit" name="op" value="read" { "Mark read" }
                button type="submit" name="op" value="unread" { "Mark unread" }
                button type="submit" name="op" value="flag" { "Flag" }
                button type="submit" name="op" value="unflag" { "Unflag" }
                (delete_button(r == Some("trash")))
                (move_select(folders, mailbox.id.0))
            }
            // One element whether or not there are rows, so a live update
            // can swap an empty folder for a full one and back.
            div #rows {
                @if listed.rows.is_empty() {
                    p.empty { @if query.is_empty() { "No messages." } @else { "No message matches." } }
                } @else {
                    table #messages {
                        caption.visually-hidden { "Messages, newest first" }
                        thead { tr {
                            th scope="col" { input #all type="checkbox" aria-label="Select all"; }
                            th scope="col" { span.visually-hidden { "Marks" } }
                            th scope="col" { @if outgoing { "To" } @else { "From" } }
                            th scope="col" { "Subject" }
                            th scope="col" { "Date" }
                            th scope="col" { "Size" }
                        } }
                        tbody {
                            @for row in &listed.rows {
                                @let href = if r == Some("drafts") { format!("/compose?draft={}:{}", mailbox.id.0, row.uid) } else { format!("{base}/{}", row.uid) };
                                tr.unread[!row.seen] data-uid=(row.uid) {
                                    td { input type="checkbox" name="uid" value=(row.uid) aria-label={ "Select " (row.subject) }; }
                                    td.marks {
                                        @if row.flagged { span.flag title="Flagged" aria-label="Flagged" { "★" } }
                                        @if row.answered { span title="Answered" aria-label="Answered" { "↩" } }
                                        @if row.attachment { span.clip title="Has attachments" aria-label="Has attachments" { "📎" } }
                                        @if !row.seen { span.visually-hidden { "Unread" } }
                                    }
                                    td.from { @if outgoing { (row.to) } @else { span title=(row.from_address) { (row.from) } } }
                                    td.subject { a href=(href) { @if row.subject.is_empty() { "(no subject)" } @else { (row.subject) } } }
                                    td.date { (date(row.date)) }
                                    td.size { (size(row.size)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        nav.pages aria-label="Pages" {
            @if listed.page > 1 { a rel="prev" href=(link(listed.page - 1)) { "← Newer" } }
            span { "Page " (listed.page) " of " (listed.pages) " (" (listed.total) " messages)" }
            @if listed.page < listed.pages { a rel="next" href=(link(listed.page + 1)) { "Older →" } }
        }
    }
}

fn field_name(f: Field) -> &'static str {
    match f {
        Field::All => "all",
        Field::Subject => "subject",
        Field::From => "from",
        Field::To => "to",
        Field::Body => "body",
    }
}

/// The Delete button; in Trash, where deleting is for good, it asks first
/// (when script runs) and says so.
pub(super) fn delete_button(for_good: bool) -> Markup {
    html! {
        @if for_good {
            button.danger type="submit" name="op" value="delete" data-confirm="Delete for good? This cannot be undone." { "Delete for good" }
        } @else {
            button type="submit" name="op" value="delete" { "Delete" }
        }
    }
}

/// The "move to" control: a folder list and its button.
pub(super) fn move_select(folders: &[Folder], current: i64) -> Markup {
    html! {
        span.move {
            label for="to" { "Move to" }
            select #to name="to" {
                @for f in folders.iter().filter(|f| f.id != current) {
                    option value=(f.id) { (f.name) }
                }
            }
            button type="submit" name="op" value="move" { "Move" }
        }
    }
}

/// A bulk action's form.
#[derive(Deserialize)]
pub(super) struct Bulk {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    op: String,
    #[serde(default)]
    uid: Vec<String>,
    #[serde(default)]
    to: Option<i64>,
}

pub(super) async fn act(
    State(app): State<Arc<App>>,
    user: User,
    Path(id): Path<i64>,
    Form(f): Form<Bulk>,
) -> Result<Response, PageError> {
    user.check_csrf(Some(&f.csrf))?;
    let done = app.apply(&user, id, &f.uid, &f.op, f.to).await?;
    Ok(Redirect::to(&format!("/mail/{id}?done={done}")).into_response())
}

impl App {
    /// Applies `op` (read, unread, flag, unflag, delete, move) to messages
    /// of the user's folder `id`; returns the outcome's key.
    pub async fn apply(
        &self,
        user: &User,
        id: i64,
        uid_values: &[String],
        op: &str,
        to: Option<i64>,
    ) -> Result<&'static str, WebError> {
        let account = user.session.account;
        let mailbox = self.mailbox(account, id).await?;
        let uids = uids(uid_values)?;
        match op {
            "read" | "unread" => self.set_flags(mailbox.id, &uids, Flags::SEEN, op == "read").await?,
            "flag" | "unflag" => self.set_flags(mailbox.id, &uids, Flags::FLAGGED, op == "flag").await?,
            "delete" => {
                self.delete(account, &mailbox, &uids).await?;
                return Ok("deleted");
            }
            "move" => {
                let to = to.ok_or_else(|| WebError::Invalid("choose a folder to move to".into()))?;
                self.move_to(account, mailbox.id, &uids, to).await?;
                return Ok("moved");
            }
            other => return Err(WebError::Invalid(format!("unknown action {other:?}"))),
        }
        Ok("marked")
    }
}

pub(super) async fn empty(
    State(app): State<Arc<App>>,
    user: User,
    Path(id): Path<i64>,
    Form(f): Form<super::login::CsrfOnly>,
) -> Result<Response, PageError> {
    user.check_csrf(Some(f.token()))?;
    let mailbox = app.mailbox(user.session.account, id).await?;
    app.empty(&mailbox).await?;
    Ok(Redirect::to(&format!("/mail/{id}?done=emptied")).into_response())
}

pub(super) async fn manage(State(app): State<Arc<App>>, user: User) -> Result<Response, PageError> {
    manage_page(&app, &user, None).await
}

async fn manage_page(app: &App, user: &User, notice: Option<Notice>) -> Result<Response, PageError> {
    let folders = app.folders(user.session.account).await?;
    let content = html! {
        h1 { "Folders" }
        form.stack method="post" action="/folders" {
            (csrf(user))
            input type="hidden" name="op" value="create";
            label for="new-name" { "New folder (use / for a subfolder)" }
            input #new-name type="text" name="name" required;
            button type="submit" { "Create" }
        }
        table.folders {
            thead { tr { th scope="col" { "Folder" } th scope="col" { "Messages" } th scope="col" { "Unread" } th scope="col" { "Change" } } }
            tbody {
                @for f in &folders {
                    tr {
                        td { a href={ "/mail/" (f.id) } { (f.name) } }
                        td { (f.total) }
                        td { (f.unread) }
                        td {
                            @if f.role.is_none() {
                                form.inline method="post" action="/folders" {
                                    (csrf(user))
                                    input type="hidden" name="id" value=(f.id);
                                    label.visually-hidden for={ "rename-" (f.id) } { "New name for " (f.name) }
                                    input id={ "rename-" (f.id) } type="text" name="name" value=(f.name) required;
                                    button type="submit" name="op" value="rename" { "Rename" }
                                    button.danger type="submit" name="op" value="delete" data-confirm="Delete this folder and its messages?" { "Delete" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let r = page(frame(app, Frame { title: "Folders", user, folders: &folders, current: None, notice }, content));
    Ok(r)
}

/// The folder management form.
#[derive(Deserialize)]
pub(super) struct FolderChange {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    op: String,
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    name: String,
}

pub(super) async fn change(
    State(app): State<Arc<App>>,
    user: User,
    Form(f): Form<FolderChange>,
) -> Result<Response, PageError> {
    user.check_csrf(Some(&f.csrf))?;
    let account = user.session.account;
    let id = || f.id.ok_or_else(|| WebError::Invalid("no folder chosen".into()));
    let outcome = match f.op.as_str() {
        "create" => app.create_folder(account, &f.name).await.map(|m| format!("Created {}.", m.name)),
        "rename" => match id() {
            Ok(id) => app.rename_folder(account, id, &f.name).await.map(|()| "Renamed.".to_string()),
            Err(e) => Err(e),
        },
        "delete" => match id() {
            Ok(id) => app.delete_folder(account, id).await.map(|()| "Deleted.".to_string()),
            Err(e) => Err(e),
        },
        other => Err(WebError::Invalid(format!("unknown action {other:?}"))),
    };
    match outcome {
        Ok(text) => manage_page(&app, &user, Some(Notice::Done(text))).await,
        Err(WebError::Invalid(text)) => {
            let mut r = manage_page(&app, &user, Some(Notice::Error(text))).await?;
            *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}
