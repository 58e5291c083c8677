//! Splitting input into whole commands (RFC 9051 §2.2, §4.3): lines and
//! the literals they announce, with every buffer bounded.
//!
//! A command is collected in one buffer, its lines with CRLF (a bare LF
//! is taken as a line end and written as CRLF) and its literal data
//! verbatim, then handed to the parser whole. Before a literal is read its
//! announced size is checked against the command's budget:
//! [`Limits::max_command_size`] for every command, plus
//! [`Limits::max_message_size`] for APPEND, whose message literal may not
//! exceed [`Limits::max_message_size`] either. A synchronizing literal over
//! budget is refused at once (the client then sends nothing of it); a
//! non-synchronizing one (LITERAL+, RFC 7888 §4) has to be received, so its
//! octets are counted and dropped and the command refused when it ends.
//! A line longer than [`Limits::max_line`] is dropped up to its LF and the
//! command refused.

use memchr::memchr;

use crate::Limits;
use crate::command::Refusal;
use crate::command::lexer;
use crate::response::Code;

/// What [`Framer::step`] found.
#[derive(Debug)]
pub(crate) enum Step {
    /// More input is needed.
    NeedInput,
    /// A whole command is ready: take it with [`Framer::take`].
    Command,
    /// A synchronizing literal was accepted: send `+` and go on.
    Continue,
    /// The command is refused and over; the tag when known.
    Refuse(Option<String>, Refusal),
}

/// What is being read.
#[derive(Debug)]
enum Mode {
    Line,
    /// Literal octets still to copy into the command.
    Literal(u64),
    /// Literal octets still to drop (a refused non-synchronizing literal).
    DropLiteral(u64),
    /// The rest of an over-long line, up to its LF.
    DropLine,
}

/// Collects one command at a time.
#[derive(Debug)]
pub(crate) struct Framer {
    msg: Vec<u8>,
    mode: Mode,
    /// The current command is refused; this is sent once its end has
    /// been read.
    refusing: Option<(Option<String>, Refusal)>,
}

/// The smallest capacity kept between commands; a large APPEND's buffer
/// is released after it.
const KEEP_COMMAND_CAPACITY: usize = 64 * 1024;

/// A literal announcement at the end of a line, without CRLF:
/// `{n}`, `{n+}`, or `~{n}` (literal8).
fn literal_at_end(line: &[u8]) -> Option<(u64, bool)> {
    let body = line.strip_suffix(b"}")?;
    let open = memchr::memrchr(b'{', body)?;
    let inner = &body[open + 1..];
    let (digits, sync) = match inner.strip_suffix(b"+") {
        Some(d) => (d, false),
        None => (inner, true),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // An absurd number is refused as too big, like any large one.
    let n = std::str::from_utf8(digits).ok()?.parse::<u64>().unwrap_or(u64::MAX);
    Some((n, sync))
}

impl Framer {
    pub fn new() -> Framer {
        Framer { msg: Vec::new(), mode: Mode::Line, refusing: None }
    }

    /// Takes the finished command, leaving the buffer for the next.
    pub fn take(&mut self) -> Vec<u8> {
        let msg = std::mem::take(&mut self.msg);
        if msg.capacity() <= KEEP_COMMAND_CAPACITY {
            self.msg = Vec::with_capacity(msg.capacity());
        }
        msg
    }

    /// Forgets any partly read command (after STARTTLS or a close).
    pub fn reset(&mut self) {
        *self = Framer::new();
    }

    /// Consumes input from the front of `input` and says what it found;
    /// returns how many octets it used.
    pub fn step(&mut self, input: &[u8], limits: &Limits) -> (usize, Step) {
        let mut used = 0;
        loop {
            let rest = &input[used..];
            match self.mode {
                Mode::Literal(left) | Mode::DropLiteral(left) => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(rest.len());
                    if let Mode::Literal(_) = self.mode {
                        self.msg.extend_from_slice(&rest[..n]);
                    }
                    used += n;
                    let left = left - n as u64;
                    self.mode = match self.mode {
                        _ if left == 0 => Mode::Line,
                        Mode::Literal(_) => Mode::Literal(left),
                        _ => Mode::DropLiteral(left),
                    };
                    if left > 0 {
                        return (used, Step::NeedInput);
                    }
                }
                Mode::DropLine => match memchr(b'\n', rest) {
                    None => return (input.len(), Step::NeedInput),
                    Some(lf) => {
                        used += lf + 1;
                        self.mode = Mode::Line;
                        return (used, self.finish_refusal());
                    }
                },
                Mode::Line => {
                    let window = &rest[..rest.len().min(limits.max_line)];
                    let Some(lf) = memchr(b'\n', window) else {
                        if rest.len() < limits.max_line {
                            return (used, Step::NeedInput);
                        }
                        // No LF within the limit: the line is too long.
                        let tag = self.tag_or(rest);
                        self.refuse(tag, Refusal::bad("Command line too long"));
                        self.mode = Mode::DropLine;
                        used += window.len();
                        continue;
                    };
                    let line = &rest[..lf];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    used += lf + 1;
                    if let Some(step) = self.line(line, limits) {
                        return (used, step);
                    }
                }
            }
        }
    }

    /// The tag of the command being read, or of `line` when it is its
    /// first line.
    fn tag_or(&self, line: &[u8]) -> Option<String> {
        if self.msg.is_empty() { lexer::peek_tag(line) } else { lexer::peek_tag(&self.msg) }
    }

    fn refuse(&mut self, tag: Option<String>, refusal: Refusal) {
        if self.refusing.is_none() {
            self.refusing = Some((tag, refusal));
        }
        self.msg.clear();
    }

    fn finish_refusal(&mut self) -> Step {
        self.msg.clear();
        match self.refusing.take() {
            Some((tag, refusal)) => Step::Refuse(tag, refusal),
            None => Step::Refuse(None, Refusal::bad("Invalid command")),
        }
    }

    /// Handles one complete line (without CRLF); `None` to read on.
    fn line(&mut self, line: &[u8], limits: &Limits) -> Option<Step> {
        let literal = literal_at_end(line);
        if self.refusing.is_some() {
            return match literal {
                // RFC 7888 §4: the client sends it without waiting.
                Some((n, false)) => {
                    self.mode = Mode::DropLiteral(n);
                    None
                }
                // The command ends here; the client waits for a `+` it
                // will not get, and learns from the refusal.
                _ => Some(self.finish_refusal()),
            };
        }
        if self.msg.is_empty() && line.is_empty() {
            return Some(Step::Refuse(None, Refusal::bad("Empty command line")));
        }
        self.msg.extend_from_slice(line);
        self.msg.extend_from_slice(b"\r\n");
        let (n, sync) = match literal {
            None => return Some(Step::Command),
            Some(l) => l,
        };
        let (tag, name) = lexer::peek_name(&self.msg).unwrap_or_default();
        let tag = (!tag.is_empty()).then_some(tag);
        let append = name == "APPEND";
        let budget = limits.max_command_size as u64 + if append { limits.max_message_size } else { 0 };
        // The message literal of an APPEND is bounded by itself too, so
        // the limit means what it says (not the limit plus the command's).
        let too_big = (append && n > limits.max_message_size) || (self.msg.len() as u64).saturating_add(n) > budget;
        if too_big {
            let refusal = if append {
                Refusal::no(Some(Code::TooBig), "Message too large")
            } else {
                Refusal { no: false, code: Some(Code::TooBig), text: "Literal too large".into() }
            };
            self.refuse(tag, refusal);
            if sync {
                // RFC 9051 §4.3: refused before the client sends it.
                return Some(self.finish_refusal());
            }
            self.mode = Mode::DropLiteral(n);
            return None;
        }
        self.mode = Mode::Literal(n);
        if n == 0 {
            self.mode = Mode::Line;
        }
        if sync { Some(Step::Continue) } else { None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_announcements() {
        assert_eq!(literal_at_end(b"A APPEND x {10}"), Some((10, true)));
        assert_eq!(literal_at_end(b"A APPEND x {10+}"), Some((10, false)));
        assert_eq!(literal_at_end(b"A APPEND x ~{3}"), Some((3, true)));
        assert_eq!(literal_at_end(b"A APPEND x {99999999999999999999999}"), Some((u64::MAX, true)));
        assert_eq!(literal_at_end(b"A LOGIN {} x"), None);
        assert_eq!(literal_at_end(b"A X {a}"), None);
        assert_eq!(literal_at_end(b"A X {+}"), None);
    }
}
