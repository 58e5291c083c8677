//! Implicit TLS (RFC 8314) on the `imaps` and `pop3s` listeners, with real
//! clients: Python's imaplib and poplib verifying the server's certificate
//! (the self-signed one it generated into its data directory) by name, and
//! refusing a server they cannot verify.

use std::process::Command;
use std::time::Duration;

use crate::common::{InProcess, require_tool, run_with_timeout, send_mail, show};

const TOOL_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs a Python `script` with the arguments `args` adds; its output,
/// once it succeeded.
fn python(script: &str, args: impl FnOnce(&mut Command)) -> String {
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]);
    args(&mut cmd);
    let out = run_with_timeout(cmd, b"", TOOL_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "python failed ({:?}): {}\n{stdout}", out.status, show(&out.stderr));
    stdout
}

/// The value the script printed after `key` and a space on a line.
fn field(stdout: &str, key: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {key} in {stdout}"))
        .to_string()
}
const ALICE: &str = "alice@example.test";
/// InProcess gives every user the password `pw-USER`.
const ALICE_PW: &str = "pw-alice@example.test";

/// Reads alice's messages over IMAPS and POP3S, printing each as hex, and
/// checks that a client without the certificate refuses the server.
const CLIENTS: &str = r#"
import imaplib, poplib, ssl, sys
imaps, pop3s, cafile, user, pw = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=cafile)
# The certificate names the host name and localhost; verified by name.
M = imaplib.IMAP4_SSL("localhost", imaps, ssl_context=ctx, timeout=10)
print("imaps_version", M.sock.version())
print("imaps_caps", " ".join(M.capabilities))
M.login(user, pw)
M.select("INBOX", readonly=True)
typ, data = M.uid("FETCH", "1", "(BODY.PEEK[])")
print("imaps_message", data[0][1].hex())
M.logout()
P = poplib.POP3_SSL("localhost", pop3s, context=ctx, timeout=10)
P.user(user)
P.pass_(pw)
resp, lines, octets = P.retr(1)
print("pop3s_message", (b"\r\n".join(lines) + b"\r\n").hex())
P.quit()
try:
    imaplib.IMAP4_SSL("localhost", imaps, ssl_context=ssl.create_default_context(), timeout=10)
    print("unverified", "accepted")
except ssl.SSLCertVerificationError:
    print("unverified", "refused")
"#;

#[test]
fn imaps_and_pop3s_with_a_verified_certificate() {
    if !require_tool("python3") {
        return;
    }
    let server = InProcess::start();
    let message = b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: over TLS\r\n\r\nSecret.\r\n";
    send_mail(server.addr, "bob@example.test", ALICE, message);
    let stored = server.inbox(ALICE).remove(0).1;
    let stdout = python(CLIENTS, |cmd| {
        cmd.arg(server.imaps_addr().port().to_string())
            .arg(server.pop3s_addr().port().to_string())
            .arg(server.certificate())
            .args([ALICE, ALICE_PW]);
    });
    let field = |key: &str| field(&stdout, key);
    assert!(field("imaps_version").starts_with("TLSv1."), "{stdout}");
    assert!(!field("imaps_caps").contains("LOGINDISABLED"), "{stdout}");
    let hex: String = stored.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(field("imaps_message"), hex, "IMAPS returns the stored bytes");
    assert_eq!(field("pop3s_message"), hex, "POP3S returns the stored bytes");
    assert_eq!(field("unverified"), "refused", "a client that cannot verify the certificate refuses");
}

/// A cleartext client on a TLS port gets no greeting: its bytes fail the
/// handshake and the connection closes.
#[test]
fn a_cleartext_client_on_the_tls_port_gets_nothing() {
    use std::io::{Read, Write};
    let server = InProcess::start();
    let mut s = std::net::TcpStream::connect(server.imaps_addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"a1 CAPABILITY\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(!buf.starts_with(b"* OK"), "no cleartext greeting on imaps: {}", show(&buf));
}

/// IMAP STARTTLS (RFC 9051 §6.2.1) with imaplib, the certificate verified;
/// and a command pipelined behind STARTTLS in the same packet is never
/// carried out (the CVE-2011-0411 command-injection class).
const STARTTLS: &str = r#"
import imaplib, socket, ssl, sys
imap, cafile, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=cafile)
M = imaplib.IMAP4("localhost", imap, timeout=10)
print("before", " ".join(M.capabilities))
M.starttls(ssl_context=ctx)
print("after", " ".join(M.capabilities))
print("version", M.sock.version())
M.login(user, pw)
typ, data = M.select("INBOX", readonly=True)
print("exists", data[0].decode())
M.logout()

s = socket.create_connection(("localhost", imap), timeout=10)
f = s.makefile("rb")
f.readline()
s.sendall(b"a1 STARTTLS\r\na2 LOGIN injected command\r\n")
print("starttls", f.readline().decode().strip())
t = ctx.wrap_socket(s, server_hostname="localhost")
t.sendall(b"a3 NOOP\r\n")
g = t.makefile("rb")
print("next", g.readline().decode().strip())
"#;

#[test]
fn imap_starttls_verified_and_not_injectable() {
    if !require_tool("python3") {
        return;
    }
    let server = InProcess::start();
    send_mail(server.addr, "bob@example.test", ALICE, b"Subject: hi\r\n\r\nHello.\r\n");
    let stdout = python(STARTTLS, |cmd| {
        cmd.arg(server.imap_addr().port().to_string()).arg(server.certificate()).args([ALICE, ALICE_PW]);
    });
    let field = |key: &str| field(&stdout, key);
    assert!(field("before").split(' ').any(|c| c == "STARTTLS"), "{stdout}");
    assert!(!field("after").split(' ').any(|c| c == "STARTTLS"), "not offered twice: {stdout}");
    assert!(field("version").starts_with("TLSv1."), "{stdout}");
    assert_eq!(field("exists"), "1");
    assert_eq!(field("starttls"), "a1 OK Begin TLS negotiation now");
    assert_eq!(field("next"), "a3 OK NOOP completed", "the injected LOGIN was dropped: {stdout}");
}

/// POP3 STLS (RFC 2595 §4) with poplib, the certificate verified; and a
/// command pipelined behind STLS in the same packet is never carried out.
const STLS: &str = r#"
import poplib, socket, ssl, sys
pop3, cafile, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=cafile)
P = poplib.POP3("localhost", pop3, timeout=10)
print("before", " ".join(sorted(P.capa())))
P.stls(context=ctx)
print("after", " ".join(sorted(P.capa())))
print("version", P.sock.version())
P.user(user)
P.pass_(pw)
print("stat", P.stat()[0])
P.quit()

s = socket.create_connection(("localhost", pop3), timeout=10)
f = s.makefile("rb")
f.readline()
s.sendall(b"STLS\r\nQUIT\r\n")
print("stls", f.readline().decode().strip())
t = ctx.wrap_socket(s, server_hostname="localhost")
t.sendall(b"NOOP\r\n")
g = t.makefile("rb")
print("next", g.readline().decode().strip())
"#;

#[test]
fn pop3_stls_verified_and_not_injectable() {
    if !require_tool("python3") {
        return;
    }
    let server = InProcess::start();
    send_mail(server.addr, "bob@example.test", ALICE, b"Subject: hi\r\n\r\nHello.\r\n");
    let stdout = python(STLS, |cmd| {
        cmd.arg(server.pop3_addr().port().to_string()).arg(server.certificate()).args([ALICE, ALICE_PW]);
    });
    let field = |key: &str| field(&stdout, key);
    assert!(field("before").split(' ').any(|c| c == "STLS"), "{stdout}");
    assert!(!field("after").split(' ').any(|c| c == "STLS"), "not offered twice: {stdout}");
    assert!(field("version").starts_with("TLSv1."), "{stdout}");
    assert_eq!(field("stat"), "1");
    assert_eq!(field("stls"), "+OK Begin TLS negotiation now.");
    // The session is alive and still before login (NOOP needs a login): a
    // QUIT carried out would have ended it instead.
    assert_eq!(field("next"), "-ERR Not logged in.", "the injected QUIT was dropped: {stdout}");
}

/// SMTP STARTTLS (RFC 3207) with smtplib, the certificate verified: the
/// message arrives with `with ESMTPS` in its trace; and a command pipelined
/// behind STARTTLS in the same packet is never carried out.
const SMTP_STARTTLS: &str = r#"
import smtplib, socket, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile)
S = smtplib.SMTP("localhost", port, timeout=10)
S.ehlo("client.test")
print("before", S.has_extn("starttls"))
S.starttls(context=ctx)
S.ehlo("client.test")
print("after", S.has_extn("starttls"))
print("version", S.sock.version())
S.sendmail("bob@example.test", ["alice@example.test"], b"Subject: over TLS\r\n\r\nSecret.\r\n")
S.quit()

s = socket.create_connection(("localhost", port), timeout=10)
f = s.makefile("rb")
f.readline()
s.sendall(b"EHLO client.test\r\n")
while not f.readline().startswith(b"250 "):
    pass
s.sendall(b"STARTTLS\r\nMAIL FROM:<injected@example.test>\r\n")
print("starttls", f.readline().decode().strip())
t = ctx.wrap_socket(s, server_hostname="localhost")
t.sendall(b"MAIL FROM:<bob@example.test>\r\n")
g = t.makefile("rb")
print("next", g.readline().decode().strip())
"#;

#[test]
fn smtp_starttls_verified_and_not_injectable() {
    if !require_tool("python3") {
        return;
    }
    let server = InProcess::start();
    let stdout = python(SMTP_STARTTLS, |cmd| {
        cmd.arg(server.addr.port().to_string()).arg(server.certificate());
    });
    let field = |key: &str| field(&stdout, key);
    assert_eq!(field("before"), "True");
    assert_eq!(field("after"), "False", "not offered twice");
    assert!(field("version").starts_with("TLSv1."), "{stdout}");
    let inbox = server.inbox(ALICE);
    assert_eq!(inbox.len(), 1);
    let text = String::from_utf8_lossy(&inbox[0].1);
    assert!(text.contains(" with ESMTPS id "), "the trace names TLS: {text}");
    assert_eq!(field("starttls"), "220 2.0.0 Ready to start TLS");
    // The session starts over after the handshake: EHLO first. An injected
    // MAIL carried out would have made this a nested MAIL instead.
    assert_eq!(field("next"), "503 5.5.1 Error: send HELO/EHLO first", "{stdout}");
}

/// curl with `--ssl-reqd` and `openssl s_client -starttls` on every
/// listener that speaks TLS, the certificate verified each time: STARTTLS
/// on submission (with AUTH and a message through the queue's local
/// path), IMAP and POP3; implicit TLS on submissions.
#[test]
fn real_tls_clients_on_every_listener() {
    if !require_tool("curl") || !require_tool("openssl") {
        return;
    }
    let server = InProcess::start();
    let cert = server.certificate();
    let cert = cert.to_str().expect("utf-8 path");
    let curl = |url: String, extra: &[&str], stdin: &[u8]| {
        let port = url.rsplit(':').next().and_then(|p| p.split('/').next()).expect("port").to_owned();
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "20", "--ssl-reqd", "--cacert", cert])
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1"), "--user", &format!("{ALICE}:{ALICE_PW}")])
            .args(extra)
            .arg(&url);
        let out = run_with_timeout(cmd, stdin, TOOL_TIMEOUT);
        assert!(out.status.success(), "curl {url} failed: {}", show(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let message = b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: by curl\r\n\r\nHi.\r\n";
    let mail = ["--mail-from", ALICE, "--mail-rcpt", "bob@example.test", "--upload-file", "-"];
    curl(format!("smtp://localhost:{}", server.submission_addr().port()), &mail, message);
    curl(format!("smtps://localhost:{}", server.submissions_addr().port()), &mail, message);
    let bob = server.inbox("bob@example.test");
    assert_eq!(bob.len(), 2);
    assert!(bob.iter().all(|(_, raw)| String::from_utf8_lossy(raw).contains("with ESMTPSA")));
    send_mail(server.addr, "carol@other.test", ALICE, b"Subject: for curl\r\n\r\nHello.\r\n");
    let imap = curl(format!("imap://localhost:{}/INBOX;UID=1", server.imap_addr().port()), &[], b"");
    assert!(imap.contains("Subject: for curl"), "{imap}");
    let pop = curl(format!("pop3://localhost:{}/1", server.pop3_addr().port()), &[], b"");
    assert!(pop.contains("Subject: for curl"), "{pop}");

    for (proto, addr) in
        [("smtp", server.submission_addr()), ("imap", server.imap_addr()), ("pop3", server.pop3_addr())]
    {
        let mut cmd = Command::new("openssl");
        cmd.args(["s_client", "-starttls", proto, "-connect", &addr.to_string(), "-servername", "localhost"]).args([
            "-CAfile",
            cert,
            "-verify_return_error",
            "-verify_hostname",
            "localhost",
        ]);
        let out = run_with_timeout(cmd, b"", TOOL_TIMEOUT);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "s_client -starttls {proto}: {text}\n{}", show(&out.stderr));
        assert!(text.contains("Verify return code: 0 (ok)"), "s_client -starttls {proto}: {text}");
    }
}

/// The webmail over HTTPS: curl verifies the certificate, the session
/// cookie is `__Host-` prefixed and `Secure`, HSTS is sent, and the cookie
/// works for the API.
#[test]
fn webmail_over_https_with_secure_cookies() {
    if !require_tool("curl") {
        return;
    }
    let server = InProcess::start_with(|c| c.listen.https = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))));
    let port = server.https_addr().port();
    let cert = server.certificate();
    let dir = tempfile::tempdir().expect("temp dir");
    let jar = dir.path().join("jar");
    let curl = |args: &[&str]| {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "20", "--cacert"]).arg(&cert);
        cmd.args(["--resolve", &format!("localhost:{port}:127.0.0.1"), "-c"]).arg(&jar).arg("-b").arg(&jar);
        cmd.args(args);
        let out = run_with_timeout(cmd, b"", TOOL_TIMEOUT);
        assert!(out.status.success(), "curl {args:?} failed: {}", show(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let base = format!("https://localhost:{port}");
    let body = format!(r#"{{"address":"{ALICE}","password":"{ALICE_PW}"}}"#);
    let signed_in =
        curl(&["-D", "-", "-H", "content-type: application/json", "-d", &body, &format!("{base}/api/session")]);
    let cookie = signed_in.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie:")).expect("a cookie");
    assert!(cookie.contains("__Host-mailroom_session="), "{cookie}");
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(signed_in.to_ascii_lowercase().contains("strict-transport-security: max-age="), "{signed_in}");
    let folders = curl(&[&format!("{base}/api/folders")]);
    assert!(folders.contains(r#""name":"INBOX""#), "{folders}");
}
