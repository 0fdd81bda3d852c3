//! The benches' load client: plain HTTP/1.1 over one keep-alive TCP connection per client, as
//! load generators such as wrk do. A request is written with one call from bytes prepared in a
//! reused buffer; the response's head is parsed with `httparse` and its whole body is read (by
//! `Content-Length` or chunked), so a reply counts only once it has fully arrived.
//!
//! A general client (connection pool, URL parsing, header maps, a connection task per
//! connection) spent about half of the machine's CPU in the benches, the server's share; the
//! figures then said as much about the client as about o2o.

use std::borrow::Cow;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request to send: method, path (with query), optional bearer token and JSON body.
#[derive(Clone, Debug)]
pub struct Call {
    method: &'static str,
    path: String,
    token: Option<String>,
    body: Option<Vec<u8>>,
    headers: Vec<(&'static str, Cow<'static, str>)>,
}

impl Call {
    pub fn get(path: impl Into<String>) -> Call {
        Call {
            method: "GET",
            path: path.into(),
            token: None,
            body: None,
            headers: Vec::new(),
        }
    }

    pub fn post(path: impl Into<String>) -> Call {
        Call {
            method: "POST",
            ..Call::get(path)
        }
    }

    pub fn bearer(mut self, token: &str) -> Call {
        self.token = Some(token.to_owned());
        self
    }

    /// A JSON body (also for a POST without one: an empty body is sent with length 0).
    pub fn json<T: serde::Serialize>(mut self, body: &T) -> Call {
        self.body = Some(serde_json::to_vec(body).unwrap_or_default());
        self
    }

    /// Asks for JSON (`Accept: application/json`), for endpoints that also serve pages.
    pub fn accept_json(self) -> Call {
        self.header("accept", "application/json")
    }

    /// Another request header.
    pub fn header(mut self, name: &'static str, value: impl Into<Cow<'static, str>>) -> Call {
        self.headers.push((name, value.into()));
        self
    }

    fn write_to(&self, host: &str, out: &mut Vec<u8>) {
        use std::io::Write;
        out.clear();
        let _ = write!(
            out,
            "{} {} HTTP/1.1\r\nhost: {host}\r\n",
            self.method, self.path
        );
        if let Some(t) = &self.token {
            let _ = write!(out, "authorization: Bearer {t}\r\n");
        }
        for (name, value) in &self.headers {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        match &self.body {
            Some(b) => {
                let _ = write!(
                    out,
                    "content-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    b.len()
                );
                out.extend_from_slice(b);
            }
            None if self.method == "POST" => out.extend_from_slice(b"content-length: 0\r\n\r\n"),
            None => out.extend_from_slice(b"\r\n"),
        }
    }
}

/// Where a base URL (`http://host:port`, no path) points.
pub fn authority(base: &str) -> io::Result<String> {
    let rest = base.strip_prefix("http://").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the bench client speaks plain http://, not {base}"),
        )
    })?;
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a base URL is http://host:port without a path, not {base}"),
        ));
    }
    Ok(if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:80")
    })
}

/// One client's connection, opened on first use and again after any failure.
pub struct Conn {
    authority: String,
    stream: Option<TcpStream>,
    out: Vec<u8>,
    buf: Vec<u8>,
}

/// How long a reply may take before the client gives up on it (and on the connection).
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest chunk accepted.
const MAX_CHUNK: usize = 64 << 20;
/// The largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;

impl Conn {
    pub fn new(base: &str) -> io::Result<Conn> {
        Ok(Conn {
            authority: authority(base)?,
            stream: None,
            out: Vec::with_capacity(1024),
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// Sends `call` and reads its whole response; returns the status. Any failure closes the
    /// connection (the next call opens a new one).
    pub async fn send(&mut self, call: &Call) -> io::Result<u16> {
        match tokio::time::timeout(REPLY_TIMEOUT, self.exchange(call)).await {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(e)) => {
                self.stream = None;
                Err(e)
            }
            Err(_) => {
                self.stream = None;
                Err(io::Error::new(io::ErrorKind::TimedOut, "no reply in time"))
            }
        }
    }

    async fn exchange(&mut self, call: &Call) -> io::Result<u16> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.authority).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
            self.buf.clear();
        }
        call.write_to(&self.authority, &mut self.out);
        let Some(stream) = self.stream.as_mut() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        stream.write_all(&self.out).await?;
        // The head.
        let (status, head_len, body, mut close) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut res = httparse::Response::new(&mut headers);
            match res.parse(&self.buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let status = res.code.unwrap_or(0);
                    if (100..200).contains(&status) {
                        // An interim response: the real one follows.
                        self.buf.drain(..n);
                        continue;
                    }
                    // A response with neither length nor chunks ends when the server closes.
                    let mut body = Body::ToEnd;
                    let mut close = false;
                    for h in res.headers.iter() {
                        if h.name.eq_ignore_ascii_case("content-length") {
                            let len = std::str::from_utf8(h.value)
                                .ok()
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .ok_or_else(|| bad("a content-length that is not a number"))?;
                            if !matches!(body, Body::Chunked) {
                                body = Body::Length(len);
                            }
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
                            && h.value.eq_ignore_ascii_case(b"chunked")
                        {
                            body = Body::Chunked;
                        } else if h.name.eq_ignore_ascii_case("connection")
                            && h.value
                                .to_ascii_lowercase()
                                .windows(5)
                                .any(|w| w == b"close")
                        {
                            close = true;
                        }
                    }
                    if matches!(status, 204 | 304) {
                        body = Body::Empty;
                    }
                    break (status, n, body, close);
                }
                Ok(httparse::Status::Partial) => {
                    if self.buf.len() > MAX_HEAD {
                        return Err(bad("a response head over 64 KiB"));
                    }
                    read_more(stream, &mut self.buf).await?;
                }
                Err(e) => return Err(bad(&format!("a malformed response ({e})"))),
            }
        };
        self.buf.drain(..head_len);
        // The body.
        match body {
            Body::Empty => {}
            Body::ToEnd => {
                loop {
                    self.buf.reserve(16 * 1024);
                    if stream.read_buf(&mut self.buf).await? == 0 {
                        break;
                    }
                }
                self.buf.clear();
                close = true;
            }
            Body::Length(len) => {
                while self.buf.len() < len {
                    read_more(stream, &mut self.buf).await?;
                }
                self.buf.drain(..len);
            }
            Body::Chunked => loop {
                let line_end = loop {
                    if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break i;
                    }
                    read_more(stream, &mut self.buf).await?;
                };
                let size_text = std::str::from_utf8(&self.buf[..line_end])
                    .map_err(|_| bad("a chunk size that is not text"))?;
                let size =
                    usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| bad("a chunk size that is not hexadecimal"))?;
                if size == 0 {
                    // No trailers are expected: the last chunk ends with an empty line.
                    while self.buf.len() < line_end + 4 {
                        read_more(stream, &mut self.buf).await?;
                    }
                    self.buf.drain(..line_end + 4);
                    break;
                }
                if size > MAX_CHUNK {
                    return Err(bad("a chunk over 64 MiB"));
                }
                let whole = line_end + 2 + size + 2;
                while self.buf.len() < whole {
                    read_more(stream, &mut self.buf).await?;
                }
                self.buf.drain(..whole);
            },
        }
        if close {
            self.stream = None;
        }
        Ok(status)
    }
}

enum Body {
    Empty,
    ToEnd,
    Length(usize),
    Chunked,
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the server sent {what}"),
    )
}

/// Reads what has arrived onto the end of `buf`; the connection closing is an error (a reply
/// was still expected).
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.reserve(16 * 1024);
    match stream.read_buf(buf).await? {
        0 => Err(io::ErrorKind::UnexpectedEof.into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_written_as_http_1_1() {
        let mut out = Vec::new();
        Call::post("/v1/payments")
            .bearer("tok")
            .json(&serde_json::json!({"amount": 1}))
            .write_to("127.0.0.1:8080", &mut out);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "POST /v1/payments HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nauthorization: Bearer tok\r\n\
             content-type: application/json\r\ncontent-length: 12\r\n\r\n{\"amount\":1}"
        );
        Call::get("/healthz").write_to("h:1", &mut out);
        assert_eq!(out, b"GET /healthz HTTP/1.1\r\nhost: h:1\r\n\r\n");
        Call::post("/x").write_to("h:1", &mut out);
        assert_eq!(
            out,
            b"POST /x HTTP/1.1\r\nhost: h:1\r\ncontent-length: 0\r\n\r\n"
        );
    }

    #[test]
    fn base_urls_name_host_and_port() {
        assert_eq!(
            authority("http://127.0.0.1:8080").unwrap(),
            "127.0.0.1:8080"
        );
        assert_eq!(authority("http://localhost/").unwrap(), "localhost:80");
        assert!(authority("https://x:1").is_err());
        assert!(authority("http://x:1/api").is_err());
    }

    /// Replies with a fixed length, chunked, and after a closed connection are all read whole.
    #[tokio::test]
    async fn whole_responses_are_read_and_closed_connections_reopened() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            // First connection: two replies (length, then chunked in pieces), then it closes.
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await.unwrap();
            s.write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 5\r\n\r\nhel")
                .await
                .unwrap();
            s.write_all(b"lo").await.unwrap();
            let _ = s.read(&mut buf).await.unwrap();
            s.write_all(b"HTTP/1.1 409 Conflict\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")
                .await
                .unwrap();
            s.write_all(b"2\r\nde\r\n0\r\n\r\n").await.unwrap();
            let _ = s.read(&mut buf).await.unwrap();
            drop(s);
            // Second connection: one reply.
            let (mut s, _) = listener.accept().await.unwrap();
            let _ = s.read(&mut buf).await.unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
        });
        let mut conn = Conn::new(&format!("http://{addr}")).unwrap();
        assert_eq!(conn.send(&Call::post("/a")).await.unwrap(), 201);
        assert_eq!(conn.send(&Call::get("/b")).await.unwrap(), 409);
        assert!(conn.buf.is_empty(), "the chunked body was read whole");
        assert!(conn.send(&Call::get("/c")).await.is_err(), "closed mid-way");
        assert_eq!(conn.send(&Call::get("/d")).await.unwrap(), 200);
    }
}
