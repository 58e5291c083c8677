//! The stylesheet and the script, built into the binary. Their URLs carry
//! a fingerprint of their content, so browsers keep them for a year and a
//! new release is fetched at once: no build step, no stale assets.

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::App;

const CSS: &str = include_str!("../assets/app.css");
const JS: &str = include_str!("../assets/app.js");

/// The assets and their fingerprinted names.
pub struct Assets {
    /// `app.<hash>.css`
    pub css: String,
    /// `app.<hash>.js`
    pub js: String,
}

impl Assets {
    /// Names the built-in assets.
    pub fn new() -> Assets {
        Assets { css: format!("app.{:016x}.css", fnv(CSS)), js: format!("app.{:016x}.js", fnv(JS)) }
    }
}

impl Default for Assets {
    fn default() -> Self {
        Assets::new()
    }
}

/// FNV-1a: enough to tell two releases' assets apart.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// `/static/<fingerprinted name>`.
pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/static/{name}", get(asset))
}

async fn asset(axum::extract::State(app): axum::extract::State<Arc<App>>, Path(name): Path<String>) -> Response {
    let (body, kind) = if name == app.assets.css {
        (CSS, "text/css; charset=utf-8")
    } else if name == app.assets.js {
        (JS, "text/javascript; charset=utf-8")
    } else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn fingerprints_follow_content() {
        assert_ne!(super::fnv("a"), super::fnv("b"));
        let a = super::Assets::new();
        assert!(a.css.starts_with("app.") && a.css.ends_with(".css") && a.css.len() == 24);
    }
}
