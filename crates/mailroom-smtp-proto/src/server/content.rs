//! Message content readers: DATA (dot-stuffed, RFC 5321 §4.5.2) and BDAT
//! chunks (raw, RFC 3030 §2), with the checks both share.
//!
//! The DATA reader is a byte-level state machine in which only the exact
//! octets `<CRLF>.<CRLF>` end the message (RFC 5321 §4.1.1.4). A bare CR or
//! bare LF never starts a line, so `\n.\n`, `\r.\r`, `\n.\r\n` and the other
//! SMTP smuggling sequences (CVE-2023-51764) are content, and they taint the
//! message so that it is refused rather than stored.
//!
//! ```text
//! state          octet  next state
//! LineStart      '.'    Dot         the dot is dropped (RFC 5321 §4.5.2)
//! Dot            CR     DotCr
//! DotCr          LF     end of message: only CRLF '.' CRLF gets here
//! Cr             LF     LineStart   CRLF is content
//! Cr, DotCr      CR     Cr          taint: bare CR
//! other          CR     Cr
//! any            LF     Mid         taint: bare LF, never a line start
//! Cr, DotCr      other  Mid         taint: bare CR
//! other          other  Mid         content
//! ```

use crate::reply::Reply;
use crate::reply::fixed::*;

/// Why a message in progress will be refused once it has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Problem {
    /// Over `max_message_size` (RFC 1870 §6).
    TooBig,
    /// A bare CR or LF (RFC 5321 §2.3.8; we do not offer BINARYMIME).
    BareCrLf,
    /// A line over `max_text_line` (RFC 5321 §4.5.3.1.6).
    LongLine,
}

/// Counts octets and lines of a message and remembers its first problem.
#[derive(Debug)]
pub(super) struct Tally {
    line_len: usize,
    total: u64,
    problem: Option<Problem>,
    max_line: usize,
    max_size: u64,
}

impl Tally {
    pub(super) fn new(max_line: usize, max_size: u64) -> Tally {
        Tally { line_len: 0, total: 0, problem: None, max_line, max_size }
    }

    /// Counts `n` octets of the current line (CR and LF included).
    fn add(&mut self, n: usize) {
        self.line_len = self.line_len.saturating_add(n);
        self.total = self.total.saturating_add(n as u64);
        // RFC 5321 §4.5.3.1.6: at most 1000 octets per line, CRLF included.
        if self.line_len > self.max_line {
            self.taint(Problem::LongLine);
        }
        // RFC 1870 §6: refuse, with 552, a message over the announced size.
        if self.total > self.max_size {
            self.taint(Problem::TooBig);
        }
    }

    fn end_line(&mut self) {
        self.line_len = 0;
    }

    /// Records a problem; the first one found is the one reported.
    fn taint(&mut self, problem: Problem) {
        self.problem.get_or_insert(problem);
    }

    pub(super) fn is_acceptable(&self) -> bool {
        self.problem.is_none()
    }

    /// The reply refusing the message, if it has a problem.
    pub(super) fn refusal(&self) -> Option<Reply> {
        self.problem.map(|p| match p {
            Problem::TooBig => r552_too_big(),
            Problem::BareCrLf => r554_bare_cr_lf_in_data(),
            Problem::LongLine => r554_long_line(self.max_line),
        })
    }
}

/// Where the DATA reader is within a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// After a CRLF, or at the very start of the content.
    LineStart,
    /// Inside a line.
    Mid,
    /// After a CR inside a line: only LF may follow.
    Cr,
    /// After a line's leading dot, which is not content.
    Dot,
    /// After `.` CR at a line start: LF ends the message.
    DotCr,
}

/// Reads DATA content up to `<CRLF>.<CRLF>`, removing dot-stuffing.
#[derive(Debug)]
pub(super) struct DataReader {
    at: At,
    pub(super) tally: Tally,
}

impl DataReader {
    pub(super) fn new(tally: Tally) -> DataReader {
        // RFC 5321 §4.1.1.4: the CRLF ending the DATA command counts as the
        // line break before a terminator, so `.` CRLF at once is empty.
        DataReader { at: At::LineStart, tally }
    }

    /// Reads `input`, appending content to `out` while the message is still
    /// acceptable. Returns how many octets were consumed and whether the
    /// terminator was among them; input after it is left for commands.
    pub(super) fn read(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, bool) {
        let mut i = 0;
        while i < input.len() {
            if self.at == At::Mid || (self.at == At::LineStart && input[i] != b'.') {
                i += self.lines(&input[i..], out);
                if i == input.len() {
                    break;
                }
            }
            let b = input[i];
            i += 1;
            if self.byte(b, out) {
                return (i, true);
            }
        }
        (i, false)
    }

    /// The common case, in bulk: from inside a line (or a line start not
    /// at a dot), consumes every complete line ended by CRLF and followed
    /// by an octet other than `.`, then the content up to the next CR or
    /// LF, which it leaves to [`DataReader::byte`]. The content goes to
    /// `out` in one copy, up to where the message stopped being acceptable.
    /// Returns how many octets it consumed.
    fn lines(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
        let (mut done, mut kept) = (0, 0);
        let mut line_start = self.at == At::LineStart;
        loop {
            let rest = &input[done..];
            let k = memchr::memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
            let whole = rest.get(k) == Some(&b'\r')
                && rest.get(k + 1) == Some(&b'\n')
                && rest.get(k + 2).is_some_and(|&next| next != b'.');
            if whole {
                self.tally.add(k + 2);
                self.tally.end_line();
                done += k + 2;
                line_start = true;
            } else {
                self.tally.add(k);
                done += k;
                line_start &= k == 0;
            }
            if self.tally.is_acceptable() {
                kept = done;
            }
            if !whole {
                break;
            }
        }
        out.extend_from_slice(&input[..kept]);
        self.at = if line_start { At::LineStart } else { At::Mid };
        done
    }

    fn emit(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        self.tally.add(bytes.len());
        if self.tally.is_acceptable() {
            out.extend_from_slice(bytes);
        }
    }

    /// Advances by one octet; true when the message has ended.
    fn byte(&mut self, b: u8, out: &mut Vec<u8>) -> bool {
        self.at = match (self.at, b) {
            // RFC 5321 §4.5.2: a line's leading dot is removed.
            (At::LineStart, b'.') => At::Dot,
            (At::DotCr, b'\n') => return true,
            (At::Cr, b'\n') => {
                self.emit(b"\r\n", out);
                self.tally.end_line();
                At::LineStart
            }
            (_, b'\r') => {
                // A CR after a CR, or after `.` CR, was not followed by LF.
                if matches!(self.at, At::Cr | At::DotCr) {
                    self.bare_cr_lf();
                }
                if self.at == At::Dot { At::DotCr } else { At::Cr }
            }
            // RFC 5321 §2.3.8: a bare LF is not a line ending (never `\n.\n`).
            (_, b'\n') => {
                self.bare_cr_lf();
                At::Mid
            }
            (At::Cr | At::DotCr, _) => {
                self.bare_cr_lf();
                At::Mid
            }
            (At::LineStart | At::Mid | At::Dot, _) => {
                self.emit(&[b], out);
                At::Mid
            }
        };
        false
    }

    fn bare_cr_lf(&mut self) {
        self.tally.taint(Problem::BareCrLf);
    }
}

/// Checks raw BDAT content across the chunks of one message: BDAT octets
/// are not unstuffed, but without BINARYMIME they must still be text with
/// CRLF line endings (RFC 3030 §3).
#[derive(Debug)]
pub(super) struct BdatCheck {
    after_cr: bool,
    pub(super) tally: Tally,
}

impl BdatCheck {
    pub(super) fn new(tally: Tally) -> BdatCheck {
        BdatCheck { after_cr: false, tally }
    }

    /// Checks the next octets of the message, which may split a CRLF.
    pub(super) fn scan(&mut self, mut bytes: &[u8]) {
        while let Some((&b, tail)) = bytes.split_first() {
            if !self.after_cr && b != b'\r' && b != b'\n' {
                let n = bytes.iter().position(|&b| b == b'\r' || b == b'\n').unwrap_or(bytes.len());
                self.tally.add(n);
                bytes = &bytes[n..];
            } else {
                self.line_break_octet(b);
                bytes = tail;
            }
        }
    }

    /// Checks a CR or LF, or any octet right after a CR.
    fn line_break_octet(&mut self, b: u8) {
        self.tally.add(1);
        match (self.after_cr, b) {
            (true, b'\n') => {
                self.after_cr = false;
                self.tally.end_line();
            }
            (after_cr, b'\r') => {
                if after_cr {
                    self.tally.taint(Problem::BareCrLf);
                }
                self.after_cr = true;
            }
            // RFC 5321 §2.3.8: a bare LF, or a CR followed by anything but LF.
            _ => {
                self.tally.taint(Problem::BareCrLf);
                self.after_cr = false;
            }
        }
    }

    /// Ends the message: a CR as its very last octet is a bare CR.
    pub(super) fn finish(&mut self) {
        if self.after_cr {
            self.tally.taint(Problem::BareCrLf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `input` in pieces of the given sizes (cycled): whether the
    /// message ended, where, its content, and its problem.
    fn read_in_pieces(input: &[u8], pieces: &[usize]) -> (Option<usize>, Vec<u8>, Option<Problem>) {
        let mut r = DataReader::new(Tally::new(12, 1 << 20));
        let (mut out, mut at) = (Vec::new(), 0);
        // A refused message's partial content is never used.
        let outcome = |at, out: Vec<u8>, r: &DataReader| {
            let out = if r.tally.is_acceptable() { out } else { Vec::new() };
            (at, out, r.tally.problem)
        };
        for &n in pieces.iter().cycle() {
            if at == input.len() {
                return outcome(None, out, &r);
            }
            let end = (at + n).min(input.len());
            let (used, done) = r.read(&input[at..end], &mut out);
            at += used;
            if done {
                return outcome(Some(at), out, &r);
            }
            assert_eq!(at, end, "input left over without an end of message");
        }
        unreachable!()
    }

    #[test]
    fn bulk_lines_and_single_octets_read_alike() {
        // Random content over the octets that matter, read whole, octet by
        // octet and in odd pieces: the same end, content and problem.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let len = (next() % 120) as usize;
            let input: Vec<u8> = (0..len)
                .map(|_| match next() % 16 {
                    0..=2 => b'\r',
                    3..=5 => b'\n',
                    6 | 7 => b'.',
                    _ => b'a',
                })
                .collect();
            let whole = read_in_pieces(&input, &[input.len().max(1)]);
            assert_eq!(read_in_pieces(&input, &[1]), whole, "{input:?}");
            assert_eq!(read_in_pieces(&input, &[3, 1, 7, 2]), whole, "{input:?}");
        }
    }

    fn data(input: &[u8]) -> (Vec<u8>, usize, bool, Option<Problem>) {
        let mut r = DataReader::new(Tally::new(1000, 1 << 20));
        let mut out = Vec::new();
        let (n, done) = r.read(input, &mut out);
        (out, n, done, r.tally.problem)
    }

    #[test]
    fn terminator_ends_and_leaves_the_rest() {
        assert_eq!(data(b"a\r\n.\r\nNOOP\r\n"), (b"a\r\n".to_vec(), 6, true, None));
        assert_eq!(data(b".\r\n"), (vec![], 3, true, None));
        assert_eq!(data(b"a\r\n.."), (b"a\r\n.".to_vec(), 5, false, None));
    }

    #[test]
    fn dots_are_unstuffed() {
        assert_eq!(data(b"..x\r\n..\r\n.\r\n").0, b".x\r\n.\r\n");
        assert_eq!(data(b"a.b\r\n.\r\n").0, b"a.b\r\n");
    }

    #[test]
    fn smuggling_sequences_never_end_data() {
        for s in [&b"a\n.\nb"[..], b"a\r.\rb", b"a\n.\r\nb", b"a\r\n.\nb", b"a\r\n.\rb", b"a\r.\r\nb", b"a\r\n.\r\r\nb"]
        {
            let (_, n, done, problem) = data(s);
            assert!(!done, "{s:?} ended DATA");
            assert_eq!(n, s.len());
            assert_eq!(problem, Some(Problem::BareCrLf), "{s:?}");
        }
    }

    #[test]
    fn split_input_gives_the_same_result() {
        let input = b"x\r\n..y\r\n\r\n.\r\n";
        let mut r = DataReader::new(Tally::new(1000, 1 << 20));
        let mut out = Vec::new();
        for (i, b) in input.iter().enumerate() {
            let (n, done) = r.read(&[*b], &mut out);
            assert_eq!(n, 1);
            assert_eq!(done, i == input.len() - 1);
        }
        assert_eq!(out, b"x\r\n.y\r\n\r\n");
    }

    #[test]
    fn limits_taint_and_stop_output() {
        let mut r = DataReader::new(Tally::new(10, 12));
        let mut out = Vec::new();
        r.read(b"12345678\r\n", &mut out);
        assert!(r.tally.is_acceptable());
        r.read(b"abc", &mut out);
        assert_eq!(r.tally.problem, Some(Problem::TooBig));
        // The run that does not fit is not passed on.
        assert_eq!(out, b"12345678\r\n");
        let mut r = DataReader::new(Tally::new(10, 100));
        r.read(b"123456789\r\n", &mut Vec::new());
        assert_eq!(r.tally.problem, Some(Problem::LongLine));
    }

    #[test]
    fn bdat_check_allows_split_crlf_only() {
        let mut c = BdatCheck::new(Tally::new(1000, 100));
        c.scan(b"a\r");
        c.scan(b"\nb\r");
        assert!(c.tally.is_acceptable());
        c.finish();
        assert_eq!(c.tally.problem, Some(Problem::BareCrLf));
        for bad in [&b"a\nb"[..], b"a\rb", b"\r\r\n"] {
            let mut c = BdatCheck::new(Tally::new(1000, 100));
            c.scan(bad);
            assert_eq!(c.tally.problem, Some(Problem::BareCrLf), "{bad:?}");
        }
    }
}
