//! Webmail: the browser's way to the same mailboxes IMAP serves and the
//! same submission path port 587 feeds. Pages are rendered on the server
//! (they work without JavaScript); a JSON API under `/api/` offers the same
//! operations to scripts.
pub mod compose;
