//! The webmail end to end: a server started in-process, mail in over real
//! SMTP, the pages driven in a headless Chromium through chromedriver, the
//! rest of the HTTP spoken by hand, and the results read back over IMAP and
//! from the store. Screenshots land in `target/webmail-artefacts/`.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use imap_next::imap_types::command::CommandBody;
use imap_next::imap_types::response::Data;
use mailroom_services::config::HumanDuration;
use mailroom_store::MessageRecord;
use mailroom_types::Flags;
use serde_json::json;

use crate::common::{InProcess, mailbox_messages, send_mail, show};
use crate::imap::rust_client;
use crate::webmail_browser::{
    self, ApiSession, Browser, Watcher, attachment, base64_lines, have_browser, header, pseudo_random, request,
};

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";
/// InProcess gives every user the password `pw-USER`.
const ALICE_PW: &str = "pw-alice@example.test";
const BOB_PW: &str = "pw-bob@example.test";

/// The first failed sign-in waits this long; the next twice as long.
const FAILURE_DELAY: Duration = Duration::from_millis(400);

/// A server with every listener on loopback port 0, and short sign-in
/// throttling.
fn server() -> InProcess {
    InProcess::start_with(|c| {
        c.auth.failure_delay = HumanDuration(FAILURE_DELAY);
        c.auth.failure_delay_max = HumanDuration(FAILURE_DELAY * 8);
    })
}

/// Runs a browser test's steps on the server's runtime, bounded.
fn run<T>(server: &InProcess, steps: impl Future<Output = T>) -> T {
    webmail_browser::run(&server.rt, steps)
}

/// A multipart/mixed message from bob: a text body and one base64
/// attachment.
fn with_attachment(subject: &str, message_id: &str, text: &str, filename: &str, bytes: &[u8]) -> Vec<u8> {
    format!(
        "From: Bob <{BOB}>\r\nTo: {ALICE}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n\
         Date: Mon, 02 Feb 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"=-b1\"\r\n\r\n\
         --=-b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\
         --=-b1\r\nContent-Type: application/octet-stream; name=\"{filename}\"\r\n\
         Content-Disposition: attachment; filename=\"{filename}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         {}--=-b1--\r\n",
        base64_lines(bytes)
    )
    .into_bytes()
}

/// A plain message from bob.
fn plain(subject: &str, text: &str) -> Vec<u8> {
    format!("From: Bob <{BOB}>\r\nTo: {ALICE}\r\nSubject: {subject}\r\n\r\n{text}\r\n").into_bytes()
}

fn mailbox(server: &InProcess, user: &str, name: &str) -> Vec<(MessageRecord, Vec<u8>)> {
    server.rt.block_on(mailbox_messages(&server.store, user, name)).unwrap_or_else(|| panic!("no mailbox {name}"))
}

/// `user`'s INBOX message `uid` over IMAP (UID FETCH BODY.PEEK[]).
fn imap_fetch(server: &InProcess, user: &str, password: &str, uid: u32) -> Vec<u8> {
    let addr = server.imap_addr();
    server.rt.block_on(async {
        let mut s = rust_client::Session::connect(addr).await;
        s.run(CommandBody::login(user.to_string(), password.to_string()).unwrap()).await;
        s.run(CommandBody::select("INBOX").unwrap()).await;
        let body = rust_client::body_of(&s.run(rust_client::fetch_body(uid)).await);
        s.run(CommandBody::Logout).await;
        body
    })
}

/// The folder id in a list page's path (`/mail/7?...` is 7).
fn folder_of(path: &str) -> i64 {
    let rest = path.strip_prefix("/mail/").unwrap_or_else(|| panic!("not a folder page: {path}"));
    rest.split(['?', '/']).next().unwrap().parse().unwrap_or_else(|_| panic!("not a folder page: {path}"))
}

// ---------------------------------------------------------------------------
// 1. Sign in, read, download, reply with an attachment
// ---------------------------------------------------------------------------

#[test]
fn browser_reads_downloads_and_replies() {
    if !have_browser() {
        return;
    }
    let server = server();
    let figures = pseudo_random(2048, 1);
    let notes = pseudo_random(3001, 2);
    let files = tempfile::tempdir().unwrap();
    let notes_path = files.path().join("notes.bin");
    std::fs::write(&notes_path, &notes).unwrap();
    let original_id = "<figures-1@example.test>";
    let original = with_attachment(
        "Quarterly figures",
        original_id,
        "Hello Alice,\r\nthe figures are attached.",
        "figures.bin",
        &figures,
    );

    let downloaded = run(&server, async {
        let b = Browser::open(server.http_addr()).await;
        let inbox = b.sign_in(ALICE, ALICE_PW).await;
        send_mail(server.addr, BOB, ALICE, &original);
        b.goto(&inbox).await;

        // The list: one unread row from Bob.
        let row = b.find("table#messages tbody tr").await;
        let text = row.text().await.unwrap();
        assert!(text.contains("Quarterly figures") && text.contains("Bob"), "{text}");
        assert_eq!(row.attr("class").await.unwrap().as_deref(), Some("unread"));
        b.screenshot("list").await;

        // The message: subject and text, then the attachment saved to disk.
        b.find("table#messages td.subject a").await.click().await.unwrap();
        let title = b.find("article#message h1").await.text().await.unwrap();
        assert_eq!(title, "Quarterly figures");
        let body = b.find("#text").await.text().await.unwrap();
        assert!(body.contains("the figures are attached."), "{body}");
        let link = b.find("ul#attachments a").await;
        assert_eq!(link.text().await.unwrap(), "figures.bin");
        b.screenshot("message").await;
        link.click().await.unwrap();
        let downloaded = b.downloaded("figures.bin").await;

        // Reply: the composer is filled in; a body and a file are added.
        b.client.find(Locator::LinkText("Reply")).await.expect("a Reply link").click().await.unwrap();
        b.find("form#compose").await;
        let to = b.find("#to").await.prop("value").await.unwrap().unwrap_or_default();
        assert!(to.contains(BOB), "reply To: {to:?}");
        let subject = b.find("#subject").await.prop("value").await.unwrap().unwrap_or_default();
        assert_eq!(subject, "Re: Quarterly figures");
        let text = b.find("#body").await;
        text.clear().await.unwrap();
        text.send_keys("Thanks Bob,\nmy notes are attached.").await.unwrap();
        b.find("input#attachment").await.send_keys(&notes_path.display().to_string()).await.unwrap();
        b.screenshot("composer").await;
        b.find("button[name=op][value=send]").await.click().await.unwrap();
        b.wait_until("the sent notice", "return location.search.includes('done=sent')").await;
        let notice = b.find("p.notice").await.text().await.unwrap();
        assert_eq!(notice, "Message sent.");
        b.close().await;
        downloaded
    });
    assert!(
        downloaded == figures,
        "the downloaded attachment differs: {} bytes vs {}",
        downloaded.len(),
        figures.len()
    );

    // Bob's copy, read over IMAP: a reply to the original, with the file.
    let reply = imap_fetch(&server, BOB, BOB_PW, 1);
    assert_eq!(header(&reply, "In-Reply-To").as_deref(), Some(original_id), "{}", show(&reply));
    assert!(header(&reply, "References").is_some_and(|r| r.contains(original_id)), "{}", show(&reply));
    assert_eq!(header(&reply, "Subject").as_deref(), Some("Re: Quarterly figures"));
    assert!(header(&reply, "From").is_some_and(|f| f.contains(ALICE)), "{}", show(&reply));
    assert!(show(&reply).contains("my notes are attached."), "{}", show(&reply));
    assert!(attachment(&reply, "notes.bin") == notes, "the attachment bob received differs");

    // Alice's Sent copy, and the original marked answered.
    let sent = mailbox(&server, ALICE, "Sent");
    assert_eq!(sent.len(), 1, "one copy in Sent");
    assert_eq!(header(&sent[0].1, "In-Reply-To").as_deref(), Some(original_id));
    assert!(attachment(&sent[0].1, "notes.bin") == notes, "the Sent copy's attachment differs");
    let inbox = server.inbox(ALICE);
    assert_eq!(inbox.len(), 1);
    assert!(inbox[0].0.flags.contains(Flags::ANSWERED | Flags::SEEN), "{:?}", inbox[0].0.flags);
}

// ---------------------------------------------------------------------------
// 2. Hostile HTML renders inert
// ---------------------------------------------------------------------------

/// HTML that does everything a message must not: scripts (plain, in SVG,
/// in handlers, in links), a form, CSS that calls out, a refresh, frames,
/// and a tracking pixel. Every way out leads to the watcher on `port`.
fn hostile(port: u16) -> Vec<u8> {
    let w = format!("http://127.0.0.1:{port}");
    let pwn = |how: &str| {
        format!(
            "document.documentElement.setAttribute('data-pwned','{how}');document.title='pwned-{how}';\
             try{{window.top.document.title='pwned-{how}'}}catch(e){{}};fetch('{w}/{how}');"
        )
    };
    let html = format!(
        "<html><head><title>hostile</title>\
         <meta http-equiv=\"refresh\" content=\"0;url={w}/refresh\">\
         <link rel=\"stylesheet\" href=\"{w}/link.css\">\
         <style>body {{ background: url({w}/css); }} p {{ width: expression(alert(1)); }} @import url({w}/import.css);</style>\
         <script>{script}</script></head>\
         <body onload=\"{onload}\">\
         <p id=\"hello\">Hello from a hostile sender.</p>\
         <img src=\"x\" onerror=\"{onerror}\">\
         <a id=\"js\" href=\"javascript:{jslink}\">a link</a> \
         <a id=\"js2\" href=\" JaVaScRiPt:{jslink}\">another link</a>\
         <form action=\"{w}/form\" method=\"post\"><input name=\"a\" value=\"b\"><button id=\"go\">Go</button></form>\
         <div style=\"background-image: url({w}/inline-css); width: expression(alert(2))\">styled</div>\
         <svg><script>{svg}</script><circle r=\"5\" onload=\"{svg}\"/></svg>\
         <iframe src=\"{w}/frame\"></iframe><object data=\"{w}/object\"></object><embed src=\"{w}/embed\">\
         <img src=\"{w}/pixel.gif\" width=\"1\" height=\"1\" alt=\"\">\
         </body></html>",
        script = pwn("script"),
        onload = pwn("onload"),
        onerror = pwn("onerror"),
        jslink = pwn("link"),
        svg = pwn("svg"),
    );
    format!(
        "From: Mallory <{BOB}>\r\nTo: {ALICE}\r\nSubject: Hostile hello\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/html; charset=utf-8\r\n\r\n{}\r\n",
        // SMTP lines stay under 1000 octets.
        html.replace("><", ">\r\n<")
    )
    .into_bytes()
}

/// Checks, in the frame entered, that nothing active survived; styles
/// reaching out count too unless `arguments[0]` (images were allowed).
const INERT: &str = "
    const images = arguments[0];
    const bad = [];
    for (const sel of ['script', 'form', 'svg', 'iframe', 'object', 'embed', 'meta[http-equiv]', 'link', 'base[href]'])
        if (document.querySelector(sel)) bad.push('a ' + sel + ' element');
    for (const el of document.querySelectorAll('*'))
        for (const a of el.attributes) {
            if (/^on/i.test(a.name)) bad.push(el.tagName + ' ' + a.name);
            if (/^\\s*javascript:/i.test(a.value)) bad.push(el.tagName + ' ' + a.name + '=' + a.value);
            if (/expression\\s*\\(/i.test(a.value)) bad.push(el.tagName + ' ' + a.name + '=' + a.value);
            if (!images && /url\\s*\\(\\s*['\"]?https?:/i.test(a.value)) bad.push(el.tagName + ' ' + a.name + '=' + a.value);
        }
    for (const s of document.querySelectorAll('style')) {
        if (/expression|@import/i.test(s.textContent)) bad.push('style ' + s.textContent);
        if (!images && /https?:/i.test(s.textContent)) bad.push('style ' + s.textContent);
    }
    if (document.documentElement.hasAttribute('data-pwned')) bad.push('a script ran');
    if (!document.body.textContent.includes('Hello from a hostile sender.')) bad.push('the text is gone');
    return bad;";

#[test]
fn hostile_html_renders_inert() {
    if !have_browser() {
        return;
    }
    let server = server();
    let watcher = Watcher::start();
    send_mail(server.addr, BOB, ALICE, &hostile(watcher.port));

    run(&server, async {
        let b = Browser::open(server.http_addr()).await;
        let inbox = b.sign_in(ALICE, ALICE_PW).await;
        let message = format!("/mail/{}/1", folder_of(&inbox));
        b.goto(&message).await;
        b.find("iframe#body").await;
        // The frame's document loaded (its text is there), then a quiet
        // window for anything that would call out.
        b.find("iframe#body").await.enter_frame().await.unwrap();
        b.wait_until("the body's text", "return document.body.textContent.includes('Hello from a hostile sender.')")
            .await;
        b.client.enter_parent_frame().await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(watcher.hits(), Vec::<String>::new(), "the message reached out");

        // The page is untouched: same place, same title, no mark.
        assert_eq!(b.location().await, message, "the message navigated the page");
        assert_eq!(b.client.title().await.unwrap(), "Hostile hello – Mailroom");
        let marked = b.eval("return document.documentElement.hasAttribute('data-pwned')", vec![]).await;
        assert_eq!(marked, json!(false));
        let sandbox = b.find("iframe#body").await.attr("sandbox").await.unwrap().unwrap_or_default();
        assert!(!sandbox.contains("allow-scripts") && !sandbox.contains("allow-same-origin"), "sandbox {sandbox:?}");
        b.screenshot("hostile").await;

        // Inside the frame: no active content left at all.
        b.find("iframe#body").await.enter_frame().await.unwrap();
        let bad = b.eval(INERT, vec![json!(false)]).await;
        assert_eq!(bad, json!([]), "active content in the rendered body");
        let title = b.client.title().await.unwrap_or_default();
        assert!(!title.contains("pwned"), "a script set the frame's title: {title}");
        b.client.enter_parent_frame().await.unwrap();

        // Remote images load only when asked for: then the pixel is fetched.
        let show_images = b.client.find(Locator::LinkText("Show images")).await.unwrap_or_else(|e| {
            panic!("the message has a remote image but the page offers no \"Show images\" link: {e}")
        });
        show_images.click().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !watcher.hits().iter().any(|h| h.starts_with("GET /pixel.gif ")) {
            assert!(
                Instant::now() < deadline,
                "the pixel was not fetched once images were shown: {:?}",
                watcher.hits()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        b.find("iframe#body").await.enter_frame().await.unwrap();
        let bad = b.eval(INERT, vec![json!(true)]).await;
        assert_eq!(bad, json!([]), "active content in the rendered body with images shown");
        b.client.enter_parent_frame().await.unwrap();
        b.screenshot("hostile-images").await;
        b.close().await;
        // Showing images lets images load (CSS backgrounds are images
        // too), nothing else.
        let images = ["/pixel.gif", "/css", "/inline-css"];
        let others: Vec<String> = watcher
            .hits()
            .into_iter()
            .filter(|h| !images.iter().any(|i| h.starts_with(&format!("GET {i} "))))
            .collect();
        assert_eq!(others, Vec::<String>::new(), "with images shown, more than images loaded");
    });
}

// ---------------------------------------------------------------------------
// 3. CSRF, cookies, throttling
// ---------------------------------------------------------------------------

/// A form POST to `path` with `cookie` and `extra` headers.
fn post_form(addr: SocketAddr, path: &str, cookie: &str, extra: &[(&str, &str)], body: &str) -> u16 {
    let mut headers = vec![("Cookie", cookie), ("Content-Type", "application/x-www-form-urlencoded")];
    headers.extend_from_slice(extra);
    request(addr, "POST", path, &headers, body.as_bytes()).status
}

/// One failed sign-in through the form; returns how long the answer took.
fn failed_sign_in(addr: SocketAddr) -> Duration {
    let form = request(addr, "GET", "/login", &[], b"");
    let token = form.set_cookie("mailroom_login").expect("the login form's cookie");
    let cookie = format!("mailroom_login={token}");
    let body = format!("address=bob%40example.test&password=wrong&csrf={token}");
    let started = Instant::now();
    let status = post_form(addr, "/login", &cookie, &[], &body);
    let took = started.elapsed();
    assert_eq!(status, 422, "a wrong password is refused");
    took
}

#[test]
fn csrf_cookies_and_throttling() {
    if !have_browser() {
        return;
    }
    let server = server();
    send_mail(server.addr, BOB, ALICE, &plain("Flag me", "one message"));
    let http = server.http_addr();

    let (folder, cookie, csrf) = run(&server, async {
        let b = Browser::open(http).await;
        let inbox = b.sign_in(ALICE, ALICE_PW).await;
        b.find("table#messages").await;
        // Scripts cannot read the session cookie; it is strict and HttpOnly.
        let visible = b.eval("return document.cookie", vec![]).await;
        assert!(!visible.as_str().unwrap_or_default().contains("mailroom_session"), "document.cookie: {visible}");
        let cookies = b.client.get_all_cookies().await.unwrap();
        let session = cookies.iter().find(|c| c.name() == "mailroom_session").expect("the session cookie");
        assert_eq!(session.http_only(), Some(true));
        assert_eq!(format!("{:?}", session.same_site()), "Some(Strict)");
        let csrf = b.find("form#list input[name=csrf]").await.attr("value").await.unwrap().expect("a token");
        // The page's own origin, without the token: refused too.
        let status = b
            .eval(
                "return fetch(location.pathname, {method: 'POST', headers: {'Content-Type': \
                 'application/x-www-form-urlencoded'}, body: 'op=flag&uid=1'}).then(r => r.status)",
                vec![],
            )
            .await;
        assert_eq!(status, json!(403), "a same-origin POST without the token");
        let cookie = format!("mailroom_session={}", session.value());
        b.close().await;
        (folder_of(&inbox), cookie, csrf)
    });

    let path = format!("/mail/{folder}");
    let refused = [
        ("no token", "op=flag&uid=1".to_string(), vec![]),
        ("a wrong token", format!("op=flag&uid=1&csrf={}", "0".repeat(csrf.len())), vec![]),
        ("another site's origin", format!("op=flag&uid=1&csrf={csrf}"), vec![("Origin", "http://evil.example")]),
        ("a cross-site fetch", format!("op=flag&uid=1&csrf={csrf}"), vec![("Sec-Fetch-Site", "cross-site")]),
    ];
    for (what, body, extra) in &refused {
        assert_eq!(post_form(http, &path, &cookie, extra, body), 403, "a POST with {what}");
    }
    let api = [("Cookie", cookie.as_str()), ("Content-Type", "application/json")];
    let r =
        request(http, "POST", &format!("/api/folders/{folder}/messages/actions"), &api, br#"{"op":"flag","uids":[1]}"#);
    assert_eq!(r.status, 403, "an API POST without X-CSRF-Token: {}", r.text());
    assert!(server.inbox(ALICE)[0].0.flags.is_empty(), "a refused request changed the message");
    // The same request with the token and our own origin works.
    let origin = format!("http://{http}");
    let status = post_form(http, &path, &cookie, &[("Origin", &origin)], &format!("op=flag&uid=1&csrf={csrf}"));
    assert_eq!(status, 303);
    assert_eq!(server.inbox(ALICE)[0].0.flags, Flags::FLAGGED);

    // Failed sign-ins: the first waits the delay, the next twice that.
    let first = failed_sign_in(http);
    let second = failed_sign_in(http);
    assert!(first >= FAILURE_DELAY, "the first failure took {first:?}");
    assert!(second >= FAILURE_DELAY * 2, "the second failure took {second:?}");
    assert!(
        second >= first + FAILURE_DELAY / 2,
        "the second failure ({second:?}) was not slower than the first ({first:?})"
    );
}

// ---------------------------------------------------------------------------
// 4. Conditional GET and no-store
// ---------------------------------------------------------------------------

/// GETs `path`, then again with its ETag: 304 and nothing else.
fn revalidates(api: &ApiSession, path: &str) -> Vec<u8> {
    let first = api.get(path, &[]);
    assert_eq!(first.status, 200, "{path}: {}", first.text());
    assert_eq!(first.header("cache-control"), Some("private, max-age=31536000, immutable"), "{path}");
    let etag = first.header("etag").unwrap_or_else(|| panic!("{path} has no ETag"));
    assert!(first.header("last-modified").is_some(), "{path} has no Last-Modified");
    let again = api.get(path, &[("If-None-Match", etag)]);
    assert_eq!(again.status, 304, "{path} with If-None-Match");
    assert!(again.body.is_empty(), "a 304 has no body: {:?}", again.text());
    assert_eq!(again.header("etag"), Some(etag));
    let other = api.get(path, &[("If-None-Match", "\"something-else\"")]);
    assert_eq!(other.status, 200, "{path} with another ETag");
    first.body
}

#[test]
fn bodies_and_parts_revalidate_and_lists_are_never_stale() {
    let server = server();
    let http = server.http_addr();
    let data = pseudo_random(1500, 3);
    send_mail(server.addr, BOB, ALICE, &with_attachment("Cached", "<c-1@example.test>", "cache me", "data.bin", &data));
    let api = ApiSession::sign_in(http, ALICE, ALICE_PW);
    let inbox = api.folder("inbox");

    let message = api.get(&format!("/api/folders/{inbox}/messages/1?peek=1"), &[]);
    assert_eq!(message.status, 200, "{}", message.text());
    let message = message.json();
    let url = message["attachments"][0]["url"].as_str().unwrap_or_else(|| panic!("no attachment in {message}"));
    assert!(revalidates(&api, url) == data, "the part's bytes differ");
    let body = revalidates(&api, &format!("/mail/{inbox}/1/body"));
    assert!(show(&body).contains("cache me"), "{}", show(&body));
    revalidates(&api, &format!("/mail/{inbox}/1/raw"));

    // Lists are never cached, and show a delivery at once.
    let list = format!("/mail/{inbox}");
    let page = api.get(&list, &[]);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(page.text().contains("Cached") && !page.text().contains("Fresh news"));
    send_mail(server.addr, BOB, ALICE, &plain("Fresh news", "just in"));
    let page = api.get(&list, &[]);
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(page.text().contains("Fresh news"), "the list lacks the new message");
    let json = api.get(&format!("/api/folders/{inbox}/messages"), &[]);
    assert_eq!(json.header("cache-control"), Some("no-store"));
    let subjects: Vec<String> = json.json()["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["subject"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(subjects, ["Fresh news", "Cached"], "newest first");
}

// ---------------------------------------------------------------------------
// 5. One truth: IMAP IDLE sees the webmail's changes, the page sees mail
// ---------------------------------------------------------------------------

#[test]
fn imap_idle_and_the_open_page_see_changes_at_once() {
    if !have_browser() {
        return;
    }
    let server = server();
    let http = server.http_addr();
    send_mail(server.addr, BOB, ALICE, &plain("Watched", "flag and move me"));
    let api = ApiSession::sign_in(http, ALICE, ALICE_PW);
    let (inbox, archive) = (api.folder("inbox"), api.folder("archive"));
    let imap = server.imap_addr();

    let (flagged, expunged) = server.rt.block_on(async {
        let mut s = rust_client::Session::connect(imap).await;
        s.run(CommandBody::login(ALICE, ALICE_PW).unwrap()).await;
        s.run(CommandBody::select("INBOX").unwrap()).await;
        let wait = Duration::from_secs(5);
        s.idle().await;
        api.post_json(&format!("/api/folders/{inbox}/messages/actions"), &json!({ "op": "flag", "uids": [1] }));
        let flagged = tokio::time::timeout(wait, s.idle_update()).await.expect("FETCH in IDLE within 5 s");
        s.idle_done().await;
        s.idle().await;
        api.post_json(
            &format!("/api/folders/{inbox}/messages/actions"),
            &json!({ "op": "move", "uids": [1], "to": archive }),
        );
        let expunged = tokio::time::timeout(wait, s.idle_update()).await.expect("EXPUNGE in IDLE within 5 s");
        s.idle_done().await;
        s.run(CommandBody::Logout).await;
        (flagged, expunged)
    });
    assert!(
        matches!(&flagged, Data::Fetch { seq, .. } if seq.get() == 1) && format!("{flagged:?}").contains("Flagged"),
        "expected * 1 FETCH (FLAGS (\\Flagged)), got {flagged:?}"
    );
    assert!(matches!(expunged, Data::Expunge(n) if n.get() == 1), "expected * 1 EXPUNGE, got {expunged:?}");
    assert_eq!(mailbox(&server, ALICE, "Archive").len(), 1);

    // The INBOX page, open (and empty now): new mail shows up without a
    // reload, through the page's event stream.
    run(&server, async {
        let b = Browser::open(http).await;
        b.sign_in(ALICE, ALICE_PW).await;
        b.goto(&format!("/mail/{inbox}")).await;
        b.find("p.empty").await;
        b.eval("window.stillTheSamePage = true", vec![]).await;
        // The stream is open once a change elsewhere (a flag in Archive)
        // makes the page refetch: it swaps in a new folder list, without
        // the mark put on the old one.
        let mut on = false;
        let mut live = false;
        for _ in 0..10 {
            b.eval("document.querySelector('#folders').dataset.probe = '1'", vec![]).await;
            on = !on;
            let op = if on { "unflag" } else { "flag" };
            api.post_json(&format!("/api/folders/{archive}/messages/actions"), &json!({ "op": op, "uids": [1] }));
            if b.poll("return !document.querySelector('#folders').dataset.probe", Duration::from_millis(1500)).await {
                live = true;
                break;
            }
        }
        assert!(live, "the page never refreshed on a change: its event stream is not working");
        send_mail(server.addr, BOB, ALICE, &plain("Live delivery", "no reload needed"));
        b.wait_until(
            "the new row",
            "const t = document.querySelector('table#messages tbody'); \
             return !!t && t.textContent.includes('Live delivery')",
        )
        .await;
        let same = b.eval("return window.stillTheSamePage === true", vec![]).await;
        assert_eq!(same, json!(true), "the page was reloaded");
        b.screenshot("live").await;
        b.close().await;
    });
}
