//! The JSON API and the guards in process: requests in, exact statuses and
//! bodies out, over a real store in a temporary directory. (The browser
//! tests in `crates/mailroom/tests/it/webmail.rs` drive the pages.)

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use mailroom_services::accounts::Admin;
use mailroom_services::auth::Authenticator;
use mailroom_services::config::WebConfig;
use mailroom_services::dkim::DkimKeys;
use mailroom_services::submission::{Outbound, RateLimiter};
use mailroom_store::{AnyStore, MailStore, NewContent, NewMessage, StoreOptions};
use mailroom_types::{Clock, Flags, IdGenerator, Secret, SystemClock};
use mailroom_web::{App, WebContext};
use serde_json::{Value, json};
use tower::ServiceExt;

struct World {
    _dir: tempfile::TempDir,
    store: AnyStore,
    router: axum::Router,
}

async fn world() -> World {
    world_with_rate(0).await
}

/// A world whose users may send `rate` messages a minute (0: any number).
async fn world_with_rate(rate: u32) -> World {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = AnyStore::open(&StoreOptions::new(dir.path().to_owned(), Arc::clone(&clock))).await.unwrap();
    let admin = Admin::new(&store);
    admin.add_domain("example.test").await.unwrap();
    for user in ["alice", "bob"] {
        admin.add_user(&format!("{user}@example.test"), &Secret::new(format!("pw-{user}"))).await.unwrap();
    }
    let auth =
        Arc::new(Authenticator::new(Arc::clone(&clock), Duration::from_millis(200), Duration::from_secs(2)).unwrap());
    let app = App::new(WebContext {
        hostname: "mail.example.test".into(),
        store: store.clone(),
        auth,
        clock: Arc::clone(&clock),
        ids: Arc::new(IdGenerator::new(1)),
        outbound: Outbound::new(store.clone()),
        rate: Arc::new(RateLimiter::new(rate, Duration::from_secs(60), Arc::clone(&clock))),
        dkim: Arc::new(DkimKeys::empty()),
        config: WebConfig::default(),
        max_message_size: 1024 * 1024,
        shutdown: mailroom_services::net::Shutdown::new().1,
    });
    let router = app.router();
    World { _dir: dir, store, router }
}

/// A signed-in client: its cookie and CSRF token.
struct Client {
    cookie: String,
    csrf: String,
}

impl World {
    async fn call(
        &self,
        method: Method,
        path: &str,
        client: Option<&Client>,
        body: Option<Value>,
        csrf: bool,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(c) = client {
            req = req.header(header::COOKIE, &c.cookie);
            if csrf {
                req = req.header("x-csrf-token", &c.csrf);
            }
        }
        let req = match body {
            Some(v) => req.header(header::CONTENT_TYPE, "application/json").body(Body::from(v.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn sign_in(&self, user: &str) -> Client {
        let req = Request::post("/api/session")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"address": format!("{user}@example.test"), "password": format!("pw-{user}")}).to_string(),
            ))
            .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let set = res.headers()[header::SET_COOKIE].to_str().unwrap().to_string();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
        let cookie = set.split(';').next().unwrap().to_string();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        Client { cookie, csrf: v["csrf"].as_str().unwrap().to_string() }
    }

    async fn inbox_id(&self, c: &Client) -> i64 {
        let (_, v) = self.call(Method::GET, "/api/folders", Some(c), None, false).await;
        v["folders"].as_array().unwrap().iter().find(|f| f["role"] == "inbox").unwrap()["id"].as_i64().unwrap()
    }

    async fn deliver(&self, user: &str, raw: &str) {
        let address = mailroom_types::Address::parse(&format!("{user}@example.test")).unwrap();
        let account = self.store.account(&address).await.unwrap().unwrap();
        static SALT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(100);
        let salt = SALT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = IdGenerator::new(salt).blob_id(std::time::SystemTime::now());
        let message = NewMessage {
            content: NewContent::inline(id, raw.as_bytes().to_vec()).unwrap(),
            size: raw.len() as u64,
            internal_date: std::time::SystemTime::now(),
            flags: Flags::empty(),
            keywords: vec![],
            headers: mailroom_services::message::header_cache(raw.as_bytes()),
        };
        self.store.deliver(&message, &[account.id]).await.unwrap();
    }
}

#[tokio::test]
async fn signed_out_requests_get_401_and_a_wrong_password_422() {
    let w = world().await;
    let (status, body) = w.call(Method::GET, "/api/folders", None, None, false).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"error": "please sign in"})));
    let started = std::time::Instant::now();
    let (status, body) = w
        .call(
            Method::POST,
            "/api/session",
            None,
            Some(json!({"address": "alice@example.test", "password": "nope"})),
            false,
        )
        .await;
    assert_eq!((status, body), (StatusCode::UNPROCESSABLE_ENTITY, json!({"error": "wrong address or password"})));
    assert!(started.elapsed() >= Duration::from_millis(200), "a failure waits out its delay");
    let (status, _) = w
        .call(
            Method::POST,
            "/api/session",
            None,
            Some(json!({"address": "nobody@example.test", "password": "x"})),
            false,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "no user enumeration: the same answer");
}

#[tokio::test]
async fn state_changes_need_the_csrf_token_and_our_origin() {
    let w = world().await;
    let alice = w.sign_in("alice").await;
    let (status, _) = w.call(Method::POST, "/api/folders", Some(&alice), Some(json!({"name": "X"})), false).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no token");
    let forged = Client { cookie: alice.cookie.clone(), csrf: "0".repeat(64) };
    let (status, _) = w.call(Method::POST, "/api/folders", Some(&forged), Some(json!({"name": "X"})), true).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a wrong token");
    let req = Request::post("/api/folders")
        .header(header::COOKIE, &alice.cookie)
        .header("x-csrf-token", &alice.csrf)
        .header(header::ORIGIN, "https://evil.example")
        .header(header::HOST, "mail.example.test")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"name":"X"}"#))
        .unwrap();
    assert_eq!(w.router.clone().oneshot(req).await.unwrap().status(), StatusCode::FORBIDDEN, "another site's page");
    let (status, v) =
        w.call(Method::POST, "/api/folders", Some(&alice), Some(json!({"name": "Projects/2026"})), true).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(v["name"], "Projects/2026");
    // Signing out ends the session on the server.
    let (status, _) = w.call(Method::DELETE, "/api/session", Some(&alice), None, true).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = w.call(Method::GET, "/api/folders", Some(&alice), None, false).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn folders_are_listed_created_renamed_and_deleted() {
    let w = world().await;
    let alice = w.sign_in("alice").await;
    let (_, v) = w.call(Method::GET, "/api/folders", Some(&alice), None, false).await;
    let names: Vec<&str> = v["folders"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names[0], "INBOX");
    for special in ["Sent", "Drafts", "Trash", "Junk", "Archive"] {
        assert!(names.contains(&special), "{names:?}");
    }
    let (_, created) = w.call(Method::POST, "/api/folders", Some(&alice), Some(json!({"name": "Work"})), true).await;
    let id = created["id"].as_i64().unwrap();
    let (status, v) = w.call(Method::POST, "/api/folders", Some(&alice), Some(json!({"name": "Work"})), true).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (status, _) =
        w.call(Method::PATCH, &format!("/api/folders/{id}"), Some(&alice), Some(json!({"name": "Job"})), true).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let inbox = w.inbox_id(&alice).await;
    let (status, v) = w.call(Method::DELETE, &format!("/api/folders/{inbox}"), Some(&alice), None, true).await;
    assert_eq!((status, v), (StatusCode::UNPROCESSABLE_ENTITY, json!({"error": "INBOX cannot be deleted"})));
    let (status, _) = w.call(Method::DELETE, &format!("/api/folders/{id}"), Some(&alice), None, true).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Another user's folder does not exist for alice.
    let bob = w.sign_in("bob").await;
    let bob_inbox = w.inbox_id(&bob).await;
    let (status, _) =
        w.call(Method::GET, &format!("/api/folders/{bob_inbox}/messages"), Some(&alice), None, false).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn lists_page_newest_first_and_search_and_actions_apply() {
    let w = world().await;
    for i in 1..=3 {
        let raw = format!(
            "From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: note {i}\r\n\r\nbody {}\r\n",
            if i == 2 { "pineapple" } else { "plain" }
        );
        w.deliver("alice", &raw).await;
    }
    let alice = w.sign_in("alice").await;
    let inbox = w.inbox_id(&alice).await;
    let (status, v) = w.call(Method::GET, &format!("/api/folders/{inbox}/messages"), Some(&alice), None, false).await;
    assert_eq!(status, StatusCode::OK);
    let subjects: Vec<&str> = v["rows"].as_array().unwrap().iter().map(|r| r["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects, ["note 3", "note 2", "note 1"]);
    assert_eq!((v["page"].as_u64(), v["pages"].as_u64(), v["total"].as_u64()), (Some(1), Some(1), Some(3)));
    assert_eq!(v["rows"][0]["from"], "Bob");
    assert_eq!(v["rows"][0]["seen"], false);
    let (_, v) = w
        .call(Method::GET, &format!("/api/folders/{inbox}/messages?q=PineApple&in=body"), Some(&alice), None, false)
        .await;
    assert_eq!(v["rows"].as_array().unwrap().len(), 1);
    assert_eq!(v["rows"][0]["subject"], "note 2");
    let (_, v) = w
        .call(Method::GET, &format!("/api/folders/{inbox}/messages?q=note%201&in=subject"), Some(&alice), None, false)
        .await;
    assert_eq!(v["total"], 1);

    let act = |op: &str, uids: Vec<u32>| json!({"op": op, "uids": uids});
    let path = format!("/api/folders/{inbox}/messages/actions");
    let (status, v) = w.call(Method::POST, &path, Some(&alice), Some(act("flag", vec![1, 3])), true).await;
    assert_eq!((status, v), (StatusCode::OK, json!({"done": "marked"})));
    let (_, v) = w.call(Method::GET, &format!("/api/folders/{inbox}/messages"), Some(&alice), None, false).await;
    let flagged: Vec<bool> = v["rows"].as_array().unwrap().iter().map(|r| r["flagged"].as_bool().unwrap()).collect();
    assert_eq!(flagged, [true, false, true]);
    let (status, v) = w.call(Method::POST, &path, Some(&alice), Some(act("delete", vec![2])), true).await;
    assert_eq!((status, v), (StatusCode::OK, json!({"done": "deleted"})));
    let (_, folders) = w.call(Method::GET, "/api/folders", Some(&alice), None, false).await;
    let trash = folders["folders"].as_array().unwrap().iter().find(|f| f["role"] == "trash").unwrap().clone();
    assert_eq!(trash["total"], 1, "deleted into Trash");
    let trash_id = trash["id"].as_i64().unwrap();
    let (_, v) = w.call(Method::POST, &format!("/api/folders/{trash_id}/empty"), Some(&alice), None, true).await;
    assert_eq!(v, json!({"removed": 1}));
    let (status, v) = w.call(Method::POST, &format!("/api/folders/{inbox}/empty"), Some(&alice), None, true).await;
    assert_eq!((status, v), (StatusCode::UNPROCESSABLE_ENTITY, json!({"error": "only Trash and Junk can be emptied"})));
    let (status, _) = w.call(Method::POST, &path, Some(&alice), Some(act("explode", vec![1])), true).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn sending_commits_local_copies_the_queue_and_sent_together() {
    let w = world().await;
    w.deliver("alice", "From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: lunch?\r\nMessage-ID: <q1@example.test>\r\n\r\nNoon?\r\n").await;
    let alice = w.sign_in("alice").await;
    let inbox = w.inbox_id(&alice).await;
    let message = json!({
        "to": "Bob <bob@example.test>, carol@remote.test",
        "bcc": "dave@remote.test",
        "subject": "Re: lunch?",
        "body": "Yes.\n",
        "in_reply_to": "q1@example.test",
        "references": ["q1@example.test"],
        "attachments": [{"filename": "menu.bin", "data": "AAECAwQ="}],
        "answers": [inbox, 1],
    });
    let (status, v) = w.call(Method::POST, "/api/send", Some(&alice), Some(message), true).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!((v["local"].as_u64(), v["remote"].as_u64()), (Some(1), Some(2)));

    let queued = w.store.queue_entries(None).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].id.as_str(), v["queued_as"].as_str().unwrap());
    let mut remote: Vec<String> = queued[0].recipients.iter().map(|r| r.address.to_string()).collect();
    remote.sort();
    assert_eq!(remote, ["carol@remote.test", "dave@remote.test"], "Bcc is an envelope recipient");
    assert_eq!(queued[0].sender.as_ref().map(ToString::to_string).as_deref(), Some("alice@example.test"));

    let bob = w.sign_in("bob").await;
    let bob_inbox = w.inbox_id(&bob).await;
    let (_, got) = w.call(Method::GET, &format!("/api/folders/{bob_inbox}/messages/1"), Some(&bob), None, false).await;
    assert_eq!(got["subject"], "Re: lunch?");
    assert_eq!(got["text"].as_str().map(str::trim_end), Some("Yes."));
    assert_eq!(got["attachments"][0]["filename"], "menu.bin");
    let raw = raw_message(&w, "bob", 1).await;
    assert!(raw.contains("In-Reply-To: <q1@example.test>"), "{raw}");
    assert!(!raw.to_ascii_lowercase().contains("dave@remote.test"), "no Bcc in what is sent: {raw}");
    assert!(raw.starts_with("Received: from [127.0.0.1] by mail.example.test with HTTP"), "{raw}");

    let (_, folders) = w.call(Method::GET, "/api/folders", Some(&alice), None, false).await;
    let sent = folders["folders"].as_array().unwrap().iter().find(|f| f["role"] == "sent").unwrap().clone();
    assert_eq!((sent["total"].as_u64(), sent["unread"].as_u64()), (Some(1), Some(0)), "the Sent copy, seen");
    let (_, list) = w.call(Method::GET, &format!("/api/folders/{inbox}/messages"), Some(&alice), None, false).await;
    assert_eq!(list["rows"][0]["answered"], true, "the original is marked answered");

    let bad = json!({"to": "nobody@example.test", "subject": "x"});
    let (status, v) = w.call(Method::POST, "/api/send", Some(&alice), Some(bad), true).await;
    assert_eq!(
        (status, v),
        (StatusCode::UNPROCESSABLE_ENTITY, json!({"error": "nobody@example.test: no such user here"}))
    );
    let (status, _) = w.call(Method::POST, "/api/send", Some(&alice), Some(json!({"subject": "x"})), true).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "no recipient");
    assert_eq!(w.store.queue_entries(None).await.unwrap().len(), 1, "nothing more was queued");
}

#[tokio::test]
async fn drafts_are_saved_resumed_and_replaced() {
    let w = world().await;
    let alice = w.sign_in("alice").await;
    let draft = json!({"to": "not an address", "bcc": "b@remote.test", "subject": "Plans", "body": "Draft one.\n"});
    let (status, v) = w.call(Method::POST, "/api/drafts", Some(&alice), Some(draft), true).await;
    assert_eq!(status, StatusCode::CREATED, "a draft may have bad recipients: {v}");
    let (folder, uid) = (v["folder"].as_i64().unwrap(), v["uid"].as_u64().unwrap());
    // The composer resumes it whole, Bcc included.
    let req = Request::get(format!("/compose?draft={folder}:{uid}"))
        .header(header::COOKIE, &alice.cookie)
        .body(Body::empty())
        .unwrap();
    let res = w.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let page = String::from_utf8(axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    for expected in [
        r#"value="not an address""#,
        r#"value="b@remote.test""#,
        r#"value="Plans""#,
        "Draft one.",
        &format!(r#"name="replaces" value="{folder}:{uid}""#),
    ] {
        assert!(page.contains(expected), "{expected} in {page}");
    }
    let second =
        json!({"to": "bob@example.test", "subject": "Plans", "body": "Draft two.\n", "replaces": [folder, uid]});
    let (_, v) = w.call(Method::POST, "/api/drafts", Some(&alice), Some(second), true).await;
    let new_uid = v["uid"].as_u64().unwrap();
    let (_, list) = w.call(Method::GET, &format!("/api/folders/{folder}/messages"), Some(&alice), None, false).await;
    let uids: Vec<u64> = list["rows"].as_array().unwrap().iter().map(|r| r["uid"].as_u64().unwrap()).collect();
    assert_eq!(uids, [new_uid], "the old draft is replaced");
    let send = json!({"to": "bob@example.test", "subject": "Plans", "body": "Final.\n", "replaces": [folder, new_uid]});
    let (status, _) = w.call(Method::POST, "/api/send", Some(&alice), Some(send), true).await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = w.call(Method::GET, &format!("/api/folders/{folder}/messages"), Some(&alice), None, false).await;
    assert_eq!(list["total"], 0, "a sent draft leaves Drafts");
}

async fn raw_message(w: &World, user: &str, uid: u32) -> String {
    let address = mailroom_types::Address::parse(&format!("{user}@example.test")).unwrap();
    let account = w.store.account(&address).await.unwrap().unwrap();
    let inbox = w.store.mailbox(account.id, "INBOX").await.unwrap().unwrap();
    let m = w.store.message(inbox.id, mailroom_types::Uid::new(uid).unwrap()).await.unwrap().unwrap();
    let mut buf = Vec::new();
    assert!(w.store.read_blob(&m.blob, &mut buf).await.unwrap());
    String::from_utf8(buf).unwrap()
}

#[tokio::test]
async fn the_sending_rate_is_the_users_as_on_port_587() {
    let w = world_with_rate(1).await;
    let alice = w.sign_in("alice").await;
    let message = json!({"to": "bob@example.test", "subject": "one", "body": "1\n"});
    let (status, _) = w.call(Method::POST, "/api/send", Some(&alice), Some(message.clone()), true).await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = w.call(Method::POST, "/api/send", Some(&alice), Some(message), true).await;
    assert_eq!(
        (status, v),
        (StatusCode::TOO_MANY_REQUESTS, json!({"error": "too much mail sent recently; try again later"}))
    );
}

#[tokio::test]
async fn passwords_never_cross_a_network_in_the_clear() {
    let w = world().await;
    let body = json!({"address": "alice@example.test", "password": "pw-alice"}).to_string();
    let mut req =
        Request::post("/api/session").header(header::CONTENT_TYPE, "application/json").body(Body::from(body)).unwrap();
    req.extensions_mut()
        .insert(mailroom_web::serve::Peer { ip: std::net::Ipv4Addr::new(192, 0, 2, 7).into(), tls: false });
    let res = w.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.headers().get(header::SET_COOKIE).is_none(), "no session");
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v, json!({"error": "sign in over HTTPS: passwords are not accepted over plain HTTP"}));
}
