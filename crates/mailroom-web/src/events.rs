//! Live updates: `/events` streams a server-sent event whenever one of the
//! user's mailboxes changes (new mail, flags, moves, from any protocol),
//! read from the store's change feed. The page's script then refetches
//! what it shows; without script, pages are simply reloaded by hand.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use mailroom_store::MailStore;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::App;
use crate::guard::User;

/// `/events`.
pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/events", get(events))
}

async fn events(State(app): State<Arc<App>>, user: User) -> Sse<axum::response::sse::KeepAliveStream<Feed>> {
    let mut feed = app.store.subscribe();
    let account = user.session.account;
    let mut shutdown = app.shutdown.clone();
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let change = tokio::select! {
                // The browser went away, or the server is stopping (the
                // browser reconnects to the next one by itself).
                _ = tx.closed() => return,
                _ = shutdown.triggered() => return,
                change = feed.recv() => change,
            };
            let event = match change {
                Ok(c) if c.account == account => Event::default().event("mailbox").data(c.mailbox.0.to_string()),
                Ok(_) => continue,
                // Missed some: say something changed, the page refetches.
                Err(RecvError::Lagged(_)) => Event::default().event("mailbox").data("0"),
                Err(RecvError::Closed) => return,
            };
            if tx.send(Ok(event)).await.is_err() {
                return;
            }
        }
    });
    Sse::new(Feed(rx)).keep_alive(KeepAlive::new().interval(Duration::from_secs(25)))
}

/// The events of one browser, fed by a task; a few at most in flight.
pub struct Feed(mpsc::Receiver<Result<Event, Infallible>>);

impl futures_core::Stream for Feed {
    type Item = Result<Event, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}
