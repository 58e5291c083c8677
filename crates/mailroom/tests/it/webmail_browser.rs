//! What the webmail tests drive: chromedriver and a headless Chromium (one
//! of each per test, stopped by a guard), a blocking HTTP/1.1 client for
//! the requests a browser would not make, a loopback listener that records
//! who called it, and the bits of MIME the checks need.
//!
//! Everything talks to loopback only, and every wait is bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::common::require_tool;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// How long any one condition is waited for.
pub const WAIT: Duration = Duration::from_secs(10);

/// One browser at a time: a Chromium takes most of a core, and the
/// timing checks (throttling, "nothing happened" windows) want the rest.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs a browser test's `steps` on `rt` when no other browser runs,
/// bounded.
pub fn run<T>(rt: &tokio::runtime::Runtime, steps: impl std::future::Future<Output = T>) -> T {
    rt.block_on(async {
        let _turn = ONE_BROWSER.lock().await;
        tokio::time::timeout(Duration::from_secs(45), steps).await.expect("the browser steps finished within 45 s")
    })
}

/// Whether the browser tests can run (a loud skip without Chromium, a
/// failure under CI, where `scripts/test` installs it).
pub fn have_browser() -> bool {
    require_tool("chromedriver") && require_tool("chromium")
}

/// Where screenshots go: `target/webmail-artefacts/` of the workspace.
pub fn artefacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/webmail-artefacts");
    std::fs::create_dir_all(&dir).expect("create target/webmail-artefacts");
    dir
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind an ephemeral port").port()
}

/// chromedriver in a process group of its own; dropping it kills the group
/// (chromedriver and the Chromium it started).
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(log: &Path) -> Driver {
        use std::os::unix::process::CommandExt;
        for _ in 0..3 {
            let port = free_port();
            let child = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("start chromedriver");
            let mut driver = Driver { child, port };
            if driver.ready() {
                return driver;
            }
            // Lost the port to another process, or it died: try another.
        }
        panic!("chromedriver did not start; its log: {}", std::fs::read_to_string(log).unwrap_or_default());
    }

    /// Waits (bounded) until `/status` says ready; false if it exited.
    fn ready(&mut self) -> bool {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return false;
            }
            let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
            if let Ok(r) = try_request(addr, "GET", "/status", &[], b"")
                && r.status == 200
                && r.text().contains("\"ready\":true")
            {
                return true;
            }
            thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium on the webmail at `base`, with its own profile and
/// download directory.
pub struct Browser {
    pub client: Client,
    /// `http://127.0.0.1:PORT`, the webmail.
    pub base: String,
    /// Where downloads land.
    pub downloads: PathBuf,
    // Dropped in this order: the session, the browser, the files.
    _driver: Driver,
    _dir: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a browser session on the webmail at `http`.
    pub async fn open(http: SocketAddr) -> Browser {
        let dir = tempfile::tempdir().expect("temp dir");
        let downloads = dir.path().join("downloads");
        std::fs::create_dir(&downloads).expect("downloads dir");
        let driver = Driver::start(&dir.path().join("chromedriver.log"));
        let caps = json!({
            "browserName": "chrome",
            "timeouts": { "pageLoad": 20_000, "script": 10_000, "implicit": 0 },
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,900", "--no-first-run", "--no-default-browser-check",
                    format!("--user-data-dir={}", dir.path().join("profile").display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.display().to_string(),
                    "download.prompt_for_download": false,
                    "download.directory_upgrade": true,
                    "safebrowsing.enabled": false,
                },
            },
        });
        let Value::Object(caps) = caps else { unreachable!() };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = tokio::time::timeout(
            Duration::from_secs(30),
            ClientBuilder::new(connector).capabilities(caps).connect(&driver.url()),
        )
        .await
        .expect("a browser session within 30 s")
        .unwrap_or_else(|e| panic!("cannot start a browser session: {e}"));
        Browser { client, base: format!("http://{http}"), downloads, _driver: driver, _dir: dir }
    }

    /// Ends the session (the browser quits), then chromedriver.
    pub async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.client.clone().close()).await;
        drop(self);
    }

    /// Goes to `path` on the webmail.
    pub async fn goto(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.unwrap_or_else(|e| panic!("goto {path}: {e}"));
    }

    /// The path and query of the page shown.
    pub async fn location(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// The element `css` matches, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        match self.client.wait().at_most(WAIT).for_element(Locator::Css(css)).await {
            Ok(element) => element,
            Err(e) => panic!("no {css} on {} within {WAIT:?}: {e}", self.location_or_unknown().await),
        }
    }

    async fn location_or_unknown(&self) -> String {
        match self.client.current_url().await {
            Ok(u) => u.to_string(),
            Err(_) => "(unknown page)".into(),
        }
    }

    /// Runs `script` (a function body; `arguments` are `args`).
    pub async fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls `script` until it returns `true`; panics after [`WAIT`]
    /// saying `what` did not happen.
    pub async fn wait_until(&self, what: &str, script: &str) {
        self.wait_until_for(what, script, WAIT).await;
    }

    /// [`Browser::wait_until`] with its own bound.
    pub async fn wait_until_for(&self, what: &str, script: &str, bound: Duration) {
        if !self.poll(script, bound).await {
            let text = self.client.execute("return document.body.innerText", vec![]).await.unwrap_or_default();
            panic!(
                "{what} did not happen within {bound:?} (page {}, showing {text})",
                self.location_or_unknown().await
            );
        }
    }

    /// Polls `script` until it returns `true` or `bound` passes.
    pub async fn poll(&self, script: &str, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        loop {
            if self.eval(script, vec![]).await == Value::Bool(true) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Signs in through the `/login` form; returns the page landed on (the
    /// INBOX list, `/mail/ID`).
    pub async fn sign_in(&self, user: &str, password: &str) -> String {
        self.goto("/login").await;
        self.find("#address").await.send_keys(user).await.expect("type the address");
        self.find("#password").await.send_keys(password).await.expect("type the password");
        self.find("form#login button[type=submit]").await.click().await.expect("submit the sign-in form");
        self.wait_until("sign-in", "return location.pathname.startsWith('/mail/')").await;
        self.location().await
    }

    /// Saves a screenshot of the page as `target/webmail-artefacts/NAME.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
        std::fs::write(artefacts().join(format!("{name}.png")), png).expect("write the screenshot");
    }

    /// The file `name` once the browser finished downloading it.
    pub async fn downloaded(&self, name: &str) -> Vec<u8> {
        let path = self.downloads.join(name);
        let deadline = Instant::now() + WAIT;
        loop {
            let partial = std::fs::read_dir(&self.downloads)
                .expect("read the downloads dir")
                .any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".crdownload")));
            if !partial && path.is_file() {
                return std::fs::read(&path).expect("read the download");
            }
            if Instant::now() > deadline {
                let found: Vec<_> =
                    std::fs::read_dir(&self.downloads).unwrap().flatten().map(|e| e.file_name()).collect();
                panic!("{name} was not downloaded within {WAIT:?}; the directory holds {found:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

// ---------------------------------------------------------------------------
// Plain HTTP
// ---------------------------------------------------------------------------

/// An HTTP response read to the end.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The value of cookie `name` the response sets.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, v)| v.split(';').next()?.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One request on a fresh connection (`Connection: close`).
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    try_request(addr, method, path, headers, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(WAIT))?;
    stream.set_write_timeout(Some(WAIT))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    // Read the header, then the body by its length (a server may keep the
    // connection open whatever the request said).
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let end = loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(bad("closed before the end of the header"));
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad(status_line))?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let get = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    let mut body = raw[end + 4..].to_vec();
    let no_body = method == "HEAD" || status == 304 || status == 204 || (100..200).contains(&status);
    if no_body {
        body.clear();
    } else if let Some(length) = get("content-length") {
        let length: usize = length.parse().map_err(|_| bad("bad Content-Length"))?;
        while body.len() < length {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Err(bad("closed before the end of the body"));
            }
            body.extend_from_slice(&buf[..n]);
        }
        body.truncate(length);
    } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            if let Some(decoded) = dechunk(&body) {
                body = decoded;
                break;
            }
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Err(bad("closed before the last chunk"));
            }
            body.extend_from_slice(&buf[..n]);
        }
    } else {
        stream.read_to_end(&mut body)?;
    }
    Ok(Response { status, headers, body })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// A session of the JSON API, signed in with `POST /api/session`.
pub struct ApiSession {
    pub addr: SocketAddr,
    /// `mailroom_session=TOKEN`.
    pub cookie: String,
    pub csrf: String,
}

impl ApiSession {
    pub fn sign_in(addr: SocketAddr, user: &str, password: &str) -> ApiSession {
        let body = json!({ "address": user, "password": password }).to_string();
        let r = request(addr, "POST", "/api/session", &[("Content-Type", "application/json")], body.as_bytes());
        assert_eq!(r.status, 200, "API sign-in: {}", r.text());
        let token = r.set_cookie("mailroom_session").expect("a session cookie");
        let csrf = r.json()["csrf"].as_str().expect("a CSRF token").to_string();
        ApiSession { addr, cookie: format!("mailroom_session={token}"), csrf }
    }

    /// GET with the session cookie and `extra` headers.
    pub fn get(&self, path: &str, extra: &[(&str, &str)]) -> Response {
        let mut headers = vec![("Cookie", self.cookie.as_str())];
        headers.extend_from_slice(extra);
        request(self.addr, "GET", path, &headers, b"")
    }

    /// POSTs JSON with the cookie and the CSRF header; expects 2xx.
    pub fn post_json(&self, path: &str, body: &Value) -> Value {
        let headers =
            [("Cookie", self.cookie.as_str()), ("X-CSRF-Token", &self.csrf), ("Content-Type", "application/json")];
        let r = request(self.addr, "POST", path, &headers, body.to_string().as_bytes());
        assert!((200..300).contains(&r.status), "POST {path}: {} {}", r.status, r.text());
        r.json()
    }

    /// The id of the folder whose role (or name) is `name`.
    pub fn folder(&self, name: &str) -> i64 {
        let r = self.get("/api/folders", &[]);
        assert_eq!(r.status, 200, "{}", r.text());
        let folders = r.json();
        folders["folders"]
            .as_array()
            .expect("a folder list")
            .iter()
            .find(|f| f["role"].as_str() == Some(name) || f["name"].as_str() == Some(name))
            .and_then(|f| f["id"].as_i64())
            .unwrap_or_else(|| panic!("no folder {name} in {folders}"))
    }
}

// ---------------------------------------------------------------------------
// A listener that must (not) be called
// ---------------------------------------------------------------------------

/// A loopback HTTP listener that records the request line of every
/// connection (`(no request)` when none came) and answers with a 1×1 GIF.
pub struct Watcher {
    pub port: u16,
    hits: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

const GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";

impl Watcher {
    pub fn start() -> Watcher {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the watcher");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (Arc::clone(&hits), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let line = answer(stream);
                        h.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Watcher { port, hits, stop, thread: Some(thread) }
    }

    /// Every connection so far, as its request line.
    pub fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Reads a request's first line and answers with the GIF.
fn answer(mut stream: TcpStream) -> String {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    let line = text.lines().next().filter(|l| !l.is_empty()).unwrap_or("(no request)").to_string();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: image/gif\r\nContent-Length: {}\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n",
        GIF.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(GIF);
    line
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------
// MIME bits
// ---------------------------------------------------------------------------

/// `n` bytes from a fixed-seed xorshift: reproducible "binary" content.
pub fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 in 76-character CRLF lines, as MIME bodies carry it.
pub fn base64_lines(data: &[u8]) -> String {
    let mut flat = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                flat.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                flat.push('=');
            }
        }
    }
    flat.as_bytes().chunks(76).map(|l| format!("{}\r\n", String::from_utf8_lossy(l))).collect()
}

/// Decodes base64, skipping whitespace.
pub fn base64_decode(text: &str) -> Vec<u8> {
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        if c == b'=' {
            break;
        }
        let v = B64.iter().position(|b| *b == c).unwrap_or_else(|| panic!("{:?} is not base64", c as char));
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// The header section of a message, fields unfolded, one per line.
fn unfolded_header(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut fields: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        match fields.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => {
                last.push(' ');
                last.push_str(line.trim_start());
            }
            _ => fields.push(line.to_string()),
        }
    }
    fields
}

/// The value of the first header field `name` of `raw`.
pub fn header(raw: &[u8], name: &str) -> Option<String> {
    unfolded_header(raw).into_iter().find_map(|f| {
        let (k, v) = f.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// The decoded bytes of the base64 part whose header names `filename`.
pub fn attachment(raw: &[u8], filename: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(raw);
    let at = text
        .find(&format!("filename=\"{filename}\""))
        .or_else(|| text.find(&format!("filename={filename}")))
        .unwrap_or_else(|| panic!("no part named {filename} in {text}"));
    let head_start = text[..at].rfind("\r\n--").expect("the part's boundary line");
    let body_start = at + text[at..].find("\r\n\r\n").expect("end of the part's header") + 4;
    let part_head = text[head_start..body_start].to_ascii_lowercase();
    assert!(part_head.contains("content-transfer-encoding: base64"), "{filename} is not base64: {part_head}");
    let body_end = body_start + text[body_start..].find("\r\n--").expect("the part's boundary");
    base64_decode(&text[body_start..body_end])
}
