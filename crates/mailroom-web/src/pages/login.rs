//! Sign-in and sign-out. A failed sign-in is answered only after the
//! throttling delay the shared authenticator owes (as IMAP's is), and says
//! nothing about whether the account exists.

use std::sync::Arc;

use crate::form::Form;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use mailroom_services::auth::Login;
use mailroom_types::Secret;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use tracing::{info, warn};

use super::{page, unprocessable};
use crate::guard::{User, cookie, session_cookie};
use crate::serve::Peer;
use crate::session::{random_token, same_secret};
use crate::{App, WebError};

/// The login form's own CSRF cookie: before sign-in there is no session
/// to hold a token, so the form and a cookie carry the same random value
/// (a double submit), and another site can forge neither.
const LOGIN_COOKIE: &str = "mailroom_login";

#[derive(Deserialize)]
pub(super) struct Credentials {
    address: String,
    password: String,
    #[serde(default)]
    csrf: String,
}

pub(super) async fn form(State(app): State<Arc<App>>, peer: Peer) -> Result<Response, super::PageError> {
    let token = random_token()?;
    let mut r = page(login_page(&app, &token, "", None));
    set_login_cookie(&mut r, &token, peer.tls);
    Ok(r)
}

pub(super) async fn submit(
    State(app): State<Arc<App>>,
    peer: Peer,
    headers: HeaderMap,
    Form(c): Form<Credentials>,
) -> Result<Response, super::PageError> {
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(expected, &c.csrf) {
        return Err(WebError::Forbidden.into());
    }
    let failed = |message: &str| -> Result<Response, super::PageError> {
        let token = random_token()?;
        let mut r = unprocessable(login_page(&app, &token, &c.address, Some(message)));
        set_login_cookie(&mut r, &token, peer.tls);
        Ok(r)
    };
    match app.sign_in(peer, &c.address, &c.password).await {
        Ok(token) => {
            let mut r = Redirect::to("/").into_response();
            r.headers_mut().append(header::SET_COOKIE, session_cookie(&token, peer.tls));
            Ok(r)
        }
        Err(WebError::SignedOut) => failed("Wrong address or password."),
        Err(WebError::Invalid(why)) => failed(&why),
        Err(e) => {
            warn!(error = %e, "sign-in failed");
            failed("Signing in is not possible right now; please try again.")
        }
    }
}

pub(super) async fn logout(
    State(app): State<Arc<App>>,
    user: User,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, super::PageError> {
    user.check_csrf(Some(f.token()))?;
    app.sessions.remove(&user.token);
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(header::SET_COOKIE, session_cookie("", user.peer.tls));
    Ok(r)
}

/// A form with nothing but its token.
#[derive(Deserialize)]
pub(super) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

impl CsrfOnly {
    /// The token it carried.
    pub(super) fn token(&self) -> &str {
        &self.csrf
    }
}

impl App {
    /// Checks a password and starts a session; a failure waits out its
    /// throttling delay first and is [`WebError::SignedOut`]. Refused
    /// ([`WebError::Invalid`]) over plain HTTP from anywhere but loopback.
    pub async fn sign_in(&self, peer: Peer, address: &str, password: &str) -> Result<String, WebError> {
        // As for IMAP, POP3 and submission: no password crosses a network
        // in the clear. A TLS proxy in front of `http` runs on loopback.
        if !(peer.tls || peer.ip.is_loopback()) {
            return Err(WebError::Invalid("sign in over HTTPS: passwords are not accepted over plain HTTP".into()));
        }
        let password = Secret::new(password.to_string());
        match self.auth.login(&self.store, peer.ip, address, &password).await? {
            Login::Success(account) => {
                info!(user = %account.address, "webmail sign-in");
                Ok(self.sessions.create(account.id, account.address, self.clock.now())?)
            }
            Login::Failure(delay) => {
                tokio::time::sleep(delay).await;
                Err(WebError::SignedOut)
            }
        }
    }
}

fn set_login_cookie(r: &mut Response, token: &str, tls: bool) {
    let secure = if tls { "; Secure" } else { "" };
    if let Ok(v) = format!("{LOGIN_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict{secure}").parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn login_page(app: &App, token: &str, address: &str, error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (super::head(app, "Sign in"))
            body.signin {
                main {
                    h1 { "Mailroom" }
                    @if let Some(e) = error { p.error role="alert" { (e) } }
                    form #login method="post" action="/login" {
                        input type="hidden" name="csrf" value=(token);
                        label for="address" { "Address" }
                        input #address type="email" name="address" value=(address) autocomplete="username" required autofocus;
                        label for="password" { "Password" }
                        input #password type="password" name="password" autocomplete="current-password" required;
                        button type="submit" { "Sign in" }
                    }
                }
            }
        }
    }
}
