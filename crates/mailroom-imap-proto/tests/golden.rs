//! Golden-file tests of ENVELOPE, BODYSTRUCTURE, BODY and `BODY[section]`
//! (RFC 9051 §7.5.2, §6.4.5) over a corpus of real-world MIME shapes.
//!
//! Every `tests/corpus/NAME.eml` (CRLF line ends, as the store keeps them)
//! has a `tests/corpus/NAME.golden` holding one item per line:
//!
//! ```text
//! ENVELOPE <bytes>                 what FETCH ENVELOPE sends
//! BODYSTRUCTURE <bytes>            FETCH BODYSTRUCTURE
//! BODY <bytes>                     FETCH BODY (no extension data)
//! BODY[HEADER] <n> octets          sizes of sections, with their
//! BODY[2.MIME] <n> octets "<bytes>"  bytes when short (always for MIME)
//! BODY[4] NIL                      a section that does not exist
//! ```
//!
//! Bytes are escaped so that each item stays on one line: CR, LF and TAB
//! as `\r`, `\n`, `\t`, a backslash as `\\`, octets that are not part of
//! valid UTF-8 (or are other control characters) as `\xNN`; everything
//! else is written as it is. So an IMAP literal reads `{12}\r\n...` and a
//! quoted string's own escape `\"` reads `\\"`. Lines starting with `#`
//! are comments.
//!
//! To regenerate the golden files after an intended change, run
//!
//! ```text
//! UPDATE_GOLDEN=1 cargo test -p mailroom-imap-proto --test golden
//! ```
//!
//! and review every changed line by hand against RFC 9051 §7.5.2 before
//! keeping it: the golden files are the reviewed expectation, not a
//! snapshot of whatever the code does. Items listed in [`KNOWN_WRONG`] are
//! never rewritten: their golden line holds the correct (hand-written)
//! bytes, the test checks that the output still differs from them (so a
//! fix is noticed: then remove the entry), and the suite stays green.
//! Adding a case: drop `NAME.eml` into the corpus and run with
//! `UPDATE_GOLDEN=1`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use mailroom_imap_proto::message::{
    Body, BodyStructure, ParsedMessage, Section, SectionText, SingleKind, write_body_structure, write_envelope,
};

/// Items whose output is wrong per the RFCs: (case, item key, reason).
/// Their golden line holds the correct bytes, written by hand.
const KNOWN_WRONG: &[(&str, &str, &str)] = &[];

/// Sections whose bytes are shown when at most this long.
const SHOW_CONTENT_MAX: usize = 100;
/// MIME headers are shown up to this length.
const SHOW_MIME_MAX: usize = 600;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("corpus")
}

/// Escapes `bytes` onto one readable line (see the module notes).
fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, &[][..]),
            Err(e) => {
                let (v, b) = rest.split_at(e.valid_up_to());
                // The prefix is valid UTF-8 by construction.
                (std::str::from_utf8(v).unwrap_or_default(), b)
            }
        };
        for c in valid.chars() {
            match c {
                '\r' => out.push_str("\\r"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    let _ = write!(out, "\\x{:02X}", c as u32);
                }
                c => out.push(c),
            }
        }
        if let Some((&b, tail)) = bad.split_first() {
            let _ = write!(out, "\\x{b:02X}");
            rest = tail;
        } else {
            rest = &[];
        }
    }
    out
}

/// One golden line: its key (`ENVELOPE`, `BODY[1.MIME]`, ...) and value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    key: String,
    value: String,
}

fn parse_golden(text: &str) -> Vec<Item> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(' ') {
            Some((k, v)) => Item { key: k.to_string(), value: v.to_string() },
            None => Item { key: l.to_string(), value: String::new() },
        })
        .collect()
}

fn render_golden(items: &[Item]) -> String {
    let mut out = String::new();
    for item in items {
        let _ = writeln!(out, "{} {}", item.key, item.value);
    }
    out
}

fn section_key(part: &[u32], text: Option<&str>) -> String {
    let mut spec: Vec<String> = part.iter().map(u32::to_string).collect();
    if let Some(t) = text {
        spec.push(t.to_string());
    }
    format!("BODY[{}]", spec.join("."))
}

/// The sections to record, outermost first: every part number the
/// structure has, the MIME header of every part of a multipart, and
/// HEADER/TEXT of the message and of every encapsulated message.
fn sections_of(bs: &BodyStructure) -> Vec<Section> {
    let mut out = vec![
        Section { part: vec![], text: Some(SectionText::Header) },
        Section { part: vec![], text: Some(SectionText::Text) },
    ];
    message_body_sections(bs, &[], &mut out);
    out
}

/// The parts of a message entity whose body structure is `bs`, numbered
/// under `prefix`: a multipart's children, or the body as part 1.
fn message_body_sections(bs: &BodyStructure, prefix: &[u32], out: &mut Vec<Section>) {
    match &bs.body {
        Body::Multipart(children) => multipart_children(children, prefix, out),
        Body::Single(_) => {
            let mut path = prefix.to_vec();
            path.push(1);
            part_sections(bs, &path, false, out);
        }
    }
}

fn multipart_children(children: &[BodyStructure], prefix: &[u32], out: &mut Vec<Section>) {
    for (i, child) in children.iter().enumerate() {
        let mut path = prefix.to_vec();
        path.push(u32::try_from(i + 1).expect("part count fits u32"));
        part_sections(child, &path, true, out);
    }
}

fn part_sections(bs: &BodyStructure, path: &[u32], in_multipart: bool, out: &mut Vec<Section>) {
    out.push(Section { part: path.to_vec(), text: None });
    if in_multipart {
        out.push(Section { part: path.to_vec(), text: Some(SectionText::Mime) });
    }
    match &bs.body {
        Body::Multipart(children) if in_multipart => multipart_children(children, path, out),
        Body::Multipart(_) => {}
        Body::Single(single) => {
            if let SingleKind::Message { body, .. } = &single.kind {
                out.push(Section { part: path.to_vec(), text: Some(SectionText::Header) });
                out.push(Section { part: path.to_vec(), text: Some(SectionText::Text) });
                message_body_sections(body, path, out);
            }
        }
    }
}

/// Everything the golden file of `raw` records.
fn generate(raw: &[u8]) -> Vec<Item> {
    let msg = ParsedMessage::new(raw);
    let mut items = Vec::new();

    let mut out = Vec::new();
    write_envelope(&mut out, &msg.envelope());
    items.push(Item { key: "ENVELOPE".into(), value: escape(&out) });

    let bs = msg.body_structure();
    let mut out = Vec::new();
    write_body_structure(&mut out, &bs, true);
    items.push(Item { key: "BODYSTRUCTURE".into(), value: escape(&out) });
    let mut out = Vec::new();
    write_body_structure(&mut out, &bs, false);
    items.push(Item { key: "BODY".into(), value: escape(&out) });

    for section in sections_of(&bs) {
        let text = section.text.as_ref().map(|t| match t {
            SectionText::Header => "HEADER",
            SectionText::Text => "TEXT",
            SectionText::Mime => "MIME",
            SectionText::HeaderFields(_) | SectionText::HeaderFieldsNot(_) => unreachable!("not generated"),
        });
        let key = section_key(&section.part, text);
        let value = match msg.section(&section) {
            None => "NIL".to_string(),
            Some(data) => {
                let max = if section.text == Some(SectionText::Mime) { SHOW_MIME_MAX } else { SHOW_CONTENT_MAX };
                if data.len() <= max {
                    format!("{} octets \"{}\"", data.len(), escape(&data))
                } else {
                    format!("{} octets", data.len())
                }
            }
        };
        items.push(Item { key, value });
    }
    items
}

#[test]
fn corpus_matches_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| !v.is_empty() && v != "0");
    let dir = corpus_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/corpus exists")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".eml").map(str::to_string)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 20, "corpus has only {} messages", names.len());

    // Every known-wrong entry must name an existing case and item.
    let mut known_unused: BTreeSet<(&'static str, &'static str)> =
        KNOWN_WRONG.iter().map(|(c, k, _)| (*c, *k)).collect();

    let mut failures = Vec::new();
    for name in &names {
        let raw = std::fs::read(dir.join(format!("{name}.eml"))).expect("read .eml");
        // The store guarantees CRLF; a checkout that converted line ends
        // would test something else.
        let bare_lf = raw.iter().enumerate().filter(|&(i, &b)| b == b'\n' && (i == 0 || raw[i - 1] != b'\r')).count();
        assert_eq!(bare_lf, 0, "{name}.eml has {bare_lf} bare LF line ends; the corpus must be CRLF");

        let got = generate(&raw);
        let golden_path = dir.join(format!("{name}.golden"));
        let old = std::fs::read_to_string(&golden_path).ok();
        let expected = old.as_deref().map(parse_golden);
        let is_known_wrong = |key: &str| KNOWN_WRONG.iter().any(|(c, k, _)| *c == name.as_str() && *k == key);

        if update {
            // Keep hand-written lines of known-wrong items and comments.
            let mut merged = Vec::new();
            if let Some(text) = old.as_deref() {
                merged.extend(
                    text.lines()
                        .filter(|l| l.starts_with('#'))
                        .map(|l| Item { key: l.to_string(), value: String::new() }),
                );
            }
            for item in &got {
                let keep = is_known_wrong(&item.key)
                    .then(|| expected.as_ref().and_then(|e| e.iter().find(|x| x.key == item.key)).cloned())
                    .flatten();
                merged.push(keep.unwrap_or_else(|| item.clone()));
            }
            let text: String = render_golden(&merged).lines().map(|l| format!("{}\n", l.trim_end())).collect();
            std::fs::write(&golden_path, text).expect("write golden");
            known_unused.retain(|(c, k)| !(*c == name.as_str() && got.iter().any(|i| i.key == *k)));
            continue;
        }

        let Some(expected) = expected else {
            failures.push(format!("{name}: no golden file; run with UPDATE_GOLDEN=1 and review it"));
            continue;
        };
        let got_keys: Vec<&str> = got.iter().map(|i| i.key.as_str()).collect();
        let exp_keys: Vec<&str> = expected.iter().map(|i| i.key.as_str()).collect();
        if got_keys != exp_keys {
            failures.push(format!("{name}: items differ\n  expected: {exp_keys:?}\n  got:      {got_keys:?}"));
            continue;
        }
        for (g, e) in got.iter().zip(&expected) {
            if is_known_wrong(&g.key) {
                known_unused.retain(|(c, k)| !(*c == name.as_str() && *k == g.key));
                if g.value == e.value {
                    failures.push(format!(
                        "{name} {}: listed in KNOWN_WRONG but now matches the golden file; remove the entry",
                        g.key
                    ));
                }
            } else if g.value != e.value {
                failures.push(format!("{name} {}:\n  expected: {}\n  got:      {}", g.key, e.value, g.value));
            }
        }
    }
    for (case, key) in known_unused {
        failures.push(format!("KNOWN_WRONG entry ({case}, {key}) matches no item of the corpus"));
    }
    assert!(failures.is_empty(), "{} golden mismatch(es):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn no_orphan_golden_files() {
    let dir = corpus_dir();
    for entry in std::fs::read_dir(&dir).expect("tests/corpus exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "golden") {
            assert!(path.with_extension("eml").exists(), "{} has no .eml", path.display());
        }
    }
}

#[test]
fn escape_is_readable_and_total() {
    assert_eq!(escape(b"a\r\nb\t\\"), "a\\r\\nb\\t\\\\");
    assert_eq!(escape("Grüße".as_bytes()), "Grüße");
    assert_eq!(escape(b"R\xe9union\x00"), "R\\xE9union\\x00");
}
