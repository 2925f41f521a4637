//! The dashboard in a real browser: headless Chromium, driven without any JavaScript in the
//! product and without any test-only route.
//!
//! How, and why this way: a logged-in page needs the session cookie, which is `HttpOnly`
//! (scripts cannot set it) and which `--screenshot`/`--dump-dom` cannot be given. So the
//! browser logs in like a person does: Chromium starts with `--remote-debugging-port=0`
//! (the port it picked is in `DevToolsActivePort` in its profile directory), and the test
//! speaks the DevTools protocol (JSON commands and replies matched by id) through a thin
//! helper, [`Cdp`], over `tokio-tungstenite`'s WebSocket client (plain `ws://` to loopback, no
//! TLS features). A CDP crate (chromiumoxide, headless_chrome) would bring a browser fetcher,
//! code generated for the whole protocol and, for headless_chrome, a blocking client, where
//! this test needs three commands. `Runtime.evaluate` fills and submits the real forms, so the
//! browser itself carries the CSRF field, the `SameSite=Strict` cookie and its `Origin`
//! header, and enforces the page's CSP while rendering (the stylesheet must load under
//! `style-src 'self'`). DevTools evaluation is not subject to the page's CSP, so the page
//! itself stays script-free.
//!
//! Screenshots: the login page with Chromium's own `--screenshot` flag, the logged-in pages
//! with `Page.captureScreenshot`. Each PNG is checked for the window size (IHDR) and for not
//! being blank (larger than a screenshot of `about:blank` at the same size); they are kept
//! under `CARGO_TARGET_TMPDIR/dashboard-screenshots` for people to look at. The report
//! pages' screenshots are also decoded ([`super::png`]) and the charts' colours counted
//! inside each chart's box ([`Cdp::element_box`]; see `reports_browser`).
//!
//! Chromium is found at `$MTASTS_CHROMIUM` or `/usr/bin/chromium`; without it the test is
//! skipped with a message, unless `MTASTS_REQUIRE_SERVICES=1` (CI), where it fails.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use mtasts_host::auth::Principal;
use mtasts_host::service::{self, NewDomainRequest};
use mtasts_store::host::Role;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::dashboard::harness::{Harness, PASSWORD};

pub(crate) const WIDTH: u32 = 1280;
pub(crate) const HEIGHT: u32 = 900;

pub(crate) fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("MTASTS_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.exists() {
        return Some(path);
    }
    mtasts_testkit::services::skip(
        mtasts_testkit::services::Service::Chromium,
        &format_args!("no Chromium at {} (set MTASTS_CHROMIUM)", path.display()),
    );
    None
}

pub(crate) fn base_args(profile: &Path) -> Vec<String> {
    vec![
        "--headless=new".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-extensions".to_owned(),
        format!("--user-data-dir={}", profile.display()),
        format!("--window-size={WIDTH},{HEIGHT}"),
    ]
}

/// Width and height from a PNG's IHDR chunk.
pub(crate) fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.len() > 24, "too short for a PNG");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&png[12..16], b"IHDR", "IHDR first");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    (width, height)
}

#[track_caller]
pub(crate) fn assert_screenshot(png: &[u8], blank: usize, what: &str) {
    assert_eq!(png_size(png), (WIDTH, HEIGHT), "{what}: window size");
    // A page with text, tables and colour compresses far worse than a uniform one.
    assert!(
        png.len() > blank * 3,
        "{what} looks blank: {} bytes, about:blank is {blank}",
        png.len()
    );
}

pub(crate) fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A DevTools connection to one page.
pub(crate) struct Cdp {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Cdp {
    pub(crate) async fn connect(ws_url: &str) -> Cdp {
        // No Origin header: Chromium accepts DevTools clients without one.
        let (socket, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .expect("WebSocket handshake with DevTools");
        Cdp { socket, next_id: 0 }
    }

    /// The next text message; DevTools sends nothing else the protocol here uses.
    async fn read_message(&mut self) -> String {
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Text(text))) => return text.as_str().to_owned(),
                Some(Ok(Message::Close(_))) | None => panic!("DevTools closed the connection"),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("DevTools connection: {e}"),
            }
        }
    }

    /// One command; `Err` carries the protocol error (e.g. a context destroyed by navigation).
    pub(crate) async fn call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let command = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket
            .send(Message::text(command))
            .await
            .expect("DevTools accepts a command");
        loop {
            let message: Value = serde_json::from_str(&self.read_message().await).unwrap();
            if message["id"] == id {
                return match message.get("error") {
                    Some(error) => Err(error.clone()),
                    None => Ok(message["result"].clone()),
                };
            }
        }
    }

    /// Evaluates `expression` in the page and returns its value (`Err` for exceptions too).
    pub(crate) async fn eval(&mut self, expression: &str) -> Result<Value, Value> {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await?;
        if let Some(exception) = result.get("exceptionDetails") {
            return Err(exception.clone());
        }
        Ok(result["result"]["value"].clone())
    }

    /// Waits until `condition` evaluates to `true` (errors while a page loads count as no).
    pub(crate) async fn wait_for(&mut self, condition: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let expression = format!("document.readyState === 'complete' && ({condition})");
        loop {
            if self.eval(&expression).await == Ok(Value::Bool(true)) {
                return;
            }
            if Instant::now() >= deadline {
                let seen = self
                    .eval("location.href + '\\n' + (document.body ? document.body.innerText : '')")
                    .await;
                panic!("timed out waiting for {condition}; the page is {seen:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Scrolls the element that the JavaScript expression `element` yields to the top of the
    /// window and returns its box there in screenshot pixels (the tests render at scale 1):
    /// left, top, right, bottom, rounded inwards so that the box holds only the element.
    pub(crate) async fn element_box(&mut self, element: &str) -> (u32, u32, u32, u32) {
        let expression = format!(
            "(() => {{ const el = {element}; el.scrollIntoView({{block: 'start'}}); \
             const r = el.getBoundingClientRect(); \
             return [r.left, r.top, r.right, r.bottom]; }})()"
        );
        let found = self.eval(&expression).await.unwrap_or_else(|e| {
            panic!("no element {element}: {e}");
        });
        let edge = |i: usize| found[i].as_f64().unwrap_or_else(|| panic!("{found}"));
        let inwards = |v: f64, up: bool| (if up { v.ceil() } else { v.floor() }).max(0.0) as u32;
        (
            inwards(edge(0), true),
            inwards(edge(1), true),
            inwards(edge(2), false),
            inwards(edge(3), false),
        )
    }

    pub(crate) async fn screenshot(&mut self) -> Vec<u8> {
        let result = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await
            .unwrap();
        base64::engine::general_purpose::STANDARD
            .decode(result["data"].as_str().unwrap())
            .expect("base64 PNG")
    }
}

/// The page target's WebSocket URL of a Chromium started with `--remote-debugging-port=0`.
pub(crate) async fn page_target(profile: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    let port = loop {
        if let Ok(text) = std::fs::read_to_string(profile.join("DevToolsActivePort"))
            && let Some(port) = text
                .lines()
                .next()
                .and_then(|l| l.trim().parse::<u16>().ok())
        {
            break port;
        }
        assert!(Instant::now() < deadline, "Chromium did not open DevTools");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    loop {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await {
            let request = format!(
                "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).await.unwrap();
            // Chromium may keep the connection open: read until the body is a whole array.
            let mut response = Vec::new();
            let mut buf = [0u8; 4096];
            let targets = loop {
                let read =
                    tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await;
                let Ok(Ok(n @ 1..)) = read else {
                    break None;
                };
                response.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&response);
                if let Some((_, body)) = text.split_once("\r\n\r\n")
                    && let Ok(Value::Array(targets)) = serde_json::from_str::<Value>(body)
                {
                    break Some(targets);
                }
            };
            if let Some(page) = targets
                .as_ref()
                .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            {
                return page["webSocketDebuggerUrl"].as_str().unwrap().to_owned();
            }
        }
        assert!(Instant::now() < deadline, "no DevTools page target");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn spawn(binary: &Path, args: &[String]) -> Child {
    Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("Chromium starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_logs_in_adds_and_changes_a_domain() {
    let Some(binary) = chromium() else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(60), drive(&binary))
        .await
        .expect("the browser test took over 60 s");
}

async fn drive(binary: &Path) {
    let h = Harness::start().await;
    let owner = Principal {
        role: Role::Owner,
        tenant_id: Some(h.alpha.id),
        token_id: None,
        user_id: None,
    };
    service::create_domain(
        &h.state,
        &owner,
        NewDomainRequest {
            domain: "existing.example".to_owned(),
            tenant: None,
            mode: "testing".to_owned(),
            mx: Some(vec!["mx.existing.example".to_owned()]),
            max_age: Some(86_400),
            rua: None,
            reports_to_service: None,
        },
    )
    .await
    .unwrap();
    let shots = screenshot_dir();
    let profiles = tempfile::tempdir().unwrap();

    // 1. The login page, with Chromium's own screenshot flag.
    let login_png = shots.join("login.png");
    let _ = std::fs::remove_file(&login_png);
    let mut args = base_args(&profiles.path().join("cli"));
    args.push(format!("--screenshot={}", login_png.display()));
    args.push(h.url("/login"));
    let status = spawn(binary, &args).wait().await.unwrap();
    assert!(status.success(), "chromium --screenshot: {status}");
    let login_png = std::fs::read(&login_png).expect("the login screenshot exists");

    // 2. Everything behind the login, through DevTools.
    let profile = profiles.path().join("cdp");
    let mut args = base_args(&profile);
    args.push("--remote-debugging-port=0".to_owned());
    args.push("about:blank".to_owned());
    let mut browser = spawn(binary, &args);
    let mut page = Cdp::connect(&page_target(&profile).await).await;
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": false}),
    )
    .await
    .unwrap();
    let blank = page.screenshot().await;
    assert_eq!(png_size(&blank), (WIDTH, HEIGHT));
    assert_screenshot(&login_png, blank.len(), "the login page");

    page.call("Page.navigate", json!({"url": h.url("/login")}))
        .await
        .unwrap();
    page.wait_for("location.pathname === '/login' && !!document.querySelector('form')")
        .await;
    let submit = format!(
        "document.querySelector('input[name=email]').value = {email}; \
         document.querySelector('input[name=password]').value = {password}; \
         document.querySelector('form[action=\"/login\"] button').click(); true",
        email = json!(h.alpha.owner_email),
        password = json!(PASSWORD),
    );
    page.eval(&submit).await.unwrap();
    page.wait_for("location.pathname === '/' && !!document.querySelector('tr.domain-row')")
        .await;
    let rows = page
        .eval("Array.from(document.querySelectorAll('tr.domain-row')).map(r => r.innerText).join('\\n')")
        .await
        .unwrap();
    assert!(
        rows.as_str().unwrap().contains("existing.example"),
        "{rows}"
    );
    assert_eq!(
        page.eval("document.cookie").await.unwrap(),
        json!(""),
        "the session cookie is HttpOnly"
    );
    // The stylesheet loaded under the CSP: the header has its dark background.
    assert_eq!(
        page.eval("getComputedStyle(document.querySelector('header')).backgroundColor")
            .await
            .unwrap(),
        json!("rgb(29, 35, 48)")
    );
    let list_png = page.screenshot().await;
    std::fs::write(shots.join("domains.png"), &list_png).unwrap();
    assert_screenshot(&list_png, blank.len(), "the domains page");

    // Add a domain through the form: the browser sends the CSRF field, cookie and Origin.
    let add = "document.querySelector('input[name=domain]').value = 'browser.example'; \
               document.querySelector('textarea[name=mx]').value = 'mx1.browser.example\\nmx2.browser.example'; \
               document.querySelector('form[action=\"/domains\"] button').click(); true";
    page.eval(add).await.unwrap();
    page.wait_for("location.pathname === '/domains/browser.example'")
        .await;
    assert_eq!(
        page.eval("document.querySelectorAll('tr.version-row').length")
            .await
            .unwrap(),
        json!(1)
    );

    // Switch testing → enforce.
    let change = "document.querySelector('select[name=mode]').value = 'enforce'; \
                  document.querySelector('form[action=\"/domains/browser.example\"] button').click(); true";
    page.eval(change).await.unwrap();
    page.wait_for("document.querySelectorAll('tr.version-row').length === 2")
        .await;
    let policy = page
        .eval("document.querySelector('pre.policy').textContent")
        .await
        .unwrap();
    assert!(
        policy.as_str().unwrap().contains("mode: enforce"),
        "{policy}"
    );
    let detail_png = page.screenshot().await;
    std::fs::write(shots.join("detail.png"), &detail_png).unwrap();
    assert_screenshot(&detail_png, blank.len(), "the detail page");

    let domain = h.state.db.domain("browser.example").await.unwrap().unwrap();
    assert_eq!(domain.tenant_id, h.alpha.id);
    assert_eq!(
        h.state.db.versions(domain.id).await.unwrap()[0].mode,
        "enforce"
    );

    let _ = browser.kill().await;
}
