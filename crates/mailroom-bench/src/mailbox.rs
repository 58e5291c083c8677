//! The POP3 benchmark's mailbox: `--messages` messages of mixed sizes
//! summing to `--total-size`, written straight into the store before the
//! server starts.
//!
//! Sizes follow a log-normal spread (as real mail does: many small
//! messages, a long tail of large ones) clamped to [`MIN_MESSAGE`] ..=
//! [`MAX_MESSAGE`], with the location chosen so that the sizes sum to the
//! requested total exactly. Every message has its own realistic header
//! block and CRLF text lines (some starting with `.`, so the server must
//! dot-stuff), all from a fixed seed: every run stores the same mailbox.
//!
//! The `imap` mode asks for [`Marks::SearchWords`]: a word of its own in a
//! known fraction of the subjects and another in a known fraction of the
//! bodies, so that its searches have results whose counts are known. The
//! `pop3` mode's mailbox ([`Marks::None`]) is unchanged by this.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, ensure};
use mailroom_store::{AnyStore, HeaderCache, MailStore, NewMessage};
use mailroom_types::{AccountId, Flags, IdGenerator};
use tokio::task::JoinSet;

use crate::message::{RECIPIENT, body_text_seeded, rfc5322_date};

/// The smallest message generated.
pub const MIN_MESSAGE: usize = 2 * 1024;
/// The largest message generated.
pub const MAX_MESSAGE: usize = 2 * 1024 * 1024;
/// The spread of the log-normal size distribution (σ of the logarithm).
const SIGMA: f64 = 1.1;
/// The seed of the size distribution.
const SIZE_SEED: u64 = 0x6d61_696c_726f_6f6d;
/// Messages generated, written and delivered at once while populating:
/// enough for group commit to batch the metadata and for the blob fsyncs
/// to overlap.
const POPULATE_CONCURRENCY: usize = 16;

/// The word [`Marks::SearchWords`] puts in some subjects: not in the body
/// vocabulary nor in any other header, so `SEARCH SUBJECT` and `SEARCH TEXT`
/// for it find exactly the marked messages.
pub const SUBJECT_WORD: &str = "milestone";
/// The word [`Marks::SearchWords`] puts in some bodies: in no header and not
/// in the body vocabulary, so only the marked bodies contain it.
pub const TEXT_WORD: &str = "zanzibar";
/// Every this many messages, one has [`SUBJECT_WORD`] in its subject (5%).
const SUBJECT_EVERY: usize = 20;
/// Every this many messages, one has [`TEXT_WORD`] in its body (2%).
const TEXT_EVERY: usize = 50;

/// Which messages carry search words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marks {
    /// None: the `pop3` mode's mailbox.
    None,
    /// [`SUBJECT_WORD`] in the subject of every [`SUBJECT_EVERY`]th message
    /// and [`TEXT_WORD`] at the start of the body of every [`TEXT_EVERY`]th
    /// (offset, so that the two sets differ).
    SearchWords,
}

impl Marks {
    /// Whether message `index` has [`SUBJECT_WORD`] in its subject.
    pub fn in_subject(self, index: usize) -> bool {
        self == Marks::SearchWords && index.is_multiple_of(SUBJECT_EVERY)
    }

    /// Whether message `index` has [`TEXT_WORD`] in its body.
    pub fn in_text(self, index: usize) -> bool {
        self == Marks::SearchWords && index % TEXT_EVERY == 7
    }

    /// How many of `count` messages have [`SUBJECT_WORD`] in the subject.
    pub fn subject_count(self, count: usize) -> usize {
        (0..count).filter(|&i| self.in_subject(i)).count()
    }

    /// How many of `count` messages have [`TEXT_WORD`] in the body.
    pub fn text_count(self, count: usize) -> usize {
        (0..count).filter(|&i| self.in_text(i)).count()
    }
}

/// What was stored.
#[derive(Debug, Clone)]
pub struct Populated {
    /// Messages delivered.
    pub count: u64,
    /// Their total size in octets.
    pub octets: u64,
    /// Their sizes, sorted, to compare with what LIST says.
    pub sorted_sizes: Vec<u64>,
    /// Wall time of the population.
    pub took: Duration,
}

/// Checks that `count` messages can sum to `total` within the size bounds.
pub fn check_shape(count: usize, total: usize) -> Result<()> {
    ensure!(count > 0, "need at least one message");
    let average = total / count;
    ensure!(
        count.checked_mul(MIN_MESSAGE).is_some_and(|min| min <= total)
            && count.checked_mul(MAX_MESSAGE).is_none_or(|max| total <= max),
        "--total-size {total} over {count} messages averages {average} octets; it must be between \
         {MIN_MESSAGE} and {MAX_MESSAGE} octets per message"
    );
    Ok(())
}

/// `count` message sizes in [`MIN_MESSAGE`] ..= [`MAX_MESSAGE`] summing to
/// exactly `total`: log-normal, deterministic.
pub fn sizes(count: usize, total: usize) -> Result<Vec<usize>> {
    check_shape(count, total)?;
    let mut rng = SplitMix(SIZE_SEED);
    let normals: Vec<f64> = (0..count).map(|_| rng.normal()).collect();
    let (lo, hi) = (MIN_MESSAGE as f64, MAX_MESSAGE as f64);
    let at = |mu: f64| -> Vec<usize> {
        normals.iter().map(|z| (mu + SIGMA * z).exp().clamp(lo, hi).round() as usize).collect()
    };
    // The clamped sum grows with the location: bisect for the total.
    let (mut low, mut high) = (lo.ln() - 4.0 * SIGMA, hi.ln() + 4.0 * SIGMA);
    for _ in 0..100 {
        let mid = (low + high) / 2.0;
        if at(mid).iter().sum::<usize>() < total {
            low = mid;
        } else {
            high = mid;
        }
    }
    let mut sizes = at(low);
    // Spread the rounding remainder over messages with room for it.
    let mut sum: usize = sizes.iter().sum();
    for size in &mut sizes {
        if sum < total {
            let add = (MAX_MESSAGE - *size).min(total - sum);
            *size += add;
            sum += add;
        } else if sum > total {
            let cut = (*size - MIN_MESSAGE).min(sum - total);
            *size -= cut;
            sum -= cut;
        } else {
            break;
        }
    }
    ensure!(sum == total, "cannot make {count} sizes sum to {total}");
    Ok(sizes)
}

/// Message `index` (0-based) of `count`, exactly `size` octets, CRLF lines,
/// without search words (what the `pop3` mode stores; tests use it).
#[cfg(test)]
pub fn message(index: usize, count: usize, size: usize, date: &str) -> Result<Vec<u8>> {
    marked_message(index, count, size, date, Marks::None)
}

/// Message `index` (0-based) of `count`, exactly `size` octets, CRLF lines,
/// with the search words `marks` asks for.
pub fn marked_message(index: usize, count: usize, size: usize, date: &str, marks: Marks) -> Result<Vec<u8>> {
    let header = header_block(index, count, date, marks);
    ensure!(size >= header.len() + 2, "message size {size} is below its header block ({} octets)", header.len());
    let seed = (index as u32).wrapping_mul(0x9e37_79b9) ^ 0x5bd1_e995;
    let mut bytes = header.into_bytes();
    let body_start = bytes.len();
    bytes.extend_from_slice(&body_text_seeded(size - bytes.len(), seed));
    if marks.in_text(index) {
        // Overwrites the start of the first body line, keeping the size.
        let mark = format!("{TEXT_WORD} ");
        let first = &mut bytes[body_start..];
        ensure!(
            first.len() >= mark.len() + 2 && !first[..mark.len()].iter().any(|&b| b == b'\r' || b == b'\n'),
            "message {} has no room for the body mark",
            index + 1
        );
        first[..mark.len()].copy_from_slice(mark.as_bytes());
    }
    debug_assert_eq!(bytes.len(), size);
    Ok(bytes)
}

/// The subject of message `index` of `count`.
fn subject(index: usize, count: usize, marks: Marks) -> String {
    let kind = if marks.in_subject(index) { SUBJECT_WORD } else { "weekly" };
    format!("POP3 benchmark message {} of {count}: {kind} project update", index + 1)
}

/// A header block such as a mailing-list message has after local delivery,
/// ending with the empty line.
fn header_block(index: usize, count: usize, date: &str, marks: Marks) -> String {
    let sender = index % 97;
    let relay = index % 13 + 10;
    format!(
        "Return-Path: <sender{sender:02}@lists.example.org>\r\n\
         Received: from mx{relay}.example.org (mx{relay}.example.org [192.0.2.{relay}])\r\n\
         \tby bench.test (Mailroom) with ESMTP id {index:014X}\r\n\
         \tfor <{RECIPIENT}>; {date}\r\n\
         From: List Member {sender} <sender{sender:02}@lists.example.org>\r\n\
         To: Alice <{RECIPIENT}>\r\n\
         Subject: {subject}\r\n\
         Date: {date}\r\n\
         Message-ID: <pop3.{index}.{count}@lists.example.org>\r\n\
         List-Id: <project.lists.example.org>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         Content-Transfer-Encoding: 7bit\r\n\
         \r\n",
        subject = subject(index, count, marks),
    )
}

/// A message arriving now, unread.
fn arrived(content: mailroom_store::NewContent, size: u64, headers: HeaderCache) -> NewMessage {
    NewMessage { content, size, internal_date: SystemTime::now(), flags: Flags::empty(), keywords: Vec::new(), headers }
}

/// Opens the store in `data_dir` (the server must not be running) and
/// delivers one message of each size into alice's INBOX, the blobs written
/// and fsync'd as the server does, many at once so that commits group.
pub async fn populate(data_dir: &Path, sizes: &[usize]) -> Result<Populated> {
    populate_marked(data_dir, sizes, Marks::None).await
}

/// [`populate`] with the search words `marks` asks for.
pub async fn populate_marked(data_dir: &Path, sizes: &[usize], marks: Marks) -> Result<Populated> {
    let start = Instant::now();
    let (store, account) = crate::server::open_recipient(data_dir).await?;
    let account = account.id;
    let sizes: Arc<[usize]> = sizes.into();
    let ids = Arc::new(IdGenerator::new(SIZE_SEED));
    let date = Arc::new(rfc5322_date(SystemTime::now()));
    let mut tasks = JoinSet::new();
    for worker in 0..POPULATE_CONCURRENCY.min(sizes.len()) {
        let (store, sizes, ids, date) = (store.clone(), Arc::clone(&sizes), Arc::clone(&ids), Arc::clone(&date));
        tasks.spawn(async move {
            for index in (worker..sizes.len()).step_by(POPULATE_CONCURRENCY) {
                deliver_one(&store, account, &ids, index, &sizes, &date, marks)
                    .await
                    .with_context(|| format!("cannot store message {}", index + 1))?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a populating task panicked")??;
    }
    // Every delivery has returned, so everything is committed; the store
    // closes once the last handle is gone.
    drop(store);
    let mut sorted_sizes: Vec<u64> = sizes.iter().map(|&s| s as u64).collect();
    sorted_sizes.sort_unstable();
    Ok(Populated { count: sizes.len() as u64, octets: sorted_sizes.iter().sum(), sorted_sizes, took: start.elapsed() })
}

/// Generates, writes (fsync'd) and delivers message `index`.
async fn deliver_one(
    store: &AnyStore,
    account: AccountId,
    ids: &Arc<IdGenerator>,
    index: usize,
    sizes: &Arc<[usize]>,
    date: &Arc<String>,
    marks: Marks,
) -> Result<()> {
    let blobs = store.blobs().clone();
    let (ids, sizes, date) = (Arc::clone(ids), Arc::clone(sizes), Arc::clone(date));
    let (content, size, headers) = tokio::task::spawn_blocking(move || {
        let bytes = marked_message(index, sizes.len(), sizes[index], &date, marks)?;
        let (content, size) = blobs.content(ids.blob_id(SystemTime::now()), bytes)?;
        let headers = HeaderCache {
            from: format!("List Member {0} <sender{0:02}@lists.example.org>", index % 97),
            to: format!("Alice <{RECIPIENT}>"),
            subject: subject(index, sizes.len(), marks),
            message_id: format!("<pop3.{index}.{}@lists.example.org>", sizes.len()),
            date: SystemTime::now().duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs() as i64),
        };
        anyhow::Ok((content, size, headers))
    })
    .await
    .context("a blob-writing task panicked")??;
    store.deliver(&arrived(content, size, headers), &[account]).await.context("delivery failed")?;
    Ok(())
}

/// Opens the store in `data_dir` (the server must not be running) and
/// delivers one more message, `raw`, into alice's INBOX: the newest, as it
/// arrives after everything [`populate`] stored.
pub async fn deliver_raw(data_dir: &Path, raw: Vec<u8>, headers: HeaderCache) -> Result<()> {
    let (store, account) = crate::server::open_recipient(data_dir).await?;
    let blobs = store.blobs().clone();
    let ids = IdGenerator::new(SIZE_SEED ^ 1);
    let (content, size) = tokio::task::spawn_blocking(move || blobs.content(ids.blob_id(SystemTime::now()), raw))
        .await
        .context("a blob-writing task panicked")??;
    store.deliver(&arrived(content, size, headers), &[account.id]).await.context("delivery failed")?;
    Ok(())
}

/// SplitMix64: a small, deterministic generator (no dependency needed).
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_sum_exactly_within_bounds() {
        for (count, total) in [(10_000, 450 * 1024 * 1024), (100, 1024 * 1024), (1, 5000), (3, 3 * MIN_MESSAGE)] {
            let s = sizes(count, total).unwrap();
            assert_eq!(s.len(), count);
            assert_eq!(s.iter().sum::<usize>(), total);
            assert!(s.iter().all(|&x| (MIN_MESSAGE..=MAX_MESSAGE).contains(&x)));
        }
        assert_eq!(sizes(100, 1024 * 1024).unwrap(), sizes(100, 1024 * 1024).unwrap(), "deterministic");
        assert!(sizes(10, 10 * MIN_MESSAGE - 1).is_err());
        assert!(sizes(10, 10 * MAX_MESSAGE + 1).is_err());
        assert!(sizes(0, 1000).is_err());
    }

    #[test]
    fn sizes_are_spread() {
        let s = sizes(10_000, 450 * 1024 * 1024).unwrap();
        let mut sorted = s.clone();
        sorted.sort_unstable();
        let median = sorted[sorted.len() / 2];
        assert!(median < 47 * 1024 && median > 8 * 1024, "median {median}");
        assert!(sorted[sorted.len() - 1] > 1024 * 1024);
        assert!(sorted[0] < 4 * 1024);
    }

    #[test]
    fn messages_are_crlf_text_of_the_exact_size() {
        for (index, size) in [(0, MIN_MESSAGE), (41, 50_000), (9_999, MAX_MESSAGE)] {
            let m = message(index, 10_000, size, "Sat, 22 Nov 2025 06:12:00 +0000").unwrap();
            assert_eq!(m.len(), size);
            assert!(m.ends_with(b"\r\n"));
            for (i, &b) in m.iter().enumerate() {
                if b == b'\n' {
                    assert!(i > 0 && m[i - 1] == b'\r', "bare LF at {i}");
                }
                if b == b'\r' {
                    assert_eq!(m.get(i + 1), Some(&b'\n'), "bare CR at {i}");
                }
            }
            assert!(m.windows(3).any(|w| w == b"\n. "), "a line starts with a dot");
            assert!(m.split(|&b| b == b'\n').all(|l| l.len() <= 1000));
        }
        assert_ne!(message(1, 10, 4096, "d").unwrap()[700..], message(2, 10, 4096, "d").unwrap()[700..]);
    }

    #[test]
    fn search_words_mark_known_messages_only() {
        let count = 1000;
        let (mut subjects, mut texts) = (0, 0);
        for index in 0..count {
            let plain = message(index, count, MIN_MESSAGE, "d").unwrap();
            let marked = marked_message(index, count, MIN_MESSAGE, "d", Marks::SearchWords).unwrap();
            assert_eq!(marked.len(), MIN_MESSAGE);
            let has = |m: &[u8], w: &str| m.windows(w.len()).any(|x| x.eq_ignore_ascii_case(w.as_bytes()));
            assert!(!has(&plain, SUBJECT_WORD) && !has(&plain, TEXT_WORD));
            assert_eq!(has(&marked, SUBJECT_WORD), Marks::SearchWords.in_subject(index), "{index}");
            assert_eq!(has(&marked, TEXT_WORD), Marks::SearchWords.in_text(index), "{index}");
            subjects += usize::from(has(&marked, SUBJECT_WORD));
            texts += usize::from(has(&marked, TEXT_WORD));
        }
        assert_eq!(subjects, Marks::SearchWords.subject_count(count));
        assert_eq!(texts, Marks::SearchWords.text_count(count));
        assert_eq!((subjects, texts), (50, 20));
        assert_eq!(Marks::None.subject_count(count), 0);
    }
}
