//! STUB
#![allow(missing_docs, dead_code, unused_variables)]
#[derive(Debug, Clone, serde::Serialize)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: String,
}
pub struct Attachment {
    pub part: String,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    pub inline_cid: Option<String>,
}
pub struct MessageView {
    pub subject: String,
    pub from: Vec<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    pub date: Option<i64>,
    pub message_id: Option<String>,
    pub references: Vec<String>,
    pub in_reply_to: Vec<String>,
    pub text: Option<String>,
    pub has_html: bool,
    pub remote_images: bool,
    pub attachments: Vec<Attachment>,
}
pub fn view(raw: &[u8]) -> MessageView {
    todo!()
}
pub struct Part {
    pub content_type: String,
    pub filename: String,
    pub bytes: Vec<u8>,
}
pub fn part(raw: &[u8], part: &str) -> Option<Part> {
    todo!()
}
pub fn part_by_cid(raw: &[u8], cid: &str) -> Option<Part> {
    todo!()
}
pub fn body_document(raw: &[u8], allow_remote_images: bool, cid_url: &dyn Fn(&str) -> String) -> String {
    todo!()
}
