//! A received message's bytes after the sink: read whole, and replaced by
//! an edited version before it is committed (a DKIM-Signature: added to a
//! submission, Authentication-Results: added to inbound mail, forged ones
//! removed). Nothing here is committed yet, so replacing is only a matter
//! of where the new bytes live: in memory when small, else in a new blob
//! file written and fsync'd like the first (which is deleted).

use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use mailroom_services::delivery::StoredMessage;
use mailroom_store::{BlobStore, NewContent};
use mailroom_types::IdGenerator;

/// The whole message: shared when in memory, read from its file otherwise
/// (off the async threads).
pub(crate) async fn bytes(blobs: &BlobStore, stored: &StoredMessage) -> io::Result<Arc<Vec<u8>>> {
    match &stored.content {
        NewContent::Inline(_, bytes) => Ok(Arc::clone(bytes)),
        NewContent::File(id, _) => {
            let (blobs, id) = (blobs.clone(), id.clone());
            let read = tokio::task::spawn_blocking(move || blobs.read(&id)).await.map_err(io::Error::other)??;
            Ok(Arc::new(read))
        }
    }
}

/// `stored` with its bytes replaced by `new` (which must end in CRLF, as
/// every stored message does). A file-backed message gets a new blob file;
/// the old one is deleted.
pub(crate) async fn replace(
    blobs: &BlobStore,
    ids: &IdGenerator,
    now: SystemTime,
    stored: StoredMessage,
    new: Vec<u8>,
) -> io::Result<StoredMessage> {
    let size = new.len() as u64;
    // What the header cache reads, for a file (inline content is its own).
    let head_of = |bytes: &[u8]| bytes[..bytes.len().min(mailroom_store::MAX_HEADER_SECTION)].to_vec();
    let (content, head, old_file) = match stored.content {
        // Still small: in memory under the same id, committed with the rows.
        NewContent::Inline(id, _) => match NewContent::inline(id, new) {
            Ok(content) => (content, Vec::new(), None),
            Err(bytes) => {
                let head = head_of(&bytes);
                (write_file(blobs, ids.blob_id(now), bytes, &head).await?, head, None)
            }
        },
        NewContent::File(old, _) => {
            let head = head_of(&new);
            (write_file(blobs, ids.blob_id(now), new, &head).await?, head, Some(old))
        }
    };
    if let Some(old) = old_file {
        let _ = blobs.delete(&old);
    }
    Ok(StoredMessage { content, size, head, received_at: stored.received_at })
}

async fn write_file(
    blobs: &BlobStore,
    id: mailroom_types::BlobId,
    bytes: Vec<u8>,
    head: &[u8],
) -> io::Result<NewContent> {
    let blobs = blobs.clone();
    let (blob, _) = tokio::task::spawn_blocking(move || {
        let mut w = blobs.create(id)?;
        w.write(&bytes)?;
        w.finish()
    })
    .await
    .map_err(io::Error::other)??;
    let header = mailroom_store::header_section(head).unwrap_or_default().to_vec();
    Ok(NewContent::File(blob, header))
}

/// Inserts `fields` (complete header lines, CRLF-terminated) at offset
/// `at` of `message`, which must be at a line start inside its header
/// section (after the trace fields, say).
pub(crate) fn insert_fields(message: &[u8], at: usize, fields: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + fields.len());
    out.extend_from_slice(&message[..at]);
    out.extend_from_slice(fields);
    out.extend_from_slice(&message[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_go_where_asked() {
        let m = b"Received: x\r\nSubject: y\r\n\r\nbody\r\n";
        assert_eq!(insert_fields(m, 13, b"A: 1\r\n"), b"Received: x\r\nA: 1\r\nSubject: y\r\n\r\nbody\r\n");
    }

    #[tokio::test]
    async fn small_stays_inline_and_large_moves_to_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path().join("blobs")).unwrap();
        let ids = IdGenerator::new(1);
        let now = SystemTime::now();
        let small = b"Subject: s\r\n\r\nx\r\n".to_vec();
        let stored = StoredMessage {
            content: NewContent::inline(ids.blob_id(now), small.clone()).unwrap(),
            size: small.len() as u64,
            head: small.clone(),
            received_at: now,
        };
        let original = stored.content.blob().clone();
        let edited = replace(&blobs, &ids, now, stored, insert_fields(&small, 0, b"A: 1\r\n")).await.unwrap();
        assert_eq!(edited.content.blob(), &original, "inline content keeps its id");
        assert_eq!(&*bytes(&blobs, &edited).await.unwrap(), b"A: 1\r\nSubject: s\r\n\r\nx\r\n");

        let large = [b"Subject: l\r\n\r\n".to_vec(), vec![b'y'; NewContent::INLINE_MAX], b"\r\n".to_vec()].concat();
        let edited = replace(&blobs, &ids, now, edited, large.clone()).await.unwrap();
        let NewContent::File(first, header) = &edited.content else { panic!("large content is a file") };
        assert_eq!(header, b"Subject: l\r\n\r\n");
        assert_eq!(&*bytes(&blobs, &edited).await.unwrap(), &large[..]);
        let first = first.clone();
        let again = replace(&blobs, &ids, now, edited, [b"A: 2\r\n".to_vec(), large.clone()].concat()).await.unwrap();
        assert_ne!(again.content.blob(), &first, "a file is replaced by a new file");
        assert!(!blobs.path(&first).exists(), "and the old one is gone");
        assert_eq!(again.size, large.len() as u64 + 6);
    }
}
