//! STUB
#![allow(missing_docs, dead_code, unused_variables)]
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Draft {
    pub to: String,
    pub cc: String,
    pub bcc: String,
    pub subject: String,
    pub body: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
}
#[derive(Debug, Clone)]
pub struct Upload {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("x")]
    X,
}
pub struct Sender {
    pub name: Option<String>,
    pub address: mailroom_types::Address,
}
pub struct Built {
    pub bytes: Vec<u8>,
    pub recipients: Vec<mailroom_types::Address>,
}
pub fn build(
    sender: &Sender,
    draft: &Draft,
    uploads: &[Upload],
    date: i64,
    message_id: &str,
    max_size: u64,
) -> Result<Built, ComposeError> {
    todo!()
}
pub fn build_draft(
    sender: &Sender,
    draft: &Draft,
    uploads: &[Upload],
    date: i64,
    message_id: &str,
    max_size: u64,
) -> Result<Vec<u8>, ComposeError> {
    todo!()
}
pub fn resume(raw: &[u8]) -> (Draft, Vec<Upload>) {
    todo!()
}
pub enum ReplyKind {
    Reply,
    ReplyAll,
    Forward,
}
pub fn prepare(original: &[u8], kind: ReplyKind, me: &[mailroom_types::Address]) -> (Draft, Vec<Upload>) {
    todo!()
}
