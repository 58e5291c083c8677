//! The `mailroom` command line: every admin command's success and error
//! paths, configuration errors, and `serve --demo`. Every error must be
//! exit status 1 and exactly one stderr line starting `mailroom: error:`.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use mailroom_services::accounts::verify_password;
use mailroom_store::MailStore;
use mailroom_types::{Address, Secret};

use crate::common::{
    BIN, ServerProcess, SmtpClient, TestConfig, cli, cli_ok, open_store, run_with_timeout, show, write_config,
};

fn config() -> TestConfig {
    write_config("warn", "3s", "")
}

/// Asserts a failed command: status 1, nothing on stdout, one stderr line
/// `mailroom: error: ...` containing every one of `needles`; returns the line.
#[track_caller]
fn assert_error(out: &Output, needles: &[&str]) -> String {
    let stderr = show(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "expected exit status 1; stderr: {stderr:?}");
    assert!(out.stdout.is_empty(), "stdout on error: {:?}", show(&out.stdout));
    assert!(stderr.ends_with('\n'), "stderr must be one complete line: {stderr:?}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr must be exactly one line: {stderr:?}");
    assert!(lines[0].starts_with("mailroom: error: "), "{stderr:?}");
    for needle in needles {
        assert!(lines[0].contains(needle), "error {:?} does not mention {needle:?}", lines[0]);
    }
    lines[0].to_string()
}

fn add_user(cfg: &TestConfig, address: &str, password: &str) -> Output {
    cli(&cfg.path, &["user", "add", address, "--password-stdin"], &format!("{password}\n"))
}

/// The stored password hash of `address` verifies `password`.
fn password_is(cfg: &TestConfig, address: &str, password: &str) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = open_store(&cfg.data_dir).await;
        let account = store.account(&Address::parse(address).unwrap()).await.unwrap().expect("account exists");
        verify_password(&account.password_hash, &Secret::new(password.to_string()))
    })
}

#[test]
fn domains() {
    let cfg = config();
    let p = &cfg.path;
    assert_eq!(cli_ok(p, &["domain", "list"], ""), "");
    assert_eq!(cli_ok(p, &["domain", "add", "example.test"], ""), "added domain example.test\n");
    assert_eq!(cli_ok(p, &["domain", "add", "Other.TEST"], ""), "added domain other.test\n");
    assert_eq!(cli_ok(p, &["domain", "list"], ""), "example.test\nother.test\n");

    assert_error(&cli(p, &["domain", "add", "example.test"], ""), &["example.test", "already exists"]);
    assert_error(&cli(p, &["domain", "add", "EXAMPLE.test"], ""), &["already exists"]);
    assert_error(&cli(p, &["domain", "add", "not a domain"], ""), &["invalid domain", "not a domain"]);
    assert_error(&cli(p, &["domain", "add", "bad..test"], ""), &["invalid domain"]);
    assert_error(&cli(p, &["domain", "del", "nowhere.test"], ""), &["nowhere.test", "not found"]);

    // A domain with accounts is not deleted.
    assert!(add_user(&cfg, "alice@example.test", "pw").status.success());
    assert_error(&cli(p, &["domain", "del", "example.test"], ""), &["example.test", "account"]);
    assert_eq!(cli_ok(p, &["domain", "list"], ""), "example.test\nother.test\n");

    assert_eq!(cli_ok(p, &["domain", "del", "other.test"], ""), "deleted domain other.test\n");
    assert_eq!(cli_ok(p, &["domain", "list"], ""), "example.test\n");
}

#[test]
fn users() {
    let cfg = config();
    let p = &cfg.path;
    cli_ok(p, &["domain", "add", "example.test"], "");
    cli_ok(p, &["domain", "add", "other.test"], "");

    let out = add_user(&cfg, "alice@example.test", "alice pw");
    assert!(out.status.success(), "{}", show(&out.stderr));
    assert_eq!(show(&out.stdout), "added user alice@example.test\n");
    assert!(add_user(&cfg, "bob@example.test", "bob pw").status.success());
    assert!(add_user(&cfg, "carol@other.test", "carol pw").status.success());
    assert!(password_is(&cfg, "alice@example.test", "alice pw"));

    assert_error(&add_user(&cfg, "alice@example.test", "again"), &["alice@example.test", "already exists"]);
    assert_error(&add_user(&cfg, "not-an-address", "pw"), &["invalid address", "not-an-address"]);
    assert_error(&add_user(&cfg, "x@nowhere.test", "pw"), &["nowhere.test", "not found"]);
    assert_error(&add_user(&cfg, "dave@example.test", ""), &["password must not be empty"]);
    assert_error(&cli(p, &["user", "add", "erin@example.test", "--password-stdin"], ""), &[]);

    assert_eq!(cli_ok(p, &["user", "list"], ""), "alice@example.test\nbob@example.test\ncarol@other.test\n");
    assert_eq!(cli_ok(p, &["user", "list", "example.test"], ""), "alice@example.test\nbob@example.test\n");
    assert_eq!(cli_ok(p, &["user", "list", "other.test"], ""), "carol@other.test\n");
    assert_error(&cli(p, &["user", "list", "not a domain"], ""), &["invalid domain"]);

    let passwd = |address: &str, pw: &str| cli(p, &["user", "passwd", address, "--password-stdin"], &format!("{pw}\n"));
    let out = passwd("alice@example.test", "new alice pw");
    assert!(out.status.success(), "{}", show(&out.stderr));
    assert_eq!(show(&out.stdout), "changed password of alice@example.test\n");
    assert!(password_is(&cfg, "alice@example.test", "new alice pw"));
    assert!(!password_is(&cfg, "alice@example.test", "alice pw"));
    assert_error(&passwd("nobody@example.test", "pw"), &["nobody@example.test", "not found"]);
    assert_error(&passwd("alice@example.test", ""), &["password must not be empty"]);
    assert!(password_is(&cfg, "alice@example.test", "new alice pw"));

    assert_eq!(cli_ok(p, &["user", "del", "bob@example.test"], ""), "deleted user bob@example.test\n");
    assert_eq!(cli_ok(p, &["user", "list", "example.test"], ""), "alice@example.test\n");
    assert_error(&cli(p, &["user", "del", "bob@example.test"], ""), &["bob@example.test", "not found"]);
    assert_error(&cli(p, &["user", "del", "not-an-address"], ""), &["invalid address"]);
}

#[test]
fn user_add_without_a_terminal() {
    let cfg = config();
    cli_ok(&cfg.path, &["domain", "add", "example.test"], "");
    // stdin is a pipe, not a TTY, and --password-stdin is missing.
    let line = assert_error(&cli(&cfg.path, &["user", "add", "alice@example.test"], "pw\n"), &["--password-stdin"]);
    assert!(line.contains("terminal"), "{line}");
    assert_eq!(cli_ok(&cfg.path, &["user", "list"], ""), "");
    assert_error(&cli(&cfg.path, &["user", "passwd", "alice@example.test"], "pw\n"), &["--password-stdin"]);
}

#[test]
fn aliases() {
    let cfg = config();
    let p = &cfg.path;
    cli_ok(p, &["domain", "add", "example.test"], "");
    assert!(add_user(&cfg, "alice@example.test", "pw").status.success());
    assert!(add_user(&cfg, "bob@example.test", "pw").status.success());

    assert_eq!(
        cli_ok(p, &["alias", "add", "postmaster@example.test", "alice@example.test"], ""),
        "added alias postmaster@example.test -> alice@example.test\n"
    );
    cli_ok(p, &["alias", "add", "team@example.test", "alice@example.test"], "");
    cli_ok(p, &["alias", "add", "team@example.test", "bob@example.test"], "");
    assert_eq!(
        cli_ok(p, &["alias", "add", "@example.test", "bob@example.test"], ""),
        "added alias @example.test -> bob@example.test\n"
    );
    assert_eq!(
        cli_ok(p, &["alias", "list"], ""),
        "@example.test -> bob@example.test\npostmaster@example.test -> alice@example.test\n\
         team@example.test -> alice@example.test\nteam@example.test -> bob@example.test\n"
    );
    assert_eq!(cli_ok(p, &["alias", "list", "example.test"], "").lines().count(), 4);

    assert_error(&cli(p, &["alias", "add", "x@example.test", "missing@example.test"], ""), &["missing@example.test"]);
    assert_error(&cli(p, &["alias", "add", "team@example.test", "alice@example.test"], ""), &["already exists"]);
    assert_error(&cli(p, &["alias", "add", "y@nowhere.test", "alice@example.test"], ""), &["nowhere.test"]);
    assert_error(&cli(p, &["alias", "add", "not-an-address", "alice@example.test"], ""), &["invalid address"]);
    // An exact alias must not shadow an account.
    assert_error(&cli(p, &["alias", "add", "bob@example.test", "alice@example.test"], ""), &["bob@example.test"]);

    assert_eq!(
        cli_ok(p, &["alias", "del", "team@example.test", "bob@example.test"], ""),
        "deleted alias team@example.test -> bob@example.test\n"
    );
    assert_eq!(cli_ok(p, &["alias", "del", "postmaster@example.test"], ""), "deleted alias postmaster@example.test\n");
    assert_eq!(cli_ok(p, &["alias", "del", "@example.test"], ""), "deleted alias @example.test\n");
    assert_eq!(cli_ok(p, &["alias", "list"], ""), "team@example.test -> alice@example.test\n");
    assert_error(&cli(p, &["alias", "del", "postmaster@example.test"], ""), &["not found"]);
}

#[test]
fn bad_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, "[limits]\nmax_recipientz = 5\n").unwrap();
    let line = assert_error(&cli(&unknown, &["domain", "list"], ""), &["unknown.toml"]);
    // The message names the file and the key path, once.
    assert!(
        line.contains("unknown.toml: limits.max_recipientz: unknown field `max_recipientz`"),
        "the error must name the key path limits.max_recipientz: {line}"
    );

    let top = dir.path().join("top.toml");
    std::fs::write(&top, "hostname = \"mx.example.test\"\ncolour = \"blue\"\n").unwrap();
    let line = assert_error(&cli(&top, &["domain", "list"], ""), &["top.toml"]);
    assert!(line.contains("top.toml: colour: unknown field `colour`"), "{line}");

    let bad_value = dir.path().join("value.toml");
    std::fs::write(&bad_value, "[limits]\nmax_recipients = \"many\"\n").unwrap();
    assert_error(&cli(&bad_value, &["domain", "list"], ""), &["value.toml", "limits.max_recipients"]);

    let invalid = dir.path().join("invalid.toml");
    std::fs::write(&invalid, "[limits]\nmax_command_line = 10\n").unwrap();
    assert_error(&cli(&invalid, &["serve"], ""), &["invalid.toml", "limits.max_command_line"]);

    let syntax = dir.path().join("syntax.toml");
    std::fs::write(&syntax, "hostname = \n[[[\n").unwrap();
    assert_error(&cli(&syntax, &["domain", "list"], ""), &["syntax.toml"]);

    let missing = dir.path().join("missing.toml");
    assert_error(&cli(&missing, &["domain", "list"], ""), &["missing.toml"]);
}

/// `serve --demo`: two password lines on first start, "exists" on the next;
/// SIGTERM stops it with status 0 within the grace period.
#[test]
fn serve_demo() {
    let cfg = config();
    let grace = Duration::from_secs(3);

    let mut first = ServerProcess::start(&cfg.path, &["--demo"]);
    assert_eq!(first.banner.len(), 2, "{:?}", first.banner);
    let mut passwords = Vec::new();
    for (line, user) in first.banner.iter().zip(["alice@example.test", "bob@example.test"]) {
        let prefix = format!("demo user {user} password: ");
        let password = line.strip_prefix(&prefix).unwrap_or_else(|| panic!("{line:?} does not start {prefix:?}"));
        assert!(password.len() >= 16 && password.chars().all(|c| c.is_ascii_alphanumeric()), "{password:?}");
        passwords.push((user, password.to_string()));
    }
    // The demo accounts take mail.
    let mut c = SmtpClient::open(first.addr);
    assert_eq!(c.command("MAIL FROM:<x@client.test>").unwrap().code, 250);
    assert_eq!(c.command("RCPT TO:<bob@example.test>").unwrap().code, 250);
    assert_eq!(c.command("QUIT").unwrap().code, 221);
    drop(c);
    stop_within(&mut first, grace);

    let mut second = ServerProcess::start(&cfg.path, &["--demo"]);
    assert_eq!(second.banner.len(), 2, "{:?}", second.banner);
    for (line, user) in second.banner.iter().zip(["alice@example.test", "bob@example.test"]) {
        assert!(line.starts_with(&format!("demo user {user} exists already")), "{line:?}");
        assert!(!line.contains("password:"), "{line:?}");
    }
    // Talk to it first, so that this test does not depend on the SIGTERM
    // handler being installed before the readiness line (see
    // shutdown::sigterm_right_after_ready_is_graceful).
    let mut c = SmtpClient::open(second.addr);
    assert_eq!(c.command("QUIT").unwrap().code, 221);
    drop(c);
    stop_within(&mut second, grace);
    for (user, password) in &passwords {
        assert!(password_is(&cfg, user, password), "the second --demo run must not change {user}'s password");
    }
}

fn stop_within(server: &mut ServerProcess, grace: Duration) {
    let t = Instant::now();
    server.sigterm();
    let status = server.wait_exit(grace + Duration::from_secs(2)).expect("the server exits after SIGTERM");
    assert!(status.success(), "exit status {status:?}; stderr: {}", server.stderr_text());
    assert!(t.elapsed() < grace, "SIGTERM with no sessions took {:?}, beyond the grace period", t.elapsed());
}

/// `--help` names every command.
#[test]
fn help_and_version() {
    let mut cmd = Command::new(BIN);
    cmd.arg("--help").env_remove("MAILROOM_CONFIG");
    let out = run_with_timeout(cmd, b"", Duration::from_secs(20));
    assert!(out.status.success());
    let help = show(&out.stdout);
    for word in ["serve", "domain", "user", "alias", "--config"] {
        assert!(help.contains(word), "--help lacks {word}: {help}");
    }
}

/// Admin commands work while the server runs, and take effect at once: a
/// user added from the command line receives mail on the running server,
/// and a deleted one is refused again.
#[test]
fn admin_commands_while_serving() {
    let cfg = config();
    let p = &cfg.path;
    cli_ok(p, &["domain", "add", "example.test"], "");
    let mut server = ServerProcess::start(p, &[]);

    let mut c = SmtpClient::open(server.addr);
    assert_eq!(c.command("MAIL FROM:<x@client.test>").unwrap().code, 250);
    assert_eq!(c.command("RCPT TO:<carol@example.test>").unwrap().code, 550);
    assert_eq!(add_user(&cfg, "carol@example.test", "pw").status.code(), Some(0));
    cli_ok(p, &["alias", "add", "team@example.test", "carol@example.test"], "");
    assert_eq!(c.command("RCPT TO:<carol@example.test>").unwrap().code, 250);
    assert_eq!(c.command("RCPT TO:<team@example.test>").unwrap().code, 250);
    assert_eq!(c.command("DATA").unwrap().code, 354);
    let done = c.command("Subject: while serving\r\n\r\nhello\r\n.").unwrap();
    assert_eq!(done.code, 250, "{}", done.text());
    assert_eq!(cli_ok(p, &["user", "list"], ""), "carol@example.test\n");
    cli_ok(p, &["user", "del", "carol@example.test"], "");
    assert_eq!(c.command("MAIL FROM:<x@client.test>").unwrap().code, 250);
    assert_eq!(c.command("RCPT TO:<carol@example.test>").unwrap().code, 550);
    assert_eq!(c.command("QUIT").unwrap().code, 221);
    drop(c);
    server.sigterm();
    assert!(server.wait_exit(Duration::from_secs(5)).is_some_and(|s| s.success()));
}

/// Two servers never share a data directory: the second stops with one
/// clear line. (The start-up blob sweep relies on being alone.)
#[test]
fn second_server_on_one_data_dir_is_refused() {
    let cfg = config();
    cli_ok(&cfg.path, &["domain", "add", "example.test"], "");
    let mut first = ServerProcess::start(&cfg.path, &[]);
    let mut cmd = Command::new(BIN);
    cmd.arg("--config").arg(&cfg.path).arg("serve").env_remove("MAILROOM_CONFIG");
    let second = run_with_timeout(cmd, b"", Duration::from_secs(15));
    assert_error(&second, &["another mailroom serve is using data_dir"]);
    first.sigterm();
    assert!(first.wait_exit(Duration::from_secs(5)).is_some_and(|s| s.success()));
    // Once the first is gone, a new server starts.
    let mut third = ServerProcess::start(&cfg.path, &[]);
    third.sigterm();
    assert!(third.wait_exit(Duration::from_secs(5)).is_some_and(|s| s.success()));
}

/// A blob a crash left written but never committed is deleted when the
/// server next starts; committed messages keep theirs.
#[test]
fn start_sweeps_blobs_a_crash_left_behind() {
    let cfg = config();
    cli_ok(&cfg.path, &["domain", "add", "example.test"], "");
    assert_eq!(add_user(&cfg, "carol@example.test", "pw").status.code(), Some(0));
    // Deliver one real message too large to be stored inline, so a real
    // shard directory and blob file exist.
    let mut server = ServerProcess::start(&cfg.path, &[]);
    let mut c = SmtpClient::open(server.addr);
    assert_eq!(c.command("MAIL FROM:<x@client.test>").unwrap().code, 250);
    assert_eq!(c.command("RCPT TO:<carol@example.test>").unwrap().code, 250);
    assert_eq!(c.command("DATA").unwrap().code, 354);
    let body = format!("Subject: kept\r\n\r\n{}.", "a line of text in a large message\r\n".repeat(10_000));
    assert_eq!(c.command(&body).unwrap().code, 250);
    drop(c);
    server.sigkill();
    let blobs = cfg.data_dir.join("blobs");
    let shard = std::fs::read_dir(&blobs)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_type().unwrap().is_dir())
        .expect("a shard directory")
        .path();
    let kept: Vec<_> = std::fs::read_dir(&shard).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(kept.len(), 1);
    let orphan = shard.join("ffffffffffffffffffffffff");
    std::fs::write(&orphan, b"Subject: half-written\r\n").unwrap();

    let mut server = ServerProcess::start(&cfg.path, &[]);
    assert!(!orphan.exists(), "the orphan was swept at start");
    assert!(kept[0].exists(), "the delivered message's blob is kept");
    server.sigterm();
    assert!(server.wait_exit(Duration::from_secs(5)).is_some_and(|s| s.success()));
}

#[test]
fn dkim_keys() {
    use std::os::unix::fs::PermissionsExt;
    let cfg = config();
    let p = &cfg.path;
    assert_error(&cli(p, &["dkim", "generate", "example.test"], ""), &["example.test", "not a local domain"]);
    cli_ok(p, &["domain", "add", "example.test"], "");
    assert_eq!(cli_ok(p, &["dkim", "list"], ""), "no DKIM keys\n");

    let out = cli_ok(p, &["dkim", "generate", "Example.TEST", "--selector", "s1", "--algorithm", "ed25519"], "");
    let key = cfg.data_dir.join("dkim/example.test/s1.ed25519.pem");
    assert!(out.starts_with(&format!("generated ed25519 key s1 for example.test in {}\n", key.display())), "{out}");
    let record = out.lines().find(|l| l.starts_with("s1._domainkey.example.test. IN TXT ")).expect("the key record");
    assert!(record.starts_with("s1._domainkey.example.test. IN TXT \"v=DKIM1; k=ed25519; p="), "{record}");
    assert!(out.contains("\nexample.test. IN TXT \"v=spf1 mx -all\"\n"), "{out}");
    assert!(
        out.contains("\n_dmarc.example.test. IN TXT \"v=DMARC1; p=quarantine; rua=mailto:postmaster@example.test\"\n"),
        "{out}"
    );
    assert!(out.contains(&format!("\nexample.test. IN MX 10 {}.\n", crate::common::HOSTNAME)), "{out}");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(cfg.data_dir.join("dkim")).unwrap().permissions().mode() & 0o777, 0o700);

    // The selector is taken, whichever algorithm asks; the key stays.
    let before = std::fs::read(&key).unwrap();
    for algorithm in ["ed25519", "rsa"] {
        let args = ["dkim", "generate", "example.test", "--selector", "s1", "--algorithm", algorithm];
        assert_error(&cli(p, &args, ""), &["example.test", "already has a DKIM key", "s1"]);
    }
    assert_eq!(std::fs::read(&key).unwrap(), before);
    let bad = cli(p, &["dkim", "generate", "example.test", "--algorithm", "dsa"], "");
    assert_eq!(bad.status.code(), Some(2), "{}", show(&bad.stderr));
    assert_error(
        &cli(p, &["dkim", "generate", "example.test", "--selector", "no_underscores"], ""),
        &["invalid selector"],
    );

    // RSA by default, under a dated selector; its record is split into
    // strings of at most 255 octets.
    let out = cli_ok(p, &["dkim", "generate", "example.test"], "");
    let record = out.lines().find(|l| l.contains("._domainkey.example.test. IN TXT ")).expect("the key record");
    assert!(record.starts_with("rsa-20"), "{record}");
    assert!(record.contains(" IN TXT \"v=DKIM1; k=rsa; p=MIIBIjAN"), "{record}");
    let strings: Vec<&str> = record.split('"').skip(1).step_by(2).collect();
    assert_eq!(strings.len(), 2, "{record}");
    assert!(strings.iter().all(|s| s.len() <= 255));

    let list = cli_ok(p, &["dkim", "list"], "");
    let keys: Vec<&str> = list.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(keys.len(), 2, "{list}");
    assert!(keys[0].starts_with("example.test rsa-20") && keys[0].contains(" rsa "), "{list}");
    assert!(keys[1].starts_with("example.test s1 ed25519 "), "{list}");
    assert!(list.contains(&format!("    {record}\n")), "{list}");
}
