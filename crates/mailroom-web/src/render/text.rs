//! Plain text bodies as HTML: escaped by maud, lines kept, http(s) URLs as
//! links.

use maud::html;

/// Characters that end a URL in running text besides whitespace; none of
/// them may appear unescaped in a URL anyway.
const URL_END: &[char] = &['<', '>', '"', '\'', '`', '{', '}', '|', '^'];

/// Punctuation that usually closes the sentence around a URL rather than
/// belonging to it.
const TRAILING: &[char] = &['.', ',', ';', ':', '!', '?', ')', ']', '*'];

enum Segment<'a> {
    Text(&'a str),
    Link(&'a str),
}

/// The text escaped inside a `<pre>` that wraps long lines, with http(s)
/// URLs turned into links that open outside the page.
pub(super) fn to_html(text: &str) -> String {
    let segments = segments(text);
    html! {
        pre style="white-space: pre-wrap; overflow-wrap: break-word; font-family: monospace" {
            @for segment in &segments {
                @match segment {
                    Segment::Text(t) => (t),
                    Segment::Link(url) => a href=(url) rel="noopener noreferrer" target="_blank" { (url) },
                }
            }
        }
    }
    .into_string()
}

fn segments(text: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((start, end)) = next_url(rest) {
        if start > 0 {
            out.push(Segment::Text(&rest[..start]));
        }
        out.push(Segment::Link(&rest[start..end]));
        rest = &rest[end..];
    }
    if !rest.is_empty() {
        out.push(Segment::Text(rest));
    }
    out
}

/// Byte range of the first http(s) URL in `text` with something after
/// the `//`.
fn next_url(text: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    loop {
        let start = from + find_scheme(&text[from..])?;
        let len = text[start..]
            .find(|c: char| c.is_whitespace() || c.is_control() || URL_END.contains(&c))
            .unwrap_or(text.len() - start);
        let url = trim_trailing(&text[start..start + len]);
        let scheme_len = if url.starts_with("https://") { 8 } else { 7 };
        if url.len() > scheme_len {
            return Some((start, start + url.len()));
        }
        from = start + scheme_len.min(len.max(1));
    }
}

fn find_scheme(text: &str) -> Option<usize> {
    match (text.find("http://"), text.find("https://")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Drops trailing punctuation, but keeps a `)` that closes a `(` in the
/// URL (as in Wikipedia links).
fn trim_trailing(url: &str) -> &str {
    let mut url = url;
    while let Some(c) = url.chars().last().filter(|c| TRAILING.contains(c)) {
        if c == ')' && url.matches('(').count() >= url.matches(')').count() {
            break;
        }
        url = &url[..url.len() - 1];
    }
    url
}
