//! Inline CSS (`style` attributes) reduced to declarations that only
//! change how text and boxes look.
//!
//! Mail layout leans on inline styles, so dropping them all makes most
//! newsletters unreadable. What must go: anything that loads a resource
//! (`url()`, `@import`, `image-set()`), runs code (`expression()`,
//! `behavior`, `-moz-binding`, `javascript:`), or places content over the
//! page (`position`, which is simply not on the list). CSS escapes and
//! comments can disguise any of these from a text check, so a style that
//! contains either is dropped whole. Values may call only colour and
//! `calc` functions.

/// Properties that change only appearance and flow.
const PROPERTIES: &[&str] = &[
    "background-color",
    "border",
    "border-bottom",
    "border-bottom-color",
    "border-bottom-style",
    "border-bottom-width",
    "border-collapse",
    "border-color",
    "border-left",
    "border-left-color",
    "border-left-style",
    "border-left-width",
    "border-radius",
    "border-right",
    "border-right-color",
    "border-right-style",
    "border-right-width",
    "border-spacing",
    "border-style",
    "border-top",
    "border-top-color",
    "border-top-style",
    "border-top-width",
    "border-width",
    "clear",
    "color",
    "direction",
    "display",
    "float",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-variant",
    "font-weight",
    "height",
    "letter-spacing",
    "line-height",
    "list-style-type",
    "margin",
    "margin-bottom",
    "margin-left",
    "margin-right",
    "margin-top",
    "max-height",
    "max-width",
    "min-height",
    "min-width",
    "overflow-wrap",
    "padding",
    "padding-bottom",
    "padding-left",
    "padding-right",
    "padding-top",
    "table-layout",
    "text-align",
    "text-decoration",
    "text-indent",
    "text-transform",
    "vertical-align",
    "visibility",
    "white-space",
    "width",
    "word-break",
    "word-spacing",
    "word-wrap",
];

/// Functions a value may call.
const FUNCTIONS: &[&str] = &["calc", "hsl", "hsla", "rgb", "rgba"];

/// Text that must not appear in a value, whatever the context.
const FORBIDDEN: &[&str] = &["url(", "expression(", "@import", "javascript:", "vbscript:", "behavior", "-moz-binding"];

/// Filters a `style` attribute: the allowed declarations, re-joined, or
/// `None` if none is left; and whether it referred to a remote resource
/// (which is removed either way).
pub(super) fn filter(style: &str) -> (Option<String>, bool) {
    let lower = style.to_ascii_lowercase();
    let remote = lower.contains("url(") && (lower.contains("http") || lower.contains("//"));
    if style.contains('\\') || style.contains("/*") {
        return (None, remote);
    }
    let kept: Vec<String> = style.split(';').filter_map(declaration).collect();
    let style = (!kept.is_empty()).then(|| kept.join("; "));
    (style, remote)
}

/// One `property: value` declaration, normalised, if it is allowed.
fn declaration(decl: &str) -> Option<String> {
    let (property, value) = decl.split_once(':')?;
    let property = property.trim().to_ascii_lowercase();
    let value = value.trim();
    (PROPERTIES.contains(&property.as_str()) && value_ok(value)).then(|| format!("{property}: {value}"))
}

fn value_ok(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    !value.is_empty()
        && !FORBIDDEN.iter().any(|f| lower.contains(f))
        && !value.chars().any(|c| c.is_control() || matches!(c, '\\' | '<' | '>' | '{' | '}' | '@' | ';' | ':'))
        && quotes_balanced(value)
        && functions_ok(&lower)
}

/// Declarations are split on `;` without regard to strings, so a string
/// with a `;` in it leaves an unbalanced quote in both halves: both go.
fn quotes_balanced(value: &str) -> bool {
    value.matches('"').count().is_multiple_of(2) && value.matches('\'').count().is_multiple_of(2)
}

/// Every `(` opens an allowed function (named right before it) and
/// parentheses balance.
fn functions_ok(lower: &str) -> bool {
    let mut depth = 0usize;
    for (i, c) in lower.char_indices() {
        match c {
            '(' => {
                let before = &lower[..i];
                // The name is ASCII, so its length in chars is in bytes.
                let len = before.chars().rev().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').count();
                if !FUNCTIONS.contains(&&before[before.len() - len..]) {
                    return false;
                }
                depth += 1;
            }
            ')' => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => {}
        }
    }
    depth == 0
}
