//! Times `SEARCH TEXT` on a typical plain-text message, split into its
//! steps: `cargo run --release -p mailroom-imap-proto --example search_cost`.

use std::hint::black_box;
use std::time::Instant;

use mailroom_imap_proto::message::ParsedMessage;

const WORDS: &[&str] = &["project", "update", "meeting", "the", "and", "schedule", "review", "notes", "team", "budget"];

fn main() {
    let mut msg = b"From: List Member 7 <sender07@lists.example.org>\r\n\
To: Alice <alice@example.test>\r\n\
Subject: POP3 benchmark message 42 of 10000: weekly project update\r\n\
Date: Sun, 22 Nov 2026 09:00:00 +0000\r\n\
Message-ID: <pop3.42.10000@lists.example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
Content-Transfer-Encoding: 7bit\r\n\
\r\n"
        .to_vec();
    let mut state = 7u32;
    while msg.len() < 48_000 {
        let mut line = String::new();
        while line.len() < 70 {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            line.push_str(WORDS[(state >> 16) as usize % WORDS.len()]);
            line.push(' ');
        }
        msg.extend_from_slice(line.trim_end().as_bytes());
        msg.extend_from_slice(b"\r\n");
    }
    let n = 2_000u32;
    let time = |what: &str, f: &dyn Fn() -> bool| {
        let start = Instant::now();
        for _ in 0..n {
            black_box(f());
        }
        let each = start.elapsed() / n;
        let rate = msg.len() as f64 / each.as_secs_f64() / 1e9;
        println!("{what:<28} {each:>10.2?} per {} octets = {rate:.2} GB/s", msg.len());
    };
    time("is_ascii", &|| black_box(&msg).is_ascii());
    time("copy", &|| black_box(msg.clone()).len() > 1);
    time("ParsedMessage::new", &|| ParsedMessage::new(black_box(&msg)).raw().len() > 1);
    time("BODY zanzibar", &|| ParsedMessage::new(black_box(&msg)).body_contains("zanzibar"));
    time("TEXT zanzibar", &|| ParsedMessage::new(black_box(&msg)).text_contains("zanzibar"));
    time("TEXT the", &|| ParsedMessage::new(black_box(&msg)).text_contains("thex"));
}
