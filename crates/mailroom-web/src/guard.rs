//! Who is asking, and whether to believe the request came from our own
//! pages: the session cookie, the CSRF token, the origin of state-changing
//! requests, and the headers that keep every response on a short leash.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::serve::Peer;
use crate::session::{COOKIE, SECURE_COOKIE, Session, same_secret};
use crate::{App, WebError};

/// The policy of every page: our own script and style only, no plugins,
/// forms posting only to us, framed only by us. A message's HTML is served
/// apart, under a stricter policy of its own (see `pages::read`).
pub const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; frame-src 'self'; form-action 'self'; frame-ancestors 'self'; base-uri 'none'";

/// A signed-in request.
#[derive(Debug, Clone)]
pub struct User {
    /// The session (account, address, CSRF token).
    pub session: Session,
    /// The cookie's value, to end the session.
    pub token: String,
    /// The connection it came over.
    pub peer: Peer,
}

impl User {
    /// Checks the CSRF token a form field or the `X-CSRF-Token` header
    /// carried (the origin was checked before routing).
    pub fn check_csrf(&self, token: Option<&str>) -> Result<(), WebError> {
        match token {
            Some(t) if same_secret(t, &self.session.csrf) => Ok(()),
            _ => Err(WebError::Forbidden),
        }
    }
}

/// Why a request has no [`User`]: signed out, which pages answer with the
/// sign-in form and the API with 401.
pub struct NoSession {
    api: bool,
}

impl IntoResponse for NoSession {
    fn into_response(self) -> Response {
        if self.api {
            crate::api::error_response(&WebError::SignedOut)
        } else {
            axum::response::Redirect::to("/login").into_response()
        }
    }
}

impl FromRequestParts<Arc<App>> for User {
    type Rejection = NoSession;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<User, NoSession> {
        let api = parts.uri.path().starts_with("/api/");
        let peer = peer(parts);
        let token = cookie(&parts.headers, if peer.tls { SECURE_COOKIE } else { COOKIE });
        let found = token.and_then(|t| app.sessions.touch(t, app.clock.now()).map(|s| (t.to_string(), s)));
        match found {
            Some((token, session)) => Ok(User { session, token, peer }),
            None => Err(NoSession { api }),
        }
    }
}

/// The connection a request came over.
pub fn peer(parts: &Parts) -> Peer {
    parts.extensions.get::<Peer>().copied().unwrap_or(Peer { ip: std::net::Ipv4Addr::LOCALHOST.into(), tls: false })
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The `Set-Cookie` value that signs a browser in (or, with an empty
/// token, out): HttpOnly so no script reads it, SameSite=Strict so no
/// other site's request carries it, Secure over TLS.
pub fn session_cookie(token: &str, tls: bool) -> HeaderValue {
    let (name, secure) = if tls { (SECURE_COOKIE, "; Secure") } else { (COOKIE, "") };
    let expiry = if token.is_empty() { "; Max-Age=0" } else { "" };
    let value = format!("{name}={token}; Path=/; HttpOnly; SameSite=Strict{secure}{expiry}");
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// Refuses a state-changing request that another site's page sent (the
/// browser says so in `Sec-Fetch-Site` or `Origin`), then adds the
/// security headers to every response.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !same_origin(request.headers()) {
        let api = request.uri().path().starts_with("/api/");
        return if api {
            crate::api::error_response(&WebError::Forbidden)
        } else {
            (WebError::Forbidden.status(), WebError::Forbidden.to_string()).into_response()
        };
    }
    let tls = request.extensions().get::<Peer>().is_some_and(|p| p.tls);
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    let mut default = |name: header::HeaderName, value: &'static str| {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    };
    default(header::CONTENT_SECURITY_POLICY, PAGE_POLICY);
    // Lists and counts are never served stale; what may be cached says so.
    default(header::CACHE_CONTROL, "no-store");
    default(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // No other site learns a message's URL from a link in it; our own
    // requests keep their Origin, which browsers without Fetch Metadata
    // need for the origin check.
    default(header::REFERRER_POLICY, "same-origin");
    default(header::X_FRAME_OPTIONS, "SAMEORIGIN");
    if tls {
        default(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    response
}

/// Whether a request's own headers say it came from our pages (or from
/// no page at all: a script with no browser around it).
///
/// A browser that sends `Sec-Fetch-Site` is believed on it alone: under a
/// `no-referrer` policy (a proxy may set one) a form posted from our own
/// page carries `Origin: null` (the Fetch standard's origin serialisation
/// for that policy), so the origin cannot always tell our forms from
/// anyone's. Only browsers without Fetch Metadata are judged by `Origin`.
fn same_origin(headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    match (get("origin"), get("host")) {
        (Some(origin), Some(host)) => origin.split_once("://").is_some_and(|(_, h)| h.eq_ignore_ascii_case(host)),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn other_sites_cannot_post() {
        assert!(same_origin(&headers(&[("host", "mail.test:8080"), ("origin", "http://mail.test:8080")])));
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(same_origin(&headers(&[])), "curl and scripts send neither");
        assert!(!same_origin(&headers(&[("host", "mail.test"), ("origin", "https://evil.test")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "same-site")])), "a sibling host is not us");
        assert!(!same_origin(&headers(&[("host", "mail.test"), ("origin", "null")])));
        // A form posted from our own page under a no-referrer policy.
        let form = [("host", "mail.test"), ("origin", "null"), ("sec-fetch-site", "same-origin")];
        assert!(same_origin(&headers(&form)));
        let framed = [("host", "mail.test"), ("origin", "null"), ("sec-fetch-site", "cross-site")];
        assert!(!same_origin(&headers(&framed)), "an opaque origin (a sandboxed frame) is another site");
    }

    #[test]
    fn cookies_are_found_by_name() {
        let h = headers(&[("cookie", "a=1; mailroom_session=abc"), ("cookie", "b=2")]);
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn the_session_cookie_is_out_of_scripts_reach() {
        let c = session_cookie("t", false);
        assert_eq!(c, "mailroom_session=t; Path=/; HttpOnly; SameSite=Strict");
        let c = session_cookie("t", true);
        assert_eq!(c, "__Host-mailroom_session=t; Path=/; HttpOnly; SameSite=Strict; Secure");
        assert!(session_cookie("", false).to_str().unwrap().ends_with("Max-Age=0"));
    }
}
