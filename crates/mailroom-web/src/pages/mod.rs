//! The HTML pages: server-rendered, usable without JavaScript, readable at
//! phone width, with labels on every control. Each page module holds its
//! routes' handlers and templates (maud escapes everything it is given).

mod folder;
mod login;
mod read;
mod write;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use tracing::warn;

use crate::guard::User;
use crate::mail::Folder;
use crate::{App, WebError};

/// Every page's route.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/mail/{id}", get(folder::list).post(folder::act))
        .route("/mail/{id}/empty", post(folder::empty))
        .route("/folders", get(folder::manage).post(folder::change))
        .route("/mail/{id}/{uid}", get(read::view).post(read::act))
        .route("/mail/{id}/{uid}/body", get(read::body))
        .route("/mail/{id}/{uid}/part/{part}", get(read::part))
        .route("/mail/{id}/{uid}/raw", get(read::raw))
        .route("/compose", get(write::form).post(write::submit))
}

async fn home(axum::extract::State(app): axum::extract::State<Arc<App>>, user: User) -> Result<Response, PageError> {
    let folders = app.folders(user.session.account).await?;
    let inbox = folders.iter().find(|f| f.role == Some("inbox")).map_or(0, |f| f.id);
    Ok(Redirect::to(&format!("/mail/{inbox}")).into_response())
}

/// A failed page request: the error, shown in a page of its own.
pub struct PageError(WebError);

impl From<WebError> for PageError {
    fn from(e: WebError) -> PageError {
        PageError(e)
    }
}

impl From<std::io::Error> for PageError {
    fn from(e: std::io::Error) -> PageError {
        PageError(WebError::Io(e))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = self.0;
        if matches!(e, WebError::SignedOut) {
            return Redirect::to("/login").into_response();
        }
        if e.status().is_server_error() {
            warn!(error = %e, "webmail request failed");
        }
        let status = e.status();
        let body = html! {
            (DOCTYPE)
            html lang="en" {
                head { meta charset="utf-8"; meta name="viewport" content="width=device-width, initial-scale=1"; title { "Error – Mailroom" } }
                body { main.error-page { h1 { (status.canonical_reason().unwrap_or("Error")) } p.error role="alert" { (e) } p { a href="/" { "Back to your mail" } } } }
            }
        };
        (status, Html(body.into_string())).into_response()
    }
}

/// What the frame of every signed-in page needs.
pub struct Frame<'a> {
    /// The page's title.
    pub title: &'a str,
    /// The user.
    pub user: &'a User,
    /// The folder list.
    pub folders: &'a [Folder],
    /// The folder shown, if any (highlighted, and the script refreshes it).
    pub current: Option<i64>,
    /// A notice for the user (an outcome or an error).
    pub notice: Option<Notice>,
}

/// A line at the top of the content.
pub enum Notice {
    /// Something was done.
    Done(String),
    /// Something could not be done.
    Error(String),
}

/// The page around `content`: header, folder list, notice.
pub fn frame(app: &App, f: Frame<'_>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(app, f.title))
            body data-folder=[f.current] {
                header.top {
                    a.brand href="/" { "Mailroom" }
                    a.button.compose href="/compose" accesskey="c" { "Compose" }
                    span.me { (f.user.session.address) }
                    form.inline method="post" action="/logout" {
                        (csrf(f.user))
                        button type="submit" { "Sign out" }
                    }
                }
                div.layout {
                    nav #folders aria-label="Folders" {
                        (folder_list(f.folders, f.current))
                    }
                    main #content {
                        @match &f.notice {
                            Some(Notice::Done(text)) => p.notice role="status" { (text) },
                            Some(Notice::Error(text)) => p.error role="alert" { (text) },
                            None => {},
                        }
                        (content)
                    }
                }
            }
        }
    }
}

/// Every page's head: its title, the stylesheet and the script.
pub fn head(app: &App, title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " – Mailroom" }
            link rel="stylesheet" href={ "/static/" (app.assets.css) };
            script src={ "/static/" (app.assets.js) } defer {}
        }
    }
}

/// The folder list with unread counts.
pub fn folder_list(folders: &[Folder], current: Option<i64>) -> Markup {
    html! {
        ul {
            @for f in folders {
                li class={ "depth-" (f.depth().min(4)) } {
                    a href={ "/mail/" (f.id) } data-name=(f.name) aria-current=[(current == Some(f.id)).then_some("page")] {
                        span.name { (f.leaf()) }
                        @if f.unread > 0 {
                            " " span.unread-count aria-label={ (f.unread) " unread" } { (f.unread) }
                        }
                    }
                }
            }
        }
        p { a href="/folders" { "Manage folders" } }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf(user: &User) -> Markup {
    html! { input type="hidden" name="csrf" value=(user.session.csrf); }
}

/// A signed-in page response.
pub fn page(markup: Markup) -> Response {
    Html(markup.into_string()).into_response()
}

/// A page answering a failed form: 422 with the form shown again.
pub fn unprocessable(markup: Markup) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, Html(markup.into_string())).into_response()
}

/// Bytes for people: "12 KB".
pub fn size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{} KB", b.div_ceil(1024)),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

/// A date for the list and the message view, in UTC.
pub fn date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = mailroom_types::time::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", secs / 3600, secs % 3600 / 60)
}

/// Percent-encodes a path segment (RFC 3986 unreserved characters stay).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_dates_read_well() {
        assert_eq!(size(900), "900 B");
        assert_eq!(size(2048), "2 KB");
        assert_eq!(size(3 * 1024 * 1024), "3.0 MB");
        assert_eq!(date(1_700_000_000), "2023-11-14 22:13");
        assert_eq!(encode_segment("a b/c@d"), "a%20b%2Fc%40d");
    }
}
