//! The messages the built-in client sends: a realistic RFC 5322 header block
//! and plain-text lines, exactly `--size` octets before dot-stuffing.
//!
//! The header block differs per message (Subject, Message-ID) so that no two
//! stored messages are identical, but it has a fixed length, so the body can
//! be built and dot-stuffed once per run and shared by every connection.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, ensure};

/// The envelope sender the built-in client uses.
pub const SENDER: &str = "bench@example.test";
/// The one local recipient every benchmark message goes to.
pub const RECIPIENT: &str = "alice@example.test";

/// Largest connection number that keeps the header block's length fixed.
pub const MAX_CONNECTIONS: usize = 99_999;
/// Largest message count that keeps the header block's length fixed.
pub const MAX_MESSAGES: usize = 999_999_999;
/// Largest run number that keeps the header block's length fixed.
pub const MAX_RUNS: usize = 99;

/// The longest text line generated, CRLF excluded (RFC 5322 §2.1.1 asks for
/// at most 78).
const LINE_WIDTH: usize = 72;

/// Words the body text is made of.
const WORDS: &[&str] = &[
    "the", "mail", "server", "accepts", "a", "message", "only", "after", "its", "bytes", "and", "metadata", "are",
    "durable", "on", "disk", "so", "that", "crash", "loses", "nothing", "queue", "mailbox", "delivery", "report",
    "meeting", "tomorrow", "please", "find", "attached", "notes", "from", "last", "week", "regards", "budget",
    "project", "schedule", "review", "thanks", "for", "your", "quick", "reply", "we", "will", "discuss", "this", "in",
    "detail", "when", "team", "is", "back", "office", "update", "draft", "version", "of", "proposal",
];

/// One run's message shape: the shared, already dot-stuffed body and what is
/// needed to write each message's own header block.
#[derive(Debug)]
pub struct MessageTemplate {
    /// The total message size in octets, header block included, before
    /// dot-stuffing.
    size: usize,
    /// The `Date:` value shared by every message of the run.
    date: String,
    /// The run number, part of every Message-ID.
    run: usize,
    /// The envelope sender and `From:` address.
    sender: &'static str,
    /// The envelope recipient and `To:` address.
    recipient: &'static str,
    /// The body in wire form: CRLF lines, dot-stuffed, without the final
    /// `.CRLF`.
    wire_body: Vec<u8>,
}

impl MessageTemplate {
    /// Builds the template for messages of exactly `size` octets in run
    /// `run`, from [`SENDER`] to [`RECIPIENT`].
    pub fn new(size: usize, run: usize) -> Result<MessageTemplate> {
        MessageTemplate::addressed(size, run, SENDER, RECIPIENT)
    }

    /// Builds the template for messages of exactly `size` octets in run
    /// `run`, from `sender` to `recipient` (envelope and header fields).
    pub fn addressed(
        size: usize,
        run: usize,
        sender: &'static str,
        recipient: &'static str,
    ) -> Result<MessageTemplate> {
        ensure!(run <= MAX_RUNS, "at most {MAX_RUNS} runs");
        let date = rfc5322_date(SystemTime::now());
        let header_len = header_block(&date, run, sender, recipient, 0, 0).len();
        ensure!(
            size >= header_len + 2,
            "--size {size} is too small: the header block alone takes {header_len} octets; use at least {}",
            header_len + 2
        );
        let body = body_text(size - header_len);
        Ok(MessageTemplate { size, date, run, sender, recipient, wire_body: dot_stuff(&body) })
    }

    /// The header block (ending with the empty line) of message `seq` of
    /// connection `conn`; always the same length within a run.
    pub fn header(&self, conn: usize, seq: usize) -> Vec<u8> {
        header_block(&self.date, self.run, self.sender, self.recipient, conn, seq)
    }

    /// The envelope sender (`MAIL FROM`), also in `From:`.
    pub fn sender(&self) -> &'static str {
        self.sender
    }

    /// The envelope recipient (`RCPT TO`), also in `To:`.
    pub fn recipient(&self) -> &'static str {
        self.recipient
    }

    /// The dot-stuffed body, ready to be sent after [`Self::header`] and
    /// before the terminating `.CRLF`.
    pub fn wire_body(&self) -> &[u8] {
        &self.wire_body
    }

    /// The message size in octets before dot-stuffing.
    pub fn size(&self) -> usize {
        self.size
    }
}

/// The header block of one message, ending with the empty line. Numbers are
/// zero-padded so that the length never varies.
fn header_block(date: &str, run: usize, sender: &str, recipient: &str, conn: usize, seq: usize) -> Vec<u8> {
    format!(
        "From: Bench Sender <{sender}>\r\n\
         To: Recipient <{recipient}>\r\n\
         Subject: Benchmark message {seq:09} on connection {conn:05}\r\n\
         Date: {date}\r\n\
         Message-ID: <bench.r{run:02}.c{conn:05}.m{seq:09}@example.test>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         Content-Transfer-Encoding: 7bit\r\n\
         X-Mailer: mailroom-bench\r\n\
         \r\n"
    )
    .into_bytes()
}

/// Plain-text lines of exactly `len` octets (`len >= 2`), each ending with
/// CRLF, in paragraphs separated by empty lines. Some lines start with `.`
/// (and one is a lone `.`) so that dot-stuffing is exercised.
fn body_text(len: usize) -> Vec<u8> {
    body_text_seeded(len, 0x2545_f491)
}

/// [`body_text`] with the words chosen by `seed` (any value; 0 is replaced,
/// as xorshift needs a non-zero state).
pub fn body_text_seeded(len: usize, seed: u32) -> Vec<u8> {
    debug_assert!(len >= 2);
    let mut out = Vec::with_capacity(len);
    let mut rng: u32 = if seed == 0 { 0x2545_f491 } else { seed };
    let mut next = move || {
        // xorshift32: deterministic, dependency-free word choice.
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        rng as usize
    };
    let mut line_no = 0usize;
    while out.len() < len {
        let remaining = len - out.len();
        // Content length of this line: at most LINE_WIDTH, leaving either
        // nothing or room for at least an empty line (2 octets) after it.
        let mut content = if line_no % 7 == 6 {
            0
        } else if line_no % 97 == 40 && remaining >= 5 {
            1
        } else {
            LINE_WIDTH.min(remaining - 2)
        };
        if remaining - 2 - content == 1 {
            content += 1;
        }
        let mut line = String::with_capacity(content + 8);
        if line_no % 31 == 5 || line_no % 97 == 40 {
            line.push_str(". ");
        }
        while line.len() < content {
            if !line.is_empty() && !line.ends_with(' ') {
                line.push(' ');
            }
            line.push_str(WORDS[next() % WORDS.len()]);
        }
        line.truncate(content);
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
        line_no += 1;
    }
    debug_assert_eq!(out.len(), len);
    out
}

/// RFC 5321 §4.5.2 transparency: a `.` is added before every line that
/// starts with one. `text` is CRLF lines.
pub fn dot_stuff(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 64);
    let mut at_line_start = true;
    for &b in text {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    out
}

/// Formats a time as an RFC 5322 §3.3 date in UTC, such as
/// `Sat, 22 Nov 2025 06:12:00 +0000`.
pub fn rfc5322_date(at: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Year, month (1-12) and day (1-31) of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`, for non-negative counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Parses a message size: a number of octets, optionally followed by `k`
/// (KiB) or `m` (MiB), case-insensitive, with or without `iB`/`B`: `10240`,
/// `10k`, `10KiB`, `1m`.
pub fn parse_size(s: &str) -> Result<usize> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix("ib").or_else(|| t.strip_suffix('b')).unwrap_or(&t);
    let (digits, unit) = match t.strip_suffix('k') {
        Some(d) => (d, 1024),
        None => match t.strip_suffix('m') {
            Some(d) => (d, 1024 * 1024),
            None => (t, 1),
        },
    };
    let n: usize = digits.trim().parse().with_context(|| format!("not a size: {s:?} (try 10240, 10k or 1m)"))?;
    n.checked_mul(unit).with_context(|| format!("size too large: {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_exactly_the_requested_size() {
        for size in [600, 601, 602, 1000, 10_240, 65_536, 100_003] {
            let t = MessageTemplate::new(size, 1).unwrap();
            let header = t.header(12, 345);
            let body = body_text(size - header.len());
            assert_eq!(header.len() + body.len(), size);
            assert!(body.ends_with(b"\r\n"));
            assert!(body.split(|&b| b == b'\n').all(|l| l.len() <= 1000));
            assert_eq!(dot_stuff(&body), t.wire_body());
        }
    }

    #[test]
    fn header_length_is_fixed() {
        let t = MessageTemplate::new(10_240, 3).unwrap();
        let a = t.header(0, 0).len();
        assert_eq!(t.header(MAX_CONNECTIONS, MAX_MESSAGES).len(), a);
    }

    #[test]
    fn too_small_a_size_is_refused() {
        assert!(MessageTemplate::new(10, 1).is_err());
    }

    #[test]
    fn body_exercises_dot_stuffing() {
        let body = body_text(10_240);
        let stuffed = dot_stuff(&body);
        assert!(stuffed.len() > body.len());
        assert!(stuffed.windows(5).any(|w| w == b"\n..\r\n"), "a lone dot line is stuffed");
        // Unstuffing restores the original text.
        let mut restored = Vec::new();
        for line in stuffed.split_inclusive(|&b| b == b'\n') {
            restored.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        assert_eq!(restored, body);
    }

    #[test]
    fn dot_stuffing() {
        assert_eq!(dot_stuff(b".a\r\nb.\r\n.\r\n"), b"..a\r\nb.\r\n..\r\n");
    }

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 +0000");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_763_791_920);
        assert_eq!(rfc5322_date(t), "Sat, 22 Nov 2025 06:12:00 +0000");
        let leap = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert_eq!(rfc5322_date(leap), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10k").unwrap(), 10_240);
        assert_eq!(parse_size("10KiB").unwrap(), 10_240);
        assert_eq!(parse_size("10240").unwrap(), 10_240);
        assert_eq!(parse_size("1m").unwrap(), 1_048_576);
        assert_eq!(parse_size("2MB").unwrap(), 2_097_152);
        assert!(parse_size("ten").is_err());
    }
}
