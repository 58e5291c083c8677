//! Times ENVELOPE for a typical header section:
//! `cargo run --release -p mailroom-imap-proto --example envelope_cost`.

use std::time::Instant;

use mailroom_imap_proto::message::{ParsedMessage, write_envelope};

fn main() {
    let header = b"Return-Path: <sender07@lists.example.org>\r\n\
Received: from mx12.example.org (mx12.example.org [192.0.2.12])\r\n\
\tby bench.test (Mailroom) with ESMTP id 0000000000002A\r\n\
\tfor <alice@example.test>; Sun, 22 Nov 2026 09:00:00 +0000\r\n\
From: List Member 7 <sender07@lists.example.org>\r\n\
To: Alice <alice@example.test>\r\n\
Subject: POP3 benchmark message 42 of 10000: weekly project update\r\n\
Date: Sun, 22 Nov 2026 09:00:00 +0000\r\n\
Message-ID: <pop3.42.10000@lists.example.org>\r\n\
List-Id: <project.lists.example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
Content-Transfer-Encoding: 7bit\r\n\
\r\n";
    let n = 20_000;
    let mut out = Vec::new();
    let start = Instant::now();
    for _ in 0..n {
        let parsed = ParsedMessage::new(header);
        let env = parsed.envelope();
        out.clear();
        write_envelope(&mut out, &env);
    }
    let each = start.elapsed() / n;
    println!("{} octets -> {} octets of ENVELOPE in {each:?} each", header.len(), out.len());
}
