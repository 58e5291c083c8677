//! FETCH and UID FETCH (RFC 9051 §6.4.5), with BINARY (RFC 3516) and
//! CHANGEDSINCE/VANISHED (RFC 7162).
//!
//! Implementation notes:
//! - A message's bytes are read once per FETCH response and analysed at
//!   most once ([`ParsedMessage`]), however many items ask about it; items
//!   that need only the store's metadata (FLAGS, UID, RFC822.SIZE...) read
//!   no bytes at all.
//! - A non-PEEK body item on a read-write mailbox sets `\Seen` first, for
//!   every message concerned in one store write, so the responses carry
//!   the new flags (RFC 9051 §6.4.5).
//! - Output is flushed to the client whenever it passes the session's
//!   flush size, so `FETCH 1:* BODY[]` never holds a mailbox in memory.
//! - Over plain TCP, a FETCH whose only data is whole messages (`BODY[]`,
//!   `RFC822`, beside metadata) sends each large one from its file to the
//!   socket without reading it (`sendfile`): no copy in user space.

use std::collections::{HashSet, VecDeque};
use std::io;
use std::sync::{Arc, Mutex};

use mailroom_imap_proto::Server;
use mailroom_imap_proto::command::{FetchItem, InternalDate};
use mailroom_imap_proto::message::{
    BinaryError, ParsedMessage, Section, SectionText, apply_partial, summary_envelope, write_body_structure,
    write_envelope,
};
use mailroom_imap_proto::response::{self, Code, FetchResponse};
use mailroom_imap_proto::sequence::SequenceSet;
use mailroom_services::sendfile::{DirectSocket, send_file};
use mailroom_store::{AnyStore, BlobExtent, FlagOp, MailStore, Scanned, StoreError, Summary};
use mailroom_types::{Flags, ModSeq, Uid};
use tokio::io::AsyncWrite;

use crate::flags;
use crate::selected::Msg;
use crate::session::{FLUSH_AT, Outcome, Session, WRITE_TIMEOUT, store_failure, write_bytes, write_output};

/// What a FETCH asks for, beyond its items.
pub(crate) struct FetchRequest<'a> {
    pub(crate) uid: bool,
    pub(crate) set: &'a SequenceSet,
    pub(crate) items: &'a [FetchItem],
    pub(crate) changed_since: Option<u64>,
    pub(crate) vanished: bool,
}

/// True when answering `item` needs the message's bytes.
fn needs_bytes(item: &FetchItem) -> bool {
    !matches!(
        item,
        FetchItem::Uid | FetchItem::Flags | FetchItem::InternalDate | FetchItem::Rfc822Size | FetchItem::ModSeq
    )
}

/// True when the header section alone answers `item` (the store keeps
/// header sections apart, so a mailbox's ENVELOPEs need no bodies).
fn header_only(item: &FetchItem) -> bool {
    match item {
        FetchItem::Envelope | FetchItem::Rfc822Header => true,
        FetchItem::BodySection { section, .. } => {
            section.part.is_empty()
                && matches!(
                    section.text,
                    Some(SectionText::Header | SectionText::HeaderFields(_) | SectionText::HeaderFieldsNot(_))
                )
        }
        other => !needs_bytes(other),
    }
}

/// Below this many messages ENVELOPEs are computed as the responses are
/// written; above it, on every core first.
const PARALLEL_ENVELOPES: usize = 256;

/// Each message's encoded ENVELOPE beside its header section: those the
/// store kept ([`Summary::Kept`]) as they are, the others computed from
/// their header sections, on all cores when there are many. FETCH of a
/// mailbox's ENVELOPEs is what a client's first look at a large mailbox
/// costs.
async fn envelopes(summaries: Vec<(Uid, Summary)>) -> Vec<(Uid, Vec<u8>, Option<Vec<u8>>)> {
    let encode = |(uid, summary): (Uid, Summary)| match summary {
        Summary::Kept(mut s) => {
            if summary_envelope(&s).is_some() {
                // The envelope follows the version octet.
                s.remove(0);
                (uid, Vec::new(), Some(s))
            } else {
                // Made by another version: the FETCH reads the message whole.
                (uid, Vec::new(), None)
            }
        }
        Summary::Header(header) if header.is_empty() => (uid, header, None),
        Summary::Header(header) => {
            let mut enc = Vec::new();
            write_envelope(&mut enc, &ParsedMessage::new(&header).envelope());
            (uid, header, Some(enc))
        }
    };
    let to_compute = summaries.iter().filter(|(_, s)| matches!(s, Summary::Header(h) if !h.is_empty())).count();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if to_compute < PARALLEL_ENVELOPES || cores < 2 {
        return summaries.into_iter().map(encode).collect();
    }
    let chunk = summaries.len().div_ceil(cores);
    let mut rest = summaries;
    let mut tasks = Vec::with_capacity(cores);
    while !rest.is_empty() {
        let tail = rest.split_off(chunk.min(rest.len()));
        let part = std::mem::replace(&mut rest, tail);
        tasks.push(tokio::task::spawn_blocking(move || part.into_iter().map(encode).collect::<Vec<_>>()));
    }
    let mut out = Vec::new();
    for task in tasks {
        match task.await {
            Ok(part) => out.extend(part),
            // A panic in the parser: the FETCH loop finds no header for
            // those messages and reads them whole instead.
            Err(e) => tracing::warn!(error = %e, "envelope task failed"),
        }
    }
    out
}

/// True when answering `item` sets `\Seen` (RFC 9051 §6.4.5: BODY[...]
/// and BINARY[...] without PEEK, RFC822, RFC822.TEXT).
fn sets_seen(item: &FetchItem) -> bool {
    match item {
        FetchItem::BodySection { peek, .. } | FetchItem::Binary { peek, .. } => !peek,
        FetchItem::Rfc822 | FetchItem::Rfc822Text => true,
        _ => false,
    }
}

/// FETCHes of at least this many messages whose bytes are needed read and
/// render them ahead on the store's read threads ([`stream_messages`]).
const STREAM_FROM: usize = 8;

/// How much message data one read-ahead batch holds (beside one message
/// larger than this, which makes a batch of its own).
const BATCH_BYTES: u64 = 2 << 20;

/// Read-ahead batches in flight while one is written: enough that the
/// read threads rarely wait for the writer, or it for them. With the
/// batch being written and the [`Buffers`] kept, what a streaming FETCH
/// holds in memory.
const READ_AHEAD: usize = 2;

/// At most this much spare buffer capacity is kept for reuse.
const KEEP_BYTES: usize = (READ_AHEAD + 1) * BATCH_BYTES as usize;

/// A rendered response at least this large is written to the client
/// straight from where it was rendered, not copied into the output first.
const WRITE_DIRECT: usize = 64 * 1024;

/// Over plain TCP, a whole message at least this large is sent from its
/// file, unread; a smaller one costs less to copy into the output than
/// the system calls of a send of its own.
const SEND_FROM_FILE: u64 = 16 * 1024;

/// How one FETCH renders each message's response; shared with the store's
/// read threads when they render ahead.
struct Render {
    items: Vec<FetchItem>,
    uid: bool,
    with_modseq: bool,
    changed_since: Option<u64>,
    /// Messages whose `\Seen` this FETCH set: their FLAGS are sent even
    /// when not asked for.
    flags_changed: HashSet<Uid>,
}

/// Why a message's response was refused before any of it was written.
#[derive(Debug, Clone, Copy)]
enum Refused {
    /// RFC 3516 §4.2: BINARY of a part whose encoding is unknown.
    UnknownCte,
}

impl Refused {
    fn outcome(self) -> Outcome {
        match self {
            Refused::UnknownCte => Outcome::No(Some(Code::UnknownCte), "Unknown content transfer encoding".into()),
        }
    }
}

impl Render {
    /// Appends the response for message `seq` to `out`. `raw` is its bytes
    /// (only its header section when the items need no more, nothing when
    /// they need no bytes); `envelope` its kept encoded ENVELOPE.
    ///
    /// With `leave_raw`, the length of the message, the first item whose
    /// data is the whole message (`BODY[]`, `RFC822`) gets only its
    /// literal header: the offset in `out` where the message belongs is
    /// returned, and the caller writes it from where it lies instead of
    /// copying it. `raw` may then be empty if [`Render::whole_only`].
    fn message(
        &self,
        out: &mut Vec<u8>,
        seq: u32,
        m: &Msg,
        raw: &[u8],
        mut envelope: Option<Vec<u8>>,
        leave_raw: Option<u64>,
    ) -> Result<Option<usize>, Refused> {
        let parsed = ParsedMessage::new(raw);
        // Refused before the response starts, so none is left half
        // written (RFC 3516 §4.2: UNKNOWN-CTE).
        let unknown_cte = self.items.iter().any(|item| match item {
            FetchItem::Binary { part, .. } | FetchItem::BinarySize { part } => {
                matches!(parsed.binary_size(part), Err(BinaryError::UnknownCte(_)))
            }
            _ => false,
        });
        if unknown_cte {
            return Err(Refused::UnknownCte);
        }
        let mut raw_at = None;
        let mut f = FetchResponse::start(out, seq);
        if self.uid && !self.items.contains(&FetchItem::Uid) {
            f.uid(m.uid.get());
        }
        let mut wrote_flags = false;
        let mut wrote_modseq = false;
        for item in &self.items {
            match item {
                FetchItem::Uid => {
                    f.uid(m.uid.get());
                }
                FetchItem::Flags => {
                    f.flags(&flags::to_wire(m.flags, &m.keywords), false);
                    wrote_flags = true;
                }
                FetchItem::InternalDate => {
                    let unix_seconds = mailroom_types::time::unix_seconds(m.internal_date);
                    f.internal_date(InternalDate { unix_seconds, offset_minutes: 0 });
                }
                FetchItem::Rfc822Size => {
                    f.rfc822_size(m.size);
                }
                FetchItem::ModSeq => {
                    f.modseq(m.modseq.0);
                    wrote_modseq = true;
                }
                FetchItem::Envelope => {
                    let enc = envelope.take().unwrap_or_else(|| {
                        let mut enc = Vec::new();
                        write_envelope(&mut enc, &parsed.envelope());
                        enc
                    });
                    f.item("ENVELOPE", &enc);
                }
                FetchItem::BodyStructure | FetchItem::Body => {
                    let mut enc = Vec::new();
                    let extensible = matches!(item, FetchItem::BodyStructure);
                    write_body_structure(&mut enc, &parsed.body_structure(), extensible);
                    f.item(if extensible { "BODYSTRUCTURE" } else { "BODY" }, &enc);
                }
                FetchItem::BodySection { section, partial: None, .. }
                    if leave_raw.is_some() && raw_at.is_none() && whole(item) =>
                {
                    f.body_section_literal(section, None, leave_raw.unwrap_or_default());
                    raw_at = Some(f.written());
                }
                FetchItem::BodySection { section, partial, .. } => {
                    // A part that does not exist reads as empty (RFC 9051
                    // §6.4.5 leaves it open; clients cope with "").
                    let data = parsed.section(section).unwrap_or_default();
                    f.body_section(section, partial.map(|p| p.origin), Some(apply_partial(&data, *partial)));
                }
                FetchItem::Binary { part, partial, .. } => {
                    let data = parsed.binary(part).ok().flatten().unwrap_or_default();
                    f.binary(part, partial.map(|p| p.origin), Some(apply_partial(&data, *partial)));
                }
                FetchItem::BinarySize { part } => {
                    f.binary_size(part, parsed.binary_size(part).ok().flatten().unwrap_or(0));
                }
                FetchItem::Rfc822 if leave_raw.is_some() && raw_at.is_none() => {
                    f.rfc822_literal("RFC822", leave_raw.unwrap_or_default());
                    raw_at = Some(f.written());
                }
                FetchItem::Rfc822 => {
                    f.rfc822("RFC822", raw);
                }
                FetchItem::Rfc822Header => {
                    let header = Section { part: Vec::new(), text: Some(SectionText::Header) };
                    f.rfc822("RFC822.HEADER", &parsed.section(&header).unwrap_or_default());
                }
                FetchItem::Rfc822Text => {
                    let text = Section { part: Vec::new(), text: Some(SectionText::Text) };
                    f.rfc822("RFC822.TEXT", &parsed.section(&text).unwrap_or_default());
                }
            }
        }
        if !wrote_flags && self.flags_changed.contains(&m.uid) {
            f.flags(&flags::to_wire(m.flags, &m.keywords), false);
            wrote_flags = true;
        }
        if self.with_modseq && !wrote_modseq && (wrote_flags || self.changed_since.is_some()) {
            f.modseq(m.modseq.0);
        }
        f.finish();
        Ok(raw_at)
    }
}

/// One message's response rendered ahead: `head`, the message's bytes
/// when they are literal data of it, then `tail`.
struct Rendered {
    head: Vec<u8>,
    raw: Option<Raw>,
    tail: Vec<u8>,
}

/// A message's bytes in a response rendered ahead.
enum Raw {
    /// Read into memory.
    Bytes(Vec<u8>),
    /// Where they lie in a file, to be sent from there.
    Extent(BlobExtent),
}

/// Whether `item`'s data is the whole message, as stored.
fn whole(item: &FetchItem) -> bool {
    match item {
        FetchItem::BodySection { section, partial: None, .. } => section.part.is_empty() && section.text.is_none(),
        FetchItem::Rfc822 => true,
        _ => false,
    }
}

impl Render {
    /// Whether the responses need no byte of the messages but the one
    /// whole message each carries: it can be sent from where it lies,
    /// unread.
    fn whole_only(&self) -> bool {
        self.items.iter().filter(|item| whole(item)).count() == 1
            && self.items.iter().all(|item| whole(item) || !needs_bytes(item))
    }
}

/// Buffers of messages already written, for the read threads to read the
/// next messages into ([`mailroom_store::BlobBytes::take`]), so a streaming FETCH
/// allocates (and zeroes) memory for its first batches only. At most
/// [`KEEP_BYTES`] are kept.
#[derive(Default)]
struct Buffers {
    /// The buffers kept, shortest first, and their total capacity.
    spare: Mutex<(Vec<Vec<u8>>, usize)>,
}

impl Buffers {
    /// The shortest buffer written out that holds `len` octets without
    /// growing (and so zeroing), else the longest; an empty one if none
    /// is kept.
    fn take(&self, len: usize) -> Vec<u8> {
        let mut guard = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        let (spare, kept) = &mut *guard;
        let at = spare.partition_point(|b| b.len() < len);
        let buf = if at < spare.len() { spare.remove(at) } else { spare.pop().unwrap_or_default() };
        *kept -= buf.capacity();
        buf
    }

    /// Keeps `buf` for a later read, if there is room. Its contents stay:
    /// a read into it overwrites them instead of zeroing first.
    fn give(&self, buf: Vec<u8>) {
        let mut guard = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        let (spare, kept) = &mut *guard;
        if *kept + buf.capacity() <= KEEP_BYTES {
            *kept += buf.capacity();
            let at = spare.partition_point(|b| b.len() < buf.len());
            spare.insert(at, buf);
        }
    }
}

/// Writes the responses of a FETCH that reads many messages: batches of
/// about [`BATCH_BYTES`] are read and rendered on the store's read
/// threads, all cores at once, the next [`READ_AHEAD`] while this session
/// writes the last to the client. Returns whether some message was gone,
/// or the outcome that ended the command early.
async fn stream_messages<S: AsyncWrite + Unpin + DirectSocket>(
    stream: &mut S,
    server: &mut Server,
    store: &AnyStore,
    render: Arc<Render>,
    msgs: Vec<(usize, Msg)>,
) -> io::Result<Result<bool, Outcome>> {
    let mut batches = Vec::new();
    let mut batch: Vec<(usize, Msg)> = Vec::new();
    let mut bytes = 0;
    for (i, m) in msgs {
        if !batch.is_empty() && bytes + m.size > BATCH_BYTES {
            batches.push(std::mem::take(&mut batch));
            bytes = 0;
        }
        bytes += m.size;
        batch.push((i, m));
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    let buffers = Arc::new(Buffers::default());
    // Large whole messages are sent from their files, unread, when the
    // client's socket can take them so.
    let read_below = if render.whole_only() && stream.socket().is_some() { SEND_FROM_FILE } else { u64::MAX };
    let read_ahead = |batch: Vec<(usize, Msg)>| {
        let (store, render, buffers) = (store.clone(), Arc::clone(&render), Arc::clone(&buffers));
        tokio::spawn(async move {
            let blobs = batch.iter().map(|(_, m)| m.blob.clone()).collect();
            store
                .scan_extents(blobs, read_below, move |n, blob| {
                    let (i, m) = &batch[n];
                    let seq = *i as u32 + 1;
                    let mut head = Vec::new();
                    // `None`: expunged, and its bytes reclaimed, before
                    // this session could announce it (RFC 9051 §7.5.1).
                    let rendered = match blob? {
                        Scanned::Bytes(raw) => {
                            let raw_at =
                                render.message(&mut head, seq, m, raw.bytes(), None, Some(raw.bytes().len() as u64));
                            // The read thread's next read is most likely
                            // of the next message: a buffer that fits it.
                            let next = batch.get(n + 1).map_or(0, |(_, m)| m.size as usize);
                            raw_at.map(|at| at.map(|at| (at, Raw::Bytes(raw.take(|| buffers.take(next))))))
                        }
                        Scanned::Extent(extent) => {
                            let raw_at = render.message(&mut head, seq, m, &[], None, Some(extent.len()));
                            raw_at.map(|at| at.map(|at| (at, Raw::Extent(extent))))
                        }
                    };
                    Some(rendered.map(|raw| match raw {
                        Some((at, raw)) => {
                            let tail = head.split_off(at);
                            Rendered { head, raw: Some(raw), tail }
                        }
                        None => Rendered { head, raw: None, tail: Vec::new() },
                    }))
                })
                .await
        })
    };
    let mut batches = batches.into_iter();
    let mut pending: VecDeque<_> = batches.by_ref().take(READ_AHEAD).map(read_ahead).collect();
    let mut missing = false;
    while let Some(task) = pending.pop_front() {
        let rendered = match task.await {
            Ok(Ok(rendered)) => rendered,
            Ok(Err(e)) => return Ok(Err(store_failure(&e))),
            Err(e) => return Ok(Err(store_failure(&StoreError::Unavailable(format!("fetch task failed: {e}"))))),
        };
        pending.extend(batches.next().map(read_ahead));
        for response in rendered {
            match response {
                None => missing = true,
                Some(Err(refused)) => return Ok(Err(refused.outcome())),
                Some(Ok(Rendered { head, raw, tail })) => {
                    server.output_mut().extend_from_slice(&head);
                    match raw {
                        Some(Raw::Bytes(raw)) => {
                            if raw.len() >= WRITE_DIRECT {
                                write_output(stream, server).await?;
                                write_bytes(stream, &raw).await?;
                            } else {
                                server.output_mut().extend_from_slice(&raw);
                            }
                            buffers.give(raw);
                        }
                        Some(Raw::Extent(extent)) => {
                            write_output(stream, server).await?;
                            send_extent(stream, &extent).await?;
                        }
                        None => {}
                    }
                    server.output_mut().extend_from_slice(&tail);
                    if server.output_len() >= FLUSH_AT {
                        write_output(stream, server).await?;
                    }
                }
            }
        }
    }
    Ok(Ok(missing))
}

/// Sends a message's bytes from its file: straight into the socket, or
/// read and written where the stream has none (it has, whenever an
/// extent is handed out; STARTTLS cannot come in the middle of a FETCH).
async fn send_extent<S: AsyncWrite + Unpin + DirectSocket>(stream: &mut S, extent: &BlobExtent) -> io::Result<()> {
    if let Some(socket) = stream.socket() {
        return send_file(socket, extent.file(), extent.offset(), extent.len(), WRITE_TIMEOUT).await;
    }
    let len = usize::try_from(extent.len()).map_err(io::Error::other)?;
    let mut bytes = vec![0; len];
    std::os::unix::fs::FileExt::read_exact_at(extent.file(), &mut bytes, extent.offset())?;
    write_bytes(stream, &bytes).await
}

impl Session<'_> {
    pub(crate) async fn fetch<S: AsyncWrite + Unpin + DirectSocket>(
        &mut self,
        stream: &mut S,
        server: &mut Server,
        req: FetchRequest<'_>,
    ) -> io::Result<Outcome> {
        let style = Self::style(server);
        let store = &self.ctx.store;
        let Some(view) = self.selected.as_mut() else { return Ok(Outcome::Bad("No mailbox selected".into())) };
        let indices = match view.resolve(req.set, req.uid) {
            Ok(i) => i,
            Err(e) => return Ok(Outcome::Bad(e.into())),
        };
        if req.vanished
            && let Some(since) = req.changed_since
        {
            // RFC 7162 §3.2.6: UIDs of the set expunged since the modseq.
            let max = view.max_uid();
            match store.vanished_since(view.mailbox, ModSeq(since)).await {
                Ok(uids) => {
                    let gone: Vec<u32> = uids.iter().map(|u| u.get()).filter(|u| req.set.contains(*u, max)).collect();
                    if !gone.is_empty() {
                        response::vanished(server.output_mut(), true, &gone);
                    }
                }
                Err(e) => return Ok(store_failure(&e)),
            }
        }
        let bytes_needed = req.items.iter().any(needs_bytes);
        let only_envelope = req.items.iter().all(|item| !needs_bytes(item) || *item == FetchItem::Envelope);
        // ENVELOPEs of many messages: their summaries come with the index.
        let loaded = if bytes_needed && only_envelope && indices.len() > 16 {
            view.load_summarized(store, &indices).await.map(|(m, s)| (m, Some(s)))
        } else {
            view.load(store, &indices).await.map(|m| (m, None))
        };
        let (mut msgs, summaries) = match loaded {
            Ok(loaded) => loaded,
            Err(e) => return Ok(store_failure(&e)),
        };
        // Expunged from the store before this session could announce it
        // (RFC 9051 §7.5.1): its data is gone.
        let mut missing = msgs.len() < indices.len();
        if let Some(since) = req.changed_since {
            msgs.retain(|(_, m)| m.modseq.0 > since);
        }
        // Implicit \Seen, before anything is written.
        let mut flags_changed: Vec<Uid> = Vec::new();
        if !view.read_only && req.items.iter().any(sets_seen) {
            let unseen: Vec<Uid> = msgs
                .iter()
                .map(|(_, m)| m)
                .filter(|m| !m.flags.contains(Flags::SEEN) && !view.is_gone(m.uid))
                .map(|m| m.uid)
                .collect();
            if !unseen.is_empty() {
                match store.store_flags(view.mailbox, &unseen, FlagOp::Add, Flags::SEEN, &[], None).await {
                    Ok(changes) => {
                        for c in changes {
                            view.note_own(c.uid, c.modseq);
                            if let Some((_, m)) = msgs.iter_mut().find(|(_, m)| m.uid == c.uid) {
                                m.flags = c.flags;
                                m.modseq = c.modseq;
                            }
                            flags_changed.push(c.uid);
                        }
                    }
                    Err(e) => return Ok(store_failure(&e)),
                }
            }
        }
        let with_modseq = req.changed_since.is_some() || style.condstore;
        let uids = || msgs.iter().map(|(_, m)| m.uid).collect::<Vec<Uid>>();
        let mut headers = if let Some(summaries) = summaries {
            envelopes(summaries).await.into_iter().peekable()
        } else if bytes_needed && only_envelope {
            match store.summaries(view.mailbox, &uids()).await {
                Ok(s) => envelopes(s).await.into_iter().peekable(),
                Err(e) => return Ok(store_failure(&e)),
            }
        } else if bytes_needed && req.items.iter().all(header_only) {
            match store.headers(view.mailbox, &uids()).await {
                Ok(h) if req.items.contains(&FetchItem::Envelope) => {
                    let h = h.into_iter().map(|(uid, h)| (uid, Summary::Header(h))).collect();
                    envelopes(h).await.into_iter().peekable()
                }
                Ok(h) => h.into_iter().map(|(uid, h)| (uid, h, None)).collect::<Vec<_>>().into_iter().peekable(),
                Err(e) => return Ok(store_failure(&e)),
            }
        } else {
            Vec::new().into_iter().peekable()
        };
        let render = Render {
            items: req.items.to_vec(),
            uid: req.uid,
            with_modseq,
            changed_since: req.changed_since,
            flags_changed: flags_changed.into_iter().collect(),
        };
        if bytes_needed && headers.len() == 0 && msgs.len() >= STREAM_FROM {
            match stream_messages(stream, server, store, Arc::new(render), msgs).await? {
                Ok(gone) => missing |= gone,
                Err(outcome) => return Ok(outcome),
            }
        } else {
            let mut raw = Vec::new();
            for (i, m) in msgs {
                while headers.next_if(|(uid, _, _)| *uid < m.uid).is_some() {}
                let mut envelope = None;
                // A header section, or a kept ENVELOPE (which is all the
                // items need), spares reading the message.
                if let Some((_, header, env)) =
                    headers.next_if(|(uid, h, env)| *uid == m.uid && (!h.is_empty() || env.is_some()))
                {
                    raw = header;
                    envelope = env;
                } else if bytes_needed {
                    match store.read_blob(&m.blob, &mut raw).await {
                        Ok(true) => {}
                        // Expunged, and its bytes reclaimed, before this
                        // session could announce it (RFC 9051 §7.5.1).
                        Ok(false) => {
                            missing = true;
                            continue;
                        }
                        Err(e) => return Ok(store_failure(&e)),
                    }
                }
                if let Err(refused) = render.message(server.output_mut(), i as u32 + 1, &m, &raw, envelope, None) {
                    return Ok(refused.outcome());
                }
                if server.output_len() >= FLUSH_AT {
                    write_output(stream, server).await?;
                }
            }
        }
        // RFC 9051 §6.4.9: a UID that no longer exists is ignored; a
        // message number the client still holds is answered with NO.
        Ok(if missing && !req.uid {
            Outcome::No(Some(Code::ExpungeIssued), "Some messages were expunged meanwhile".into())
        } else {
            Outcome::ok(if req.uid { "UID FETCH completed" } else { "FETCH completed" })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spare_buffers_fit_the_next_read_and_stay_bounded() {
        let buffers = Buffers::default();
        for len in [1000, 10, 100] {
            buffers.give(vec![0; len]);
        }
        // The shortest that needs no growing, else the longest.
        assert_eq!(buffers.take(50).len(), 100);
        assert_eq!(buffers.take(5000).len(), 1000);
        assert_eq!(buffers.take(0).len(), 10);
        assert!(buffers.take(1).is_empty(), "none left: a new one");
        // No more than KEEP_BYTES are kept.
        buffers.give(vec![0; KEEP_BYTES - 10]);
        buffers.give(vec![0; 20]);
        assert_eq!(buffers.take(KEEP_BYTES).len(), KEEP_BYTES - 10);
        assert!(buffers.take(0).is_empty(), "the buffer past the bound was dropped");
    }
}
