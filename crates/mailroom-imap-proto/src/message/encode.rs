//! Wire forms of ENVELOPE, BODY and BODYSTRUCTURE (RFC 9051 §7.5.2 and
//! the `envelope` and `body` rules of §9). Every string goes through
//! [`crate::wire`], so quoting decisions live in one place.

use super::envelope::{Address, Envelope};
use super::mime::Param;
use super::structure::{Body, BodyStructure, SingleKind};
use crate::wire::{write_nstring, write_string};

/// Writes `(date subject from sender reply-to to cc bcc in-reply-to
/// message-id)`.
pub fn write_envelope(out: &mut Vec<u8>, env: &Envelope) {
    out.push(b'(');
    write_nstring(out, env.date.as_deref());
    out.push(b' ');
    write_nstring(out, env.subject.as_deref());
    for list in [&env.from, &env.sender, &env.reply_to, &env.to, &env.cc, &env.bcc] {
        out.push(b' ');
        write_address_list(out, list);
    }
    out.push(b' ');
    write_nstring(out, env.in_reply_to.as_deref());
    out.push(b' ');
    write_nstring(out, env.message_id.as_deref());
    out.push(b')');
}

fn write_address_list(out: &mut Vec<u8>, list: &[Address]) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        out.push(b'(');
        write_nstring(out, a.name.as_deref());
        out.push(b' ');
        write_nstring(out, a.adl.as_deref());
        out.push(b' ');
        write_nstring(out, a.mailbox.as_deref());
        out.push(b' ');
        write_nstring(out, a.host.as_deref());
        out.push(b')');
    }
    out.push(b')');
}

/// Writes a `body`: with `extensible` the BODYSTRUCTURE form (extension
/// data: MD5, disposition, language, location; a multipart's parameters),
/// without it the BODY form.
pub fn write_body_structure(out: &mut Vec<u8>, bs: &BodyStructure, extensible: bool) {
    out.push(b'(');
    match &bs.body {
        Body::Multipart(parts) => {
            for part in parts {
                write_body_structure(out, part, extensible);
            }
            out.push(b' ');
            write_string(out, &bs.subtype);
            if extensible {
                out.push(b' ');
                write_params(out, &bs.params);
                write_common_ext(out, bs);
            }
        }
        Body::Single(single) => {
            write_string(out, &bs.media_type);
            out.push(b' ');
            write_string(out, &bs.subtype);
            out.push(b' ');
            write_params(out, &bs.params);
            out.push(b' ');
            write_nstring(out, single.id.as_deref());
            out.push(b' ');
            write_nstring(out, single.description.as_deref());
            out.push(b' ');
            write_string(out, &single.encoding);
            out.push(b' ');
            out.extend_from_slice(single.size.to_string().as_bytes());
            match &single.kind {
                SingleKind::Basic => {}
                SingleKind::Text { lines } => {
                    out.push(b' ');
                    out.extend_from_slice(lines.to_string().as_bytes());
                }
                SingleKind::Message { envelope, body, lines } => {
                    out.push(b' ');
                    write_envelope(out, envelope);
                    out.push(b' ');
                    write_body_structure(out, body, extensible);
                    out.push(b' ');
                    out.extend_from_slice(lines.to_string().as_bytes());
                }
            }
            if extensible {
                out.push(b' ');
                write_nstring(out, single.md5.as_deref());
                write_common_ext(out, bs);
            }
        }
    }
    out.push(b')');
}

/// ` disposition language location`, shared by both kinds of part.
fn write_common_ext(out: &mut Vec<u8>, bs: &BodyStructure) {
    out.push(b' ');
    match &bs.disposition {
        None => out.extend_from_slice(b"NIL"),
        Some(d) => {
            out.push(b'(');
            write_string(out, &d.kind);
            out.push(b' ');
            write_params(out, &d.params);
            out.push(b')');
        }
    }
    out.push(b' ');
    if bs.language.is_empty() {
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b'(');
        for (i, tag) in bs.language.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            write_string(out, tag);
        }
        out.push(b')');
    }
    out.push(b' ');
    write_nstring(out, bs.location.as_deref());
}

fn write_params(out: &mut Vec<u8>, params: &[Param]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        write_string(out, name);
        out.push(b' ');
        write_string(out, value);
    }
    out.push(b')');
}
