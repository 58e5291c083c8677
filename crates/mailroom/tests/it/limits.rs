//! Connection limits over real TCP: `max_connections_per_ip = 2`.

use std::thread;
use std::time::{Duration, Instant};

use crate::common::{InProcess, SmtpClient, dot_stuff};

fn send_one(c: &mut SmtpClient, subject: &str) {
    assert_eq!(c.command("MAIL FROM:<bob@example.test>").unwrap().code, 250);
    assert_eq!(c.command("RCPT TO:<alice@example.test>").unwrap().code, 250);
    assert_eq!(c.command("DATA").unwrap().code, 354);
    c.send(&dot_stuff(format!("Subject: {subject}\r\n\r\nbody\r\n").as_bytes())).unwrap();
    let reply = c.read_reply().unwrap();
    assert_eq!(reply.code, 250, "{reply}");
}

#[test]
fn third_connection_from_one_ip_is_refused() {
    let server = InProcess::start_with(|c| c.limits.max_connections_per_ip = 2);
    let mut first = SmtpClient::open(server.addr);
    let mut second = SmtpClient::open(server.addr);

    let mut third = SmtpClient::connect(server.addr).expect("the TCP connection itself is accepted");
    let refused = third.read_reply().expect("a 421 reply");
    assert_eq!(refused.code, 421, "{refused}");
    assert_eq!(refused.lines.len(), 1, "{refused}");
    assert!(refused.lines[0].starts_with("421 4.7.0 "), "{refused}");
    assert!(refused.lines[0].ends_with("too many connections from 127.0.0.1"), "{refused}");
    third.set_read_timeout(Duration::from_secs(5));
    assert!(third.closed_by_server(), "the refused connection must be closed");

    // The admitted sessions are unaffected.
    send_one(&mut first, "first");
    assert_eq!(second.command("NOOP").unwrap().code, 250);
    send_one(&mut second, "second");
    assert_eq!(server.inbox("alice@example.test").len(), 2);

    // Closing one frees its slot.
    assert_eq!(first.command("QUIT").unwrap().code, 221);
    assert!(first.closed_by_server());
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut again = SmtpClient::connect(server.addr).unwrap();
        let reply = again.read_reply().unwrap();
        if reply.code == 220 {
            break;
        }
        assert_eq!(reply.code, 421, "{reply}");
        assert!(Instant::now() < deadline, "the slot of a closed session was never freed");
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(second.command("QUIT").unwrap().code, 221);
}
