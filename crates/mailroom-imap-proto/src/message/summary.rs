//! The header summary the store keeps for IMAP: a message's ENVELOPE,
//! encoded once when the message is stored, so that FETCH ENVELOPE over a
//! whole mailbox copies bytes instead of parsing ten thousand headers.

use super::{ParsedMessage, write_envelope};

/// The first octet of a summary: which encoding of ENVELOPE follows. A
/// change to what [`write_envelope`] writes must bump it, so that summaries
/// made before are recomputed instead of served.
const VERSION: u8 = 1;

/// The summary of a header section (the message's header, blank line
/// included): [`VERSION`] and the encoded ENVELOPE.
pub fn envelope_summary(header: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() / 2);
    out.push(VERSION);
    write_envelope(&mut out, &ParsedMessage::new(header).envelope());
    out
}

/// The encoded ENVELOPE in a summary made by [`envelope_summary`]; `None`
/// for one made by another version.
pub fn summary_envelope(summary: &[u8]) -> Option<&[u8]> {
    match summary.split_first() {
        Some((&VERSION, envelope)) => Some(envelope),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_holds_the_envelope_of_its_version() {
        let header = b"Subject: hi\r\nFrom: a@b.test\r\n\r\n";
        let summary = envelope_summary(header);
        let mut envelope = Vec::new();
        write_envelope(&mut envelope, &ParsedMessage::new(header).envelope());
        assert_eq!(summary_envelope(&summary), Some(&envelope[..]));
        let mut older = summary.clone();
        older[0] = VERSION - 1;
        assert_eq!(summary_envelope(&older), None);
        assert_eq!(summary_envelope(b""), None);
    }
}
