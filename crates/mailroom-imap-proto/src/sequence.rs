//! Sequence sets (RFC 9051 §9 `sequence-set`): message numbers or UIDs,
//! with ranges and `*`, as commands carry them; and the compressed form
//! (`1:3,5`) that COPYUID, VANISHED, ESEARCH and MODIFIED send back.
//!
//! The set is kept as the client wrote it; `*` only gets a value against a
//! mailbox, so [`SequenceSet::resolve`] takes the largest number in use
//! (the message count for sequence numbers, the highest UID for UIDs).

use std::fmt;

/// One end of a range: a number, or `*` (the largest number in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqNumber {
    /// A number, at least 1.
    Value(u32),
    /// `*`: the largest number in use (RFC 9051 §9 `seq-number`).
    Last,
}

impl SeqNumber {
    fn resolve(self, last: u32) -> u32 {
        match self {
            SeqNumber::Value(n) => n,
            SeqNumber::Last => last,
        }
    }
}

/// `a:b`, or a single number when `start == end`. The ends may come in
/// either order (RFC 9051 §9: `4:2` is `2:4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqRange {
    /// The first end as written.
    pub start: SeqNumber,
    /// The second end as written (equal to `start` for a single number).
    pub end: SeqNumber,
}

/// A non-empty sequence set as the client wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceSet {
    ranges: Vec<SeqRange>,
}

/// Why a sequence set could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    /// The set has no element.
    #[error("empty sequence set")]
    Empty,
    /// An element is not a number from 1 to 4294967295, `*` or a range.
    #[error("invalid sequence set element {0:?}")]
    Invalid(String),
}

impl SequenceSet {
    /// A set of the given ranges; `None` when there is none, since a
    /// sequence set is never empty.
    pub fn from_ranges(ranges: Vec<SeqRange>) -> Option<SequenceSet> {
        (!ranges.is_empty()).then_some(SequenceSet { ranges })
    }

    /// The set of one number.
    pub fn single(n: u32) -> SequenceSet {
        let n = SeqNumber::Value(n);
        SequenceSet { ranges: vec![SeqRange { start: n, end: n }] }
    }

    /// Parses the text form (`1:3,5,7:*`), for sets the server reads
    /// outside imap-codec (QRESYNC parameters, tests).
    pub fn parse(s: &str) -> Result<SequenceSet, SequenceError> {
        let mut ranges = Vec::new();
        for element in s.split(',') {
            let number = |t: &str| match t {
                "*" => Ok(SeqNumber::Last),
                t if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) && !t.starts_with('0') => {
                    t.parse::<u32>().map(SeqNumber::Value).map_err(|_| SequenceError::Invalid(element.into()))
                }
                _ => Err(SequenceError::Invalid(element.into())),
            };
            let range = match element.split_once(':') {
                Some((a, b)) => SeqRange { start: number(a)?, end: number(b)? },
                None => {
                    let n = number(element)?;
                    SeqRange { start: n, end: n }
                }
            };
            ranges.push(range);
        }
        SequenceSet::from_ranges(ranges).ok_or(SequenceError::Empty)
    }

    /// The ranges as written.
    pub fn ranges(&self) -> &[SeqRange] {
        &self.ranges
    }

    /// True when `*` appears, so the driver knows the set depends on the
    /// mailbox's current size.
    pub fn uses_last(&self) -> bool {
        self.ranges.iter().any(|r| r.start == SeqNumber::Last || r.end == SeqNumber::Last)
    }

    /// The largest number written explicitly (not `*`), so that a
    /// sequence number past the message count can be refused
    /// (RFC 9051 §9: such a set is invalid for message numbers).
    pub fn max_value(&self) -> Option<u32> {
        let value = |n: SeqNumber| match n {
            SeqNumber::Value(v) => Some(v),
            SeqNumber::Last => None,
        };
        self.ranges.iter().flat_map(|r| [value(r.start), value(r.end)]).flatten().max()
    }

    /// The set as sorted, merged, inclusive intervals within `1..=last`,
    /// with `*` standing for `last`. Empty when `last` is 0 (an empty
    /// mailbox has no `*`).
    pub fn resolve(&self, last: u32) -> Vec<(u32, u32)> {
        if last == 0 {
            return Vec::new();
        }
        let mut spans: Vec<(u32, u32)> = self
            .ranges
            .iter()
            .filter_map(|r| {
                let (a, b) = (r.start.resolve(last), r.end.resolve(last));
                let (lo, hi) = (a.min(b), a.max(b).min(last));
                (lo <= hi).then_some((lo, hi))
            })
            .collect();
        spans.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(spans.len());
        for (lo, hi) in spans {
            match merged.last_mut() {
                Some(prev) if lo <= prev.1.saturating_add(1) => prev.1 = prev.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        merged
    }

    /// Every number of the set within `1..=last`, ascending, once each:
    /// for message numbers, whose count bounds the result.
    pub fn expand(&self, last: u32) -> Vec<u32> {
        self.resolve(last).into_iter().flat_map(|(lo, hi)| lo..=hi).collect()
    }

    /// True when `n` (at most `last`) is in the set: for UIDs, tested
    /// against the mailbox's UIDs rather than expanded.
    pub fn contains(&self, n: u32, last: u32) -> bool {
        let spans = self.resolve(last);
        let i = spans.partition_point(|&(lo, _)| lo <= n);
        i > 0 && spans[i - 1].1 >= n
    }
}

impl fmt::Display for SequenceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = |n: SeqNumber| match n {
            SeqNumber::Value(v) => v.to_string(),
            SeqNumber::Last => "*".to_string(),
        };
        for (i, r) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if r.start == r.end {
                f.write_str(&number(r.start))?;
            } else {
                write!(f, "{}:{}", number(r.start), number(r.end))?;
            }
        }
        Ok(())
    }
}

/// Writes `values` in the compressed form: runs of consecutive ascending
/// numbers become `a:b` (`1,2,3,5` → `1:3,5`). The values keep their
/// order, so two lists that correspond one to one (COPYUID's source and
/// destination, RFC 4315 §3) stay aligned. Writes nothing for an empty
/// list; the caller decides whether an empty set may be sent at all.
pub fn write_compressed(out: &mut Vec<u8>, values: &[u32]) {
    let mut i = 0;
    while i < values.len() {
        let start = values[i];
        let mut j = i;
        while j + 1 < values.len() && values[j] != u32::MAX && values[j + 1] == values[j] + 1 {
            j += 1;
        }
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(start.to_string().as_bytes());
        if j > i {
            out.push(b':');
            out.extend_from_slice(values[j].to_string().as_bytes());
        }
        i = j + 1;
    }
}

/// [`write_compressed`] as a string.
pub fn compress(values: &[u32]) -> String {
    let mut out = Vec::new();
    write_compressed(&mut out, values);
    // Only ASCII digits, ':' and ',' were written.
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_round_trip() {
        for s in ["1", "1:3,5", "7:*", "*", "4:2,*:10"] {
            assert_eq!(SequenceSet::parse(s).unwrap().to_string(), s);
        }
        for bad in ["", "0", "1:", "a", "1,,2", "01", "4294967296", "1:2:3"] {
            assert!(SequenceSet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resolve_orders_merges_and_clips() {
        let set = SequenceSet::parse("9:7,2,3:4,20:*,*").unwrap();
        assert_eq!(set.resolve(12), vec![(2, 4), (7, 9), (12, 12)]);
        assert_eq!(set.expand(12), vec![2, 3, 4, 7, 8, 9, 12]);
        assert_eq!(set.resolve(0), vec![]);
        assert!(set.uses_last());
        assert_eq!(set.max_value(), Some(20));
        assert!(set.contains(8, 12) && set.contains(12, 12) && !set.contains(5, 12) && !set.contains(1, 12));
        assert_eq!(SequenceSet::parse("5:*").unwrap().expand(3), vec![3]);
    }

    #[test]
    fn compress_runs() {
        assert_eq!(compress(&[1, 2, 3, 5]), "1:3,5");
        assert_eq!(compress(&[]), "");
        assert_eq!(compress(&[7]), "7");
        assert_eq!(compress(&[3, 4, 1, 2]), "3:4,1:2");
        assert_eq!(compress(&[u32::MAX - 1, u32::MAX]), "4294967294:4294967295");
    }
}
