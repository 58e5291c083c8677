//! The HTML sanitiser: mail HTML in, HTML that can neither run code, nor
//! submit anything, nor (unless allowed) fetch anything remote.
//!
//! It is an allow-list on ammonia: only the tags, attributes and URL
//! schemes listed here survive. ammonia checks URL schemes on `href`/`src`
//! against the union of what any element may use; `filter` then narrows
//! them per attribute (links: http, https, mailto; images: cid, data
//! images and, when allowed, http and https), rewrites `cid:` to the
//! page's URL and filters inline CSS (`super::css`).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use ammonia::{Builder, UrlRelative};

use super::css;

/// Layout and text tags mail uses. No scripting, forms, frames, embedded
/// objects, SVG/MathML, `<style>`, `<base>`, `<meta>` or `<link>`.
const TAGS: &[&str] = &[
    "a",
    "abbr",
    "b",
    "big",
    "blockquote",
    "br",
    "caption",
    "center",
    "code",
    "dd",
    "div",
    "dl",
    "dt",
    "em",
    "font",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "small",
    "span",
    "strike",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
];

/// Elements removed together with their content: their text is code,
/// styles or widgets, never part of the message's text.
const CLEAN_CONTENT_TAGS: &[&str] = &[
    "applet", "button", "embed", "frame", "frameset", "head", "iframe", "math", "noembed", "noframes", "noscript",
    "object", "script", "select", "style", "svg", "template", "textarea", "title",
];

/// Presentational attributes allowed on any kept tag.
const GENERIC_ATTRIBUTES: &[&str] = &[
    "align",
    "alt",
    "bgcolor",
    "border",
    "cellpadding",
    "cellspacing",
    "color",
    "colspan",
    "dir",
    "height",
    "rowspan",
    "style",
    "title",
    "valign",
    "width",
];

/// Per-tag attributes; URL-bearing ones go through `filter`. `rel` and
/// `target` on links are set by the builder, never taken from the mail.
const TAG_ATTRIBUTES: &[(&str, &[&str])] = &[
    ("a", &["href"]),
    ("font", &["face", "size"]),
    ("img", &["src", "srcset"]),
    ("ol", &["start", "type"]),
    ("table", &["background"]),
    ("td", &["background", "nowrap"]),
    ("th", &["background", "nowrap"]),
    ("tr", &["background"]),
];

/// Every scheme some URL attribute may use; `filter` narrows per attribute.
const URL_SCHEMES: &[&str] = &["cid", "data", "http", "https", "mailto"];

/// Data URLs an image may use: raster formats only (an SVG image can
/// carry script when opened on its own).
const DATA_IMAGES: &[&str] = &["data:image/png", "data:image/gif", "data:image/jpeg", "data:image/webp"];

/// What sanitising found, for the message page.
#[derive(Debug, Default)]
pub(super) struct Report {
    /// A remote image or CSS `url()` was seen.
    pub remote_images: bool,
    /// Content-IDs (lower-case) of images shown through `cid:` references.
    pub cids: Vec<String>,
}

impl Report {
    pub fn merge(mut self, other: Report) -> Report {
        self.remote_images |= other.remote_images;
        self.cids.extend(other.cids);
        self
    }
}

/// What `filter` needs; shared with ammonia's callback, which must own it.
struct Policy {
    allow_remote: bool,
    /// Lower-case Content-ID to the URL the page serves that image from.
    cid_urls: HashMap<String, String>,
    report: Mutex<Report>,
}

/// Sanitises an HTML body (a fragment or a whole document) and reports
/// what it saw. `cid_urls` maps lower-case Content-IDs to image URLs;
/// `cid:` references to anything else are removed.
pub(super) fn clean(html: &str, allow_remote: bool, cid_urls: &HashMap<String, String>) -> (String, Report) {
    let policy = Arc::new(Policy { allow_remote, cid_urls: cid_urls.clone(), report: Mutex::new(Report::default()) });
    let out = builder(Arc::clone(&policy)).clean(html).to_string();
    let report = policy.report.lock().map(|mut r| std::mem::take(&mut *r)).unwrap_or_default();
    (out, report)
}

fn builder(policy: Arc<Policy>) -> Builder<'static> {
    let tag_attributes =
        TAG_ATTRIBUTES.iter().map(|&(tag, attrs)| (tag, attrs.iter().copied().collect::<HashSet<_>>())).collect();
    let mut b = Builder::empty();
    b.tags(TAGS.iter().copied().collect())
        .clean_content_tags(CLEAN_CONTENT_TAGS.iter().copied().collect())
        .generic_attributes(GENERIC_ATTRIBUTES.iter().copied().collect())
        .tag_attributes(tag_attributes)
        .url_schemes(URL_SCHEMES.iter().copied().collect())
        // Relative URLs reach `filter`, which drops them; what passes
        // through is only `filter`'s own output (the page's cid URLs).
        .url_relative(UrlRelative::PassThrough)
        .link_rel(Some("noopener noreferrer"))
        .set_tag_attribute_value("a", "target", "_blank")
        .strip_comments(true)
        .attribute_filter(move |element, attribute, value| filter(&policy, element, attribute, value));
    b
}

fn filter<'u>(policy: &Policy, element: &str, attribute: &str, value: &'u str) -> Option<Cow<'u, str>> {
    match (element, attribute) {
        ("a", "href") => link(value),
        ("img", "src") | (_, "background") => image(policy, value),
        ("img", "srcset") => {
            // Candidates would need parsing one by one; `src` suffices.
            if value.contains("//") {
                note(policy, |r| r.remote_images = true);
            }
            None
        }
        (_, "style") => {
            let (style, remote) = css::filter(value);
            if remote {
                note(policy, |r| r.remote_images = true);
            }
            style.map(Cow::Owned)
        }
        _ => Some(Cow::Borrowed(value)),
    }
}

/// Link targets: http, https and mailto; protocol-relative ones become https.
fn link(value: &str) -> Option<Cow<'_, str>> {
    match scheme(value).as_deref() {
        Some("http" | "https" | "mailto") => Some(Cow::Borrowed(value)),
        None if is_protocol_relative(value) => Some(Cow::Owned(format!("https:{}", value.trim()))),
        _ => None,
    }
}

/// Image sources: `cid:` of one of the message's images (rewritten to the
/// page's URL), raster `data:` images, and remote http(s) when allowed.
fn image<'u>(policy: &Policy, value: &'u str) -> Option<Cow<'u, str>> {
    match scheme(value).as_deref() {
        Some("cid") => cid(policy, value),
        Some("data") => {
            let lower = value.trim().to_ascii_lowercase();
            let ok = DATA_IMAGES.iter().any(|prefix| {
                lower.strip_prefix(prefix).is_some_and(|rest| rest.starts_with(';') || rest.starts_with(','))
            });
            ok.then_some(Cow::Borrowed(value))
        }
        Some("http" | "https") => remote(policy, Cow::Borrowed(value)),
        None if is_protocol_relative(value) => remote(policy, Cow::Owned(format!("https:{}", value.trim()))),
        _ => None,
    }
}

fn remote<'u>(policy: &Policy, url: Cow<'u, str>) -> Option<Cow<'u, str>> {
    note(policy, |r| r.remote_images = true);
    policy.allow_remote.then_some(url)
}

/// RFC 2392: `cid:` followed by the percent-encoded Content-ID.
fn cid<'u>(policy: &Policy, value: &str) -> Option<Cow<'u, str>> {
    let (_, id) = split_scheme(value)?;
    let id = percent_decode(&id).to_ascii_lowercase();
    let url = policy.cid_urls.get(&id)?.clone();
    note(policy, |r| r.cids.push(id));
    Some(Cow::Owned(url))
}

fn note(policy: &Policy, f: impl FnOnce(&mut Report)) {
    if let Ok(mut report) = policy.report.lock() {
        f(&mut report);
    }
}

/// The URL's scheme, lower-cased, the way a browser finds it. `None` for a
/// relative URL.
fn scheme(value: &str) -> Option<String> {
    split_scheme(value).map(|(scheme, _)| scheme)
}

/// The URL's scheme (lower-cased) and the rest, the way a browser reads
/// them: leading and trailing C0 controls and spaces are ignored, and so
/// are tabs and newlines anywhere (WHATWG URL).
fn split_scheme(value: &str) -> Option<(String, String)> {
    let cleaned: String =
        value.trim_matches(|c: char| c <= ' ').chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).collect();
    let (scheme, rest) = cleaned.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| (scheme.to_ascii_lowercase(), rest.to_owned()))
}

fn is_protocol_relative(value: &str) -> bool {
    let v = value.trim_matches(|c: char| c <= ' ');
    v.starts_with("//") || v.starts_with("\\\\") || v.starts_with("/\\") || v.starts_with("\\/")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
