//! A plain-text rendering of HTML mail, for quoting it in a reply.
//!
//! Not a browser: it drops tags, scripts, styles and comments, decodes
//! common entities, collapses whitespace as HTML does (except in `pre`),
//! and turns block elements into line breaks, which is what makes a quoted
//! HTML message readable. Malformed markup degrades to text; it never fails.

/// Elements whose content is not text a reader sees.
const HIDDEN: [&str; 6] = ["script", "style", "head", "title", "template", "noscript"];
/// Elements that end a paragraph: a blank line around them.
const PARAGRAPH: [&str; 14] =
    ["p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "hr", "dl"];
/// Elements that start a new line.
const LINE: [&str; 11] = ["div", "tr", "li", "dt", "dd", "section", "article", "header", "footer", "address", "figure"];

/// Renders HTML as plain text with LF line endings.
pub(super) fn to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    let mut pre_depth = 0usize;
    while let Some(lt) = rest.find('<') {
        push_text(&mut out, &rest[..lt], pre_depth > 0);
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let starts_tag = rest[1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '/' || c == '!' || c == '?');
        if !starts_tag {
            // A lone `<`, as in "a < b": text, not markup.
            push_text(&mut out, "<", pre_depth > 0);
            rest = &rest[1..];
            continue;
        }
        let end = tag_end(rest);
        let tag = &rest[1..end];
        rest = rest.get(end + 1..).unwrap_or_default();
        let closing = tag.starts_with('/');
        let name = tag.trim_start_matches('/').split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap_or_default();
        let name = name.to_ascii_lowercase();
        if !closing && HIDDEN.contains(&name.as_str()) {
            rest = skip_element(rest, &name);
        } else if name == "br" {
            trim_spaces(&mut out);
            out.push('\n');
        } else if PARAGRAPH.contains(&name.as_str()) {
            if name == "pre" {
                pre_depth = if closing { pre_depth.saturating_sub(1) } else { pre_depth + 1 };
            }
            break_line(&mut out, "\n\n");
        } else if LINE.contains(&name.as_str()) {
            break_line(&mut out, "\n");
        } else if (name == "td" || name == "th") && !closing && !out.ends_with(['\n', ' ']) && !out.is_empty() {
            out.push(' ');
        }
    }
    push_text(&mut out, rest, pre_depth > 0);
    tidy(&out)
}

/// The index of the `>` that closes the tag at the start of `s`, skipping
/// quoted attribute values; the length of `s` when it is unterminated.
fn tag_end(s: &str) -> usize {
    let mut quote = None;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return i,
            _ => {}
        }
    }
    s.len()
}

/// What follows the end tag of `name`, or nothing if it is never closed.
fn skip_element<'a>(rest: &'a str, name: &str) -> &'a str {
    // ASCII lower-casing keeps byte offsets, so positions carry over.
    let lower = rest.to_ascii_lowercase();
    let Some(start) = lower.find(&format!("</{name}")) else {
        return "";
    };
    match rest[start..].find('>') {
        Some(end) => &rest[start + end + 1..],
        None => "",
    }
}

fn push_text(out: &mut String, text: &str, pre: bool) {
    let text = decode_entities(text);
    if pre {
        out.push_str(&text.replace("\r\n", "\n").replace('\r', "\n"));
        return;
    }
    for c in text.chars() {
        if c.is_whitespace() {
            if !out.is_empty() && !out.ends_with([' ', '\n']) {
                out.push(' ');
            }
        } else if !c.is_control() {
            out.push(c);
        }
    }
}

fn trim_spaces(out: &mut String) {
    let kept = out.trim_end_matches(' ').len();
    out.truncate(kept);
}

/// Ends the current line (and with `"\n\n"`, the paragraph), unless the
/// output already does.
fn break_line(out: &mut String, brk: &str) {
    trim_spaces(out);
    if out.is_empty() {
        return;
    }
    while !out.ends_with(brk) {
        out.push('\n');
    }
}

/// Trailing spaces off every line, at most one blank line in a row, no
/// blank lines at either end.
fn tidy(text: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() && lines.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        lines.push(line);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

/// Decodes `&name;`, `&#NNN;` and `&#xHHH;`; anything unknown stays as it
/// was written.
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.get(1..).and_then(|r| {
            let semi = r.find(';').filter(|&i| i > 0 && i <= 32)?;
            Some((entity(&r[..semi])?, semi + 2))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return Some(char::from_u32(code).filter(|c| *c != '\0').unwrap_or('\u{FFFD}'));
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "hellip" => '…',
        "mdash" => '—',
        "ndash" => '–',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "bull" => '•',
        "middot" => '·',
        "euro" => '€',
        "pound" => '£',
        "shy" => '\u{AD}',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::to_text;

    #[test]
    fn blocks_become_lines_and_hidden_content_goes() {
        let html = "<html><head><title>T</title><style>p{color:red}</style></head><body>\
            <p>Hello&nbsp;<b>Alice</b>,</p><p>Line one<br>Line   two</p>\
            <script>alert('x')</script><!-- note --><div>Fish &amp; chips &lt;3 &#233;&#x263A;</div>\
            <ul><li>one</li><li>two</li></ul></body></html>";
        assert_eq!(to_text(html), "Hello Alice,\n\nLine one\nLine two\n\nFish & chips <3 é\u{263A}\n\none\ntwo");
    }

    #[test]
    fn pre_keeps_whitespace_and_stray_brackets_stay_text() {
        assert_eq!(to_text("<pre>a  b\n  c</pre>x < y"), "a  b\n  c\n\nx < y");
        assert_eq!(to_text("a &bogus; &amp"), "a &bogus; &amp");
    }

    #[test]
    fn malformed_markup_does_not_panic() {
        for html in ["<", "<a", "<a href='>", "<!--", "<script>", "&#xFFFFFFFF;", "&#;", "<p>é<", "<\u{e9}>", "</"] {
            let _ = to_text(html);
        }
    }
}
