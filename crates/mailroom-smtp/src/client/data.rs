//! The message as it goes on the wire: dot-stuffed for DATA (RFC 5321
//! §4.5.2), as is for BDAT (RFC 3030), always ending in CRLF.
//!
//! The store guarantees CRLF line ends; the only repair made here is a
//! missing final CRLF, which DATA needs before its terminating dot.

use memchr::memmem;

/// How much of the message is stuffed and written at a time: large
/// enough that a typical message is one write, small enough that a huge
/// one is never copied whole.
pub(super) const CHUNK: usize = 64 * 1024;

/// Appends `chunk` to `out` with a `.` doubled at the start of every line;
/// `at_line_start` says whether the chunk begins a line (the previous
/// chunk ended with LF, or this is the first).
pub(super) fn stuff(chunk: &[u8], at_line_start: bool, out: &mut Vec<u8>) {
    let mut from = 0;
    if at_line_start && chunk.first() == Some(&b'.') {
        out.push(b'.');
    }
    for lf in memmem::find_iter(chunk, b"\n.") {
        out.extend_from_slice(&chunk[from..=lf]);
        out.push(b'.');
        from = lf + 1;
    }
    out.extend_from_slice(&chunk[from..]);
}

/// What follows the stuffed message: the end-of-data mark, after a CRLF
/// when the message does not already end with one.
pub(super) fn data_terminator(message: &[u8]) -> &'static [u8] {
    if message.ends_with(b"\r\n") { b".\r\n" } else { b"\r\n.\r\n" }
}

/// The CRLF BDAT needs after a message that does not end with one.
pub(super) fn missing_crlf(message: &[u8]) -> &'static [u8] {
    if message.ends_with(b"\r\n") { b"" } else { b"\r\n" }
}

/// Whether the message has octets above 127 (RFC 6152 `BODY=8BITMIME`).
pub(super) fn is_8bit(message: &[u8]) -> bool {
    !message.is_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuffed(message: &[u8], chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at_line_start = true;
        for piece in message.chunks(chunk) {
            stuff(piece, at_line_start, &mut out);
            at_line_start = piece.ends_with(b"\n");
        }
        out.extend_from_slice(data_terminator(message));
        out
    }

    #[test]
    fn dots_at_line_starts_are_doubled() {
        let message = b".first\r\nmid.dle\r\n.\r\n..two\r\nend.\r\n";
        let want = b"..first\r\nmid.dle\r\n..\r\n...two\r\nend.\r\n.\r\n";
        for chunk in 1..=message.len() {
            assert_eq!(stuffed(message, chunk), want, "chunk size {chunk}");
        }
    }

    #[test]
    fn final_crlf_added_when_missing() {
        assert_eq!(stuffed(b"a\r\nb", 64), b"a\r\nb\r\n.\r\n");
        assert_eq!(stuffed(b"", 64), b"\r\n.\r\n");
        assert_eq!(missing_crlf(b"a\r\n"), b"");
        assert_eq!(missing_crlf(b"a"), b"\r\n");
    }

    #[test]
    fn eight_bit() {
        assert!(!is_8bit(b"plain\r\n"));
        assert!(is_8bit("caf\u{e9}\r\n".as_bytes()));
    }
}
