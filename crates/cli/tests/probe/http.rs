//! A small HTTP/1.1 client over `std::net::TcpStream`, as a hostile tester writes requests: any
//! header, repeated or not, any body bytes. One request per connection (`Connection: close`),
//! every read bounded by a timeout and a size cap. Plus a dashboard session (cookies, the
//! login form, CSRF fields).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// The largest response read.
const MAX_RESPONSE: u64 = 8 * 1024 * 1024;
/// How long one read may wait.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// A whole response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    /// Header fields in order, names lowercase.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// The first value of header `name`.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The value of cookie `name` set by this reply (without attributes).
    pub(crate) fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .find_map(|(_, v)| v.strip_prefix(&format!("{name}=")))
            .map(|v| v.split(';').next().unwrap_or("").to_owned())
    }

    /// The body as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (`null` when it is not JSON).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The API error code (`{"error": {"code"}}`), or "".
    pub(crate) fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// The value of the first hidden `csrf` field of an HTML page.
    pub(crate) fn csrf(&self) -> Option<String> {
        let body = self.text();
        let marker = r#"name="csrf" value=""#;
        let start = body.find(marker)? + marker.len();
        let end = body[start..].find('"')?;
        Some(body[start..start + end].to_owned())
    }
}

/// Sends one request: `headers` as given (repeated names allowed), plus `Host`,
/// `Content-Length` and `Connection: close`. Panics when there is no answer.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    try_request(addr, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path} on {addr}: {e}"))
}

/// Like [`request`], with a connection or read failure as the error.
pub(crate) fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Reply, String> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PATCH" | "PUT") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    exchange(addr, &bytes)
}

/// Writes `bytes` on a new connection and reads one response to the end.
pub(crate) fn exchange(addr: SocketAddr, bytes: &[u8]) -> Result<Reply, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.write_all(bytes).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .map_err(|e| format!("reading: {e} after {} bytes", raw.len()))?;
    parse(&raw)
}

fn parse(raw: &[u8]) -> Result<Reply, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no complete head in {} bytes", raw.len()))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        match headers.iter().find(|(n, _)| n == "content-length") {
            Some((_, len)) => {
                let len: usize = len.parse().map_err(|_| "bad content-length")?;
                rest.get(..len)
                    .ok_or("body shorter than its length")?
                    .to_vec()
            }
            None => rest.to_vec(),
        }
    };
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("unterminated chunk size")?;
        let size = std::str::from_utf8(&rest[..line_end]).map_err(|e| e.to_string())?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("chunk size {size:?}: {e}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(rest.get(..size).ok_or("short chunk")?);
        rest = rest.get(size + 2..).ok_or("short chunk end")?;
    }
}

/// An API call: `Authorization: Bearer <token>` when given, `body` as JSON.
pub(crate) fn api(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = Vec::new();
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth.as_str()));
    }
    let body = body.map(Value::to_string).unwrap_or_default();
    if !body.is_empty() {
        headers.push(("Content-Type", "application/json"));
    }
    request(addr, method, path, &headers, body.as_bytes())
}

/// `application/x-www-form-urlencoded` of `fields`.
pub(crate) fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A browser's session with the dashboard: its cookies, and extra headers it sends with
/// every request (`X-Forwarded-For` behind a proxy).
pub(crate) struct Browser {
    pub(crate) addr: SocketAddr,
    pub(crate) cookies: Vec<(String, String)>,
    pub(crate) extra: Vec<(String, String)>,
}

impl Browser {
    /// A browser without cookies.
    pub(crate) fn new(addr: SocketAddr) -> Browser {
        Browser {
            addr,
            cookies: Vec::new(),
            extra: Vec::new(),
        }
    }

    /// A browser sending `name: value` with every request.
    pub(crate) fn with_header(mut self, name: &str, value: &str) -> Browser {
        self.extra.push((name.to_owned(), value.to_owned()));
        self
    }

    /// GET `path` with the cookies.
    pub(crate) fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path, None)
    }

    /// POST `fields` as a form to `path` with the cookies (no `Origin`: a non-browser
    /// client, which only the CSRF field and cookies protect against).
    pub(crate) fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        self.send("POST", path, Some(form(fields)))
    }

    /// POST with extra headers (`Origin`, `Sec-Fetch-Site`).
    pub(crate) fn post_with(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Reply {
        let saved = self.extra.clone();
        for (n, v) in headers {
            self.extra.push(((*n).to_owned(), (*v).to_owned()));
        }
        let reply = self.send("POST", path, Some(form(fields)));
        self.extra = saved;
        reply
    }

    fn send(&mut self, method: &str, path: &str, body: Option<String>) -> Reply {
        let cookie = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut headers: Vec<(&str, &str)> = self
            .extra
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        if !cookie.is_empty() {
            headers.push(("Cookie", &cookie));
        }
        if body.is_some() {
            headers.push(("Content-Type", "application/x-www-form-urlencoded"));
        }
        let reply = request(
            self.addr,
            method,
            path,
            &headers,
            body.unwrap_or_default().as_bytes(),
        );
        for (name, value) in &reply.headers {
            if name != "set-cookie" {
                continue;
            }
            let pair = value.split(';').next().unwrap_or("");
            let Some((n, v)) = pair.split_once('=') else {
                continue;
            };
            self.cookies.retain(|(old, _)| old != n);
            let expired = value.to_ascii_lowercase().contains("max-age=0");
            if !v.is_empty() && !expired {
                self.cookies.push((n.to_owned(), v.to_owned()));
            }
        }
        reply
    }

    /// The login form, then a POST of `email` and `password` (an empty e-mail and an API token
    /// as the password: a token login) with the form's CSRF value. Returns the POST's reply.
    pub(crate) fn login(&mut self, email: &str, password: &str) -> Reply {
        let page = self.get("/login");
        assert_eq!(page.status, 200, "{}", page.text());
        let csrf = page.csrf().expect("a csrf field on the login form");
        self.post(
            "/login",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
    }

    /// The CSRF value of the page at `path`.
    pub(crate) fn csrf_of(&mut self, path: &str) -> String {
        let page = self.get(path);
        page.csrf()
            .unwrap_or_else(|| panic!("no csrf on {path}: {} {}", page.status, page.text()))
    }
}
