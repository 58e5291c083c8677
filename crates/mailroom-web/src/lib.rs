//! Webmail: the browser's way to the same mailboxes IMAP serves and the
//! same submission path port 587 feeds (the seeds' "bridge in front of the
//! mail store"). Pages are rendered on the server and work without
//! JavaScript; a small script adds live updates. A JSON API under `/api/`
//! offers the same operations with the same rules.
//!
//! # Layout
//! - [`serve`]: the listener (plain or TLS), connection limits, shutdown.
//! - [`session`]: signed-in browsers, held server-side.
//! - [`guard`]: who is asking (the session cookie), CSRF checks, and the
//!   security headers every response carries.
//! - [`mail`], [`listing`], [`sending`]: what a user can do, shared by
//!   [`pages`] (HTML forms) and [`api`] (JSON).
//! - [`render`]: a stored message as the browser sees it, its HTML
//!   sanitised; [`compose`]: messages built from the composer.
//! - [`cache`]: conditional GET for what never changes (a message's body
//!   and parts); [`assets`]: fingerprinted CSS and script.

pub mod api;
pub mod assets;
pub mod cache;
pub mod compose;
pub mod events;
pub mod form;
pub mod guard;
pub mod listing;
pub mod mail;
pub mod pages;
pub mod render;
pub mod sending;
pub mod serve;
pub mod session;

use std::sync::Arc;

use mailroom_services::auth::Authenticator;
use mailroom_services::config::WebConfig;
use mailroom_services::dkim::DkimKeys;
use mailroom_services::submission::{Outbound, RateLimiter};
use mailroom_store::{AnyStore, StoreError};
use mailroom_types::{Clock, IdGenerator};

pub use serve::serve;

/// What the webmail shares with the rest of the server.
pub struct WebContext {
    /// The name in `Message-ID:`s and `Received:` fields.
    pub hostname: String,
    /// Where the mailboxes are.
    pub store: AnyStore,
    /// Password checks and their throttling, shared with IMAP and POP3.
    pub auth: Arc<Authenticator>,
    /// Arrival times, dates of sent mail, session expiry.
    pub clock: Arc<dyn Clock>,
    /// Blob and queue ids.
    pub ids: Arc<IdGenerator>,
    /// The submission path: commits and wakes the queue runner.
    pub outbound: Outbound<AnyStore>,
    /// Each user's sending rate, shared with port 587.
    pub rate: Arc<RateLimiter>,
    /// DKIM keys that sign what users send.
    pub dkim: Arc<DkimKeys>,
    /// Sessions, page size, upload bound.
    pub config: WebConfig,
    /// The largest message that may be sent (`limits.max_message_size`).
    pub max_message_size: u64,
    /// Ends the live-update streams, which would otherwise hold their
    /// connections open through the whole shutdown grace period.
    pub shutdown: mailroom_services::net::Shutdown,
}

/// The state every request handler holds: the context, the sessions and
/// the static assets.
pub struct App {
    ctx: WebContext,
    /// Signed-in browsers.
    pub sessions: session::Sessions,
    /// CSS and script, fingerprinted.
    pub assets: assets::Assets,
    /// Each mailbox's (HIGHESTMODSEQ, messages, unread), as last counted.
    counts: std::sync::Mutex<Counts>,
}

/// See [`App`]'s `counts`.
type Counts = std::collections::HashMap<mailroom_types::MailboxId, (mailroom_types::ModSeq, u32, u32)>;

impl std::ops::Deref for App {
    type Target = WebContext;
    fn deref(&self) -> &WebContext {
        &self.ctx
    }
}

impl App {
    /// The webmail over `ctx`.
    pub fn new(ctx: WebContext) -> Arc<App> {
        let c = &ctx.config;
        let sessions = session::Sessions::new(c.session_idle.0, c.session_lifetime.0, c.max_sessions);
        Arc::new(App { ctx, sessions, assets: assets::Assets::new(), counts: Default::default() })
    }

    /// Every route: the pages, the API and the assets.
    pub fn router(self: &Arc<App>) -> axum::Router {
        pages::routes()
            .merge(api::routes())
            .merge(events::routes())
            .merge(assets::routes())
            .layer(axum::extract::DefaultBodyLimit::max(self.config.max_upload.0 as usize))
            .layer(axum::middleware::from_fn(guard::security_headers))
            .with_state(Arc::clone(self))
    }
}

/// Why a request failed; pages and the API each render it their way.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No such folder, message or part (or not the user's).
    #[error("not found")]
    NotFound,
    /// Not signed in, or the session ended.
    #[error("please sign in")]
    SignedOut,
    /// A state-changing request without the session's CSRF token, or from
    /// another site.
    #[error("request refused: it did not come from this site's pages")]
    Forbidden,
    /// The request cannot be done as asked; the text says why.
    #[error("{0}")]
    Invalid(String),
    /// The user sent more mail than `[submission] rate_limit` allows.
    #[error("too much mail sent recently; try again later")]
    RateLimited,
    /// The store failed.
    #[error("the mail store failed: {0}")]
    Store(StoreError),
    /// Reading or writing a file failed.
    #[error("internal error: {0}")]
    Io(#[from] std::io::Error),
}

impl WebError {
    /// The HTTP status that says it.
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::SignedOut => StatusCode::UNAUTHORIZED,
            WebError::Forbidden => StatusCode::FORBIDDEN,
            WebError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            WebError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            WebError::Store(e) if e.is_temporary() => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Store(_) | WebError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}
