//! The queue runner on a virtual clock: a destination that is down is
//! retried on the configured schedule, its sender warned once of the
//! delay; once it is up the message is delivered over SMTP to a real
//! Mailroom listener; a message that stays undeliverable past its age
//! limit bounces to its sender.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mailroom_services::config::{Config, HumanDuration};
use mailroom_services::dns::Resolver;
use mailroom_services::message::header_cache;
use mailroom_services::net::Shutdown;
use mailroom_services::tls::ListenerTls;
use mailroom_smtp::QueueRunner;
use mailroom_store::{MailStore, NewContent, NewMessage, NewQueueEntry, QueueEntry, Submission};
use mailroom_types::{Address, Domain, Flags, QueueId};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::harness::{NOW, SessionOptions, World};

const WAIT: Duration = Duration::from_secs(10);

fn at(offset: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW + offset)
}

/// A port nothing listens on (bound, then released).
async fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap()
}

/// Queues a message from alice@example.test to carol@other.test.
async fn queue_one(world: &World) -> QueueId {
    let now = at(0);
    let id = world.ids.queue_id(now);
    let bytes = b"Return-Path: <alice@example.test>\r\nFrom: alice@example.test\r\nSubject: waiting\r\n\r\nHi.\r\n";
    let message = NewMessage {
        content: NewContent::inline(world.ids.blob_id(now), bytes.to_vec()).unwrap(),
        size: bytes.len() as u64,
        internal_date: now,
        flags: Flags::empty(),
        keywords: Vec::new(),
        headers: header_cache(bytes),
    };
    let entry = NewQueueEntry {
        id: id.clone(),
        sender: Some(Address::parse("alice@example.test").unwrap()),
        recipients: vec![Address::parse("carol@other.test").unwrap()],
        created: now,
        first_attempt: now,
    };
    world.store.submit(&Submission { message, local: vec![], queue: Some(entry), sent: None }).await.unwrap();
    id
}

/// Starts a runner over `world`'s store routing other.test to `route`,
/// with a resolver that asks `127.0.0.1:9` (nothing) unless `adjust`
/// names a DNS server.
fn runner(world: &World, route: SocketAddr, adjust: impl FnOnce(&mut Config)) -> (Arc<Notify>, Shutdown) {
    let mut config = Config { hostname: "mx.example.test".into(), ..Config::default() };
    config.delivery.routes.insert("other.test".into(), vec![route.into()]);
    config.queue.retry_schedule = vec![HumanDuration(Duration::from_secs(60)), HumanDuration(Duration::from_secs(300))];
    config.queue.poll_interval = HumanDuration(Duration::from_millis(100));
    config.delivery.connect_timeout = HumanDuration(Duration::from_secs(2));
    config.delivery.dns_server = Some("127.0.0.1:9".parse().unwrap());
    adjust(&mut config);
    let resolver = Resolver::new(config.delivery.dns_server, Duration::from_secs(1)).unwrap();
    let wake = Arc::new(Notify::new());
    let runner = QueueRunner::new(
        world.store.clone(),
        &config,
        world.clock.clone(),
        Arc::clone(&world.ids),
        resolver,
        Arc::clone(&wake),
        Arc::clone(&world.dkim),
    );
    tokio::spawn(runner.run(world.shutdown.clone(), Duration::from_secs(1)));
    wake.notify_one();
    (wake, world.shutdown.clone())
}

/// Waits (bounded) until the queue satisfies `done`; returns it.
async fn wait_queue(world: &World, what: &str, done: impl Fn(&[QueueEntry]) -> bool) -> Vec<QueueEntry> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let queue = world.queue().await;
        if done(&queue) {
            return queue;
        }
        assert!(tokio::time::Instant::now() < deadline, "queue never {what}: {queue:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn attempts(q: &[QueueEntry]) -> u32 {
    q.first().map_or(0, |e| e.recipients[0].attempts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_follow_the_schedule_until_delivered() {
    let world = World::new().await;
    let id = queue_one(&world).await;
    let down = closed_port().await;
    let (wake, _) = runner(&world, down, |c| c.queue.delay_warning = HumanDuration(Duration::from_secs(60)));

    // First attempt at once: refused, recorded, next in 60 s (+ up to 10%).
    let q = wait_queue(&world, "recorded attempt 1", |q| attempts(q) == 1 && !q[0].recipients[0].last_reply.is_empty())
        .await;
    let r = &q[0].recipients[0];
    assert_eq!(q[0].id, id);
    assert!(r.last_reply.contains(&down.to_string()), "{}", r.last_reply);
    assert!(r.next_attempt >= at(60) && r.next_attempt <= at(66), "{:?}", r.next_attempt);

    // Not due yet: nothing happens.
    world.clock.advance(Duration::from_secs(30));
    wake.notify_one();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(attempts(&world.queue().await), 1);

    // Due: the second attempt fails too; the sender is warned once, as the
    // message is older than the warning threshold.
    world.clock.advance(Duration::from_secs(40));
    let q = wait_queue(&world, "recorded attempt 2", |q| attempts(q) == 2 && q[0].recipients[0].warned).await;
    let r = &q[0].recipients[0];
    assert!(r.next_attempt >= at(370) && r.next_attempt <= at(400), "{:?}", r.next_attempt);
    let warning = world.inbox("alice@example.test").await;
    assert_eq!(warning.len(), 1, "one delay warning");
    let text = String::from_utf8_lossy(&warning[0].1);
    assert!(text.contains("Subject: Delayed Mail (still being retried)"), "{text}");
    assert!(text.contains("Action: delayed") && text.contains("Final-Recipient: rfc822; carol@other.test"), "{text}");

    // The destination comes up: a real Mailroom listener for other.test.
    let mut remote = World::new().await;
    remote.store.add_domain(&Domain::parse("other.test").unwrap()).await.unwrap();
    remote.store.add_account(&Address::parse("carol@other.test").unwrap(), "$argon2id$x").await.unwrap();
    let listener = TcpListener::bind(down).await.unwrap();
    let ctx = remote.context(&SessionOptions::default());
    let grace = Duration::from_secs(1);
    let server =
        tokio::spawn(mailroom_smtp::serve(listener, ctx, ListenerTls::Plain(None), remote.shutdown.clone(), grace));
    world.clock.advance(Duration::from_secs(400));
    wait_queue(&world, "emptied", <[QueueEntry]>::is_empty).await;
    let delivered = remote.inbox("carol@other.test").await;
    assert_eq!(delivered.len(), 1);
    let text = String::from_utf8_lossy(&delivered[0].1);
    assert!(text.starts_with("Return-Path: <alice@example.test>\r\nReceived: from mx.example.test"), "{text}");
    assert_eq!(text.matches("Return-Path:").count(), 1, "ours was not sent: {text}");
    assert!(text.ends_with("Subject: waiting\r\n\r\nHi.\r\n"), "{text}");
    assert_eq!(world.inbox("alice@example.test").await.len(), 1, "no more warnings, no bounce");
    remote.trigger.trigger();
    world.trigger.trigger();
    tokio::time::timeout(WAIT, server).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeliverable_message_bounces_when_it_expires() {
    let mut world = World::new().await;
    // The bounce comes from MAILER-DAEMON@mx.example.test, signed by that
    // domain's key.
    let keys = world._dir.path().join("keys");
    let host = Domain::parse("mx.example.test").unwrap();
    mailroom_services::dkim::generate(&keys, &host, "e1", mailroom_services::dkim::Algorithm::Ed25519).unwrap();
    world.dkim = Arc::new(mailroom_services::dkim::DkimKeys::load(&keys).unwrap());
    queue_one(&world).await;
    let (_, _) = runner(&world, closed_port().await, |c| {
        c.queue.max_age = HumanDuration(Duration::from_secs(120));
        c.queue.delay_warning = HumanDuration(Duration::ZERO);
    });
    wait_queue(&world, "recorded attempt 1", |q| attempts(q) == 1 && !q[0].recipients[0].last_reply.is_empty()).await;
    // The retry is capped at the expiry time; at it, the last try fails
    // and the message bounces.
    let q = world.queue().await;
    assert_eq!(q[0].recipients[0].next_attempt, at(60).max(q[0].recipients[0].next_attempt).min(at(120)));
    world.clock.advance(Duration::from_secs(121));
    wait_queue(&world, "emptied", <[QueueEntry]>::is_empty).await;
    let bounce = world.inbox("alice@example.test").await;
    assert_eq!(bounce.len(), 1);
    let text = String::from_utf8_lossy(&bounce[0].1);
    assert!(text.contains("Subject: Undelivered Mail Returned to Sender"), "{text}");
    assert!(text.contains("Action: failed") && text.contains("Status: 5.4.7"), "{text}");
    assert!(text.contains("delivery time expired"), "{text}");
    assert!(text.contains("Subject: waiting"), "the original headers are quoted: {text}");
    assert!(text.starts_with("DKIM-Signature: v=1; a=ed25519-sha256;"), "{text}");
    let unfolded = text.replace("\r\n\t", "");
    assert!(unfolded.contains("d=mx.example.test;") && unfolded.contains("s=e1;"), "{text}");
    world.trigger.trigger();
}

/// With a smarthost, everything goes to it: STARTTLS (required by default
/// for a smarthost), AUTH, then the message. The smarthost here is a real
/// Mailroom submission listener, which queues the message in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smarthost_takes_everything_after_starttls_and_auth() {
    let world = World::new().await;
    let mut relay = World::new().await;
    let dir = tempfile::tempdir().unwrap();
    let tls = Config { data_dir: dir.path().to_owned(), hostname: "localhost".into(), ..Config::default() };
    let acceptor = mailroom_services::tls::acceptor(&tls).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_addr = listener.local_addr().unwrap();
    let options = SessionOptions { submission: true, ..SessionOptions::default() };
    let ctx = relay.context(&options);
    let grace = Duration::from_secs(1);
    let server = tokio::spawn(mailroom_smtp::serve(
        listener,
        ctx,
        ListenerTls::Plain(Some(acceptor)),
        relay.shutdown.clone(),
        grace,
    ));

    queue_one(&world).await;
    // The route for other.test would win over the smarthost: use another
    // domain's route so that the smarthost decides.
    let (_, _) = runner(&world, closed_port().await, |c| {
        c.delivery.routes.clear();
        c.delivery.smarthost = Some(mailroom_services::config::SmarthostConfig {
            address: relay_addr.into(),
            username: Some("alice@example.test".into()),
            password: Some("secret".into()),
            tls: mailroom_services::config::TlsMode::Required,
        });
    });
    wait_queue(&world, "emptied", <[QueueEntry]>::is_empty).await;
    let relayed = relay.queue().await;
    assert_eq!(relayed.len(), 1, "the smarthost queued it");
    assert_eq!(relayed[0].recipients[0].address.to_string(), "carol@other.test");
    let mut raw = Vec::new();
    relay.store.read_blob(&relayed[0].blob, &mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains("with ESMTPSA"), "over TLS, authenticated: {text}");
    relay.trigger.trigger();
    world.trigger.trigger();
    tokio::time::timeout(WAIT, server).await.unwrap().unwrap();
}

/// A route may name its server by host name; the name is resolved through
/// the same resolver as MX lookups (here a dnsmasq on loopback).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_by_host_name_is_resolved() {
    use mailroom_testkit::dnsmasq::{Dnsmasq, Record};
    let Some(dns) = Dnsmasq::start(&[Record::a("relay.test", "127.0.0.1".parse().unwrap())]).unwrap() else {
        assert!(std::env::var_os("CI").is_none(), "dnsmasq is not installed, but CI is set");
        eprintln!("SKIPPED: dnsmasq not installed");
        return;
    };
    let world = World::new().await;
    let mut remote = World::new().await;
    remote.store.add_domain(&Domain::parse("other.test").unwrap()).await.unwrap();
    remote.store.add_account(&Address::parse("carol@other.test").unwrap(), "$argon2id$x").await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let ctx = remote.context(&SessionOptions::default());
    let grace = Duration::from_secs(1);
    let server =
        tokio::spawn(mailroom_smtp::serve(listener, ctx, ListenerTls::Plain(None), remote.shutdown.clone(), grace));
    queue_one(&world).await;
    let by_name = mailroom_services::config::HostPort::parse(&format!("relay.test:{port}")).unwrap();
    let (_, _) = runner(&world, closed_port().await, |c| {
        c.delivery.routes.insert("other.test".into(), vec![by_name]);
        c.delivery.dns_server = Some(dns.addr());
    });
    wait_queue(&world, "emptied", <[QueueEntry]>::is_empty).await;
    assert_eq!(remote.inbox("carol@other.test").await.len(), 1);
    remote.trigger.trigger();
    world.trigger.trigger();
    tokio::time::timeout(WAIT, server).await.unwrap().unwrap();
}
