//! Message content on the wire: the TOP cut (RFC 1939 §7) and
//! byte-stuffing of multi-line responses (RFC 1939 §3).
//!
//! RFC 1939 §3: "If any line of the multi-line response begins with the
//! termination octet, the line is 'byte-stuffed' by pre-pending the
//! termination octet to that line". The response ends with `.` CRLF on a
//! line of its own.
//!
//! Implementation notes:
//! - RETR streams whole messages, so stuffing must run at memory speed:
//!   memmem finds each `\n.`, the runs between are copied as slices, and
//!   the output is reserved once, with room for more stuffed dots than
//!   real mail has. (Measured on 50 MB: about 1 GB/s for ordinary text
//!   including page faults on the fresh output; an exact counting pass
//!   cost more than the regrowth it saves in pathological dot-dense
//!   content.)
//! - A `.` after a bare LF is stuffed too. Stored mail should end lines in
//!   CRLF, but many clients also take a bare LF as a line end, and for
//!   them an unstuffed `\n.\r\n` would end the message early.

use memchr::memmem;

/// The part of `content` that `TOP msg lines` sends: the header section up
/// to and including the empty line that ends it, then the first `lines`
/// lines of the body. With no empty line the whole message is headers
/// (RFC 5322 §2.1 makes the body optional); with fewer body lines than
/// asked the whole message is sent.
pub(crate) fn top(content: &[u8], lines: u64) -> &[u8] {
    let Some(body) = body_start(content) else { return content };
    if lines == 0 {
        return &content[..body];
    }
    // lines ≥ 1 here, so the subtraction cannot underflow; a count beyond
    // usize certainly exceeds the body.
    let Ok(last) = usize::try_from(lines - 1) else { return content };
    match memchr::memchr_iter(b'\n', &content[body..]).nth(last) {
        Some(lf) => &content[..body + lf + 1],
        None => content,
    }
}

/// The offset just past the first empty line, if there is one.
fn body_start(content: &[u8]) -> Option<usize> {
    if content.starts_with(b"\r\n") {
        return Some(2);
    }
    if content.starts_with(b"\n") {
        return Some(1);
    }
    let crlf = memmem::find(content, b"\n\r\n").map(|i| i + 3);
    // A bare-LF empty line counts too, if it comes first; search only
    // before the CRLF one so a big message is scanned once.
    let before = &content[..crlf.unwrap_or(content.len())];
    memmem::find(before, b"\n\n").map(|i| i + 2).or(crlf)
}

/// How many octets the client receives for `content` once it undoes the
/// stuffing: the content plus the CRLF [`write_stuffed`] adds when the
/// last line lacks one.
pub(crate) fn unstuffed_len(content: &[u8]) -> u64 {
    let added = if needs_crlf(content) { 2 } else { 0 };
    content.len() as u64 + added
}

/// True when the content's last line lacks its CRLF (RFC 1939 §3: every
/// line of a multi-line response ends in CRLF, and the terminator must
/// be on a line of its own).
fn needs_crlf(content: &[u8]) -> bool {
    !content.is_empty() && !content.ends_with(b"\r\n")
}

/// Appends `content` byte-stuffed, a CRLF if its last line lacks one, and
/// the `.` CRLF terminator (RFC 1939 §3).
pub(crate) fn write_stuffed(out: &mut Vec<u8>, content: &[u8]) {
    let finder = memmem::Finder::new(b"\n.");
    let starts_with_dot = content.first() == Some(&b'.');
    let crlf = needs_crlf(content);
    // The content, one stuffed dot per 64 octets (real mail has far
    // fewer), the leading dot, the added CRLF and the terminator.
    out.reserve(content.len() + content.len() / 64 + 6);
    if starts_with_dot {
        out.push(b'.');
    }
    let mut start = 0;
    for lf in finder.find_iter(content) {
        // Copy through the LF, then double the dot that follows it.
        out.extend_from_slice(&content[start..=lf]);
        out.push(b'.');
        start = lf + 1;
    }
    out.extend_from_slice(&content[start..]);
    if crlf {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuffed(content: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_stuffed(&mut out, content);
        out
    }

    /// What a client does: drop the terminator, undo the stuffing.
    fn unstuff(wire: &[u8]) -> Vec<u8> {
        let body = wire.strip_suffix(b".\r\n").expect("terminator");
        let mut out = Vec::with_capacity(body.len());
        let mut line_start = true;
        for &b in body {
            if !(line_start && b == b'.') {
                out.push(b);
                line_start = b == b'\n';
            } else {
                line_start = false;
            }
        }
        out
    }

    #[test]
    fn stuffing_doubles_leading_dots_only() {
        for (content, wire) in [
            (&b""[..], &b".\r\n"[..]),
            (b"a\r\n", b"a\r\n.\r\n"),
            (b".\r\n", b"..\r\n.\r\n"),
            (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),
            (b"..x\r\n.y.\r\n", b"...x\r\n..y.\r\n.\r\n"),
            (b"a.b\r\n x\r\n", b"a.b\r\n x\r\n.\r\n"),
            (b"a\n.\n", b"a\n..\n\r\n.\r\n"),
            (b"no end", b"no end\r\n.\r\n"),
            (b"a\r\n.", b"a\r\n..\r\n.\r\n"),
        ] {
            assert_eq!(stuffed(content), wire, "{:?}", String::from_utf8_lossy(content));
        }
    }

    #[test]
    fn unstuffed_len_counts_the_added_crlf() {
        assert_eq!(unstuffed_len(b""), 0);
        assert_eq!(unstuffed_len(b"a\r\n"), 3);
        assert_eq!(unstuffed_len(b"a"), 3);
    }

    #[test]
    fn top_cuts_after_headers_and_lines() {
        let m = b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3\r\n";
        assert_eq!(top(m, 0), b"A: 1\r\nB: 2\r\n\r\n");
        assert_eq!(top(m, 1), b"A: 1\r\nB: 2\r\n\r\nl1\r\n");
        assert_eq!(top(m, 3), m);
        assert_eq!(top(m, 4), m);
        assert_eq!(top(m, u64::MAX), m);
        // No empty line: all headers.
        assert_eq!(top(b"A: 1\r\nB: 2\r\n", 0), b"A: 1\r\nB: 2\r\n");
        // An empty header section.
        assert_eq!(top(b"\r\nbody\r\n", 0), b"\r\n");
        assert_eq!(top(b"\nbody\n", 0), b"\n");
        // A last line without line end counts as a line.
        assert_eq!(top(b"A: 1\r\n\r\nl1\r\nl2", 2), b"A: 1\r\n\r\nl1\r\nl2");
        // Bare-LF empty line before a CRLF one.
        assert_eq!(top(b"A: 1\n\nb\r\n\r\nc\r\n", 0), b"A: 1\n\n");
        assert_eq!(top(b"A: 1\r\n\r\nb\n\nc\r\n", 0), b"A: 1\r\n\r\n");
    }

    /// A large message with many dot lines round-trips exactly; correctness
    /// only (speed is the benchmark's business).
    #[test]
    fn eight_megabytes_round_trip() {
        let lines: [&[u8]; 6] = [b"plain text line\r\n", b".\r\n", b"..two\r\n", b"\r\n", b".x\r\n", b"a.b.c\r\n"];
        let mut content = Vec::with_capacity(8 * 1024 * 1024 + 64);
        let mut dot_lines = 0;
        let mut i = 0;
        while content.len() < 8 * 1024 * 1024 {
            let line = lines[i % lines.len()];
            dot_lines += usize::from(line[0] == b'.');
            content.extend_from_slice(line);
            i += 1;
        }
        let wire = stuffed(&content);
        assert_eq!(wire.len(), content.len() + dot_lines + 3);
        assert!(wire.ends_with(b"\r\n.\r\n"));
        // No line on the wire is a lone dot before the terminator.
        assert!(memmem::find(&wire[..wire.len() - 3], b"\n.\r\n").is_none());
        assert_eq!(unstuff(&wire), content);
    }
}
