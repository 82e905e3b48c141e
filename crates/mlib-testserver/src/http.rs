//! Just enough HTTP/1.1 to talk to a real client: request heads, keep-alive, and responses
//! whose body bytes are counted *before* they are written, so a test that reads the request
//! log right after its client returned never races the server thread.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A parsed request head, with the small body a POST to an API carries.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub method: String,
    /// Path and query exactly as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// The body (at most [`MAX_BODY`] bytes are kept; the rest is read and dropped).
    pub body: Vec<u8>,
}

/// The most body bytes a request keeps: API requests (a list of hashes) are small.
const MAX_BODY: u64 = 1 << 20;

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query string, percent-decoding left to the routes.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The value of a query parameter (no percent-decoding: the values used are plain).
    pub fn query(&self, name: &str) -> Option<&str> {
        let query = self.target.split_once('?')?.1;
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
    }

    pub fn is_head(&self) -> bool {
        self.method.eq_ignore_ascii_case("HEAD")
    }

    fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Reads one request head; `Ok(None)` on a clean end of the connection.
pub(crate) fn read_head(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Head>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad request line",
        ));
    };
    let (method, target) = (method.to_string(), target.to_string());
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if trimmed.is_empty() {
            break;
        }
        if let Some((k, v)) = trimmed.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        if headers.len() > 200 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "too many headers",
            ));
        }
    }
    let mut head = Head {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    let body_len: u64 = head
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    reader
        .by_ref()
        .take(body_len.min(MAX_BODY))
        .read_to_end(&mut head.body)?;
    io::copy(
        &mut reader.by_ref().take(body_len.saturating_sub(MAX_BODY)),
        &mut io::sink(),
    )?;
    Ok(Some(head))
}

/// What a route answers. The body is produced by [`Body`] so blobs can be streamed, cut short
/// or throttled.
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

pub(crate) enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// A slice of a shared blob, written at `throttle` bytes/s if set, and cut after `cut_after`
    /// bytes (the connection is then closed although Content-Length promised more).
    Slice {
        data: Arc<[u8]>,
        start: usize,
        end: usize,
        throttle: Option<u64>,
        cut_after: Option<u64>,
    },
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::Slice { start, end, .. } => (end - start) as u64,
        }
    }
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::new(status)
            .header("Content-Type", "application/json; charset=utf-8")
            .body(value.to_string().into_bytes())
    }

    pub fn text(status: u16, content_type: &str, text: &str) -> Response {
        Response::new(status)
            .header("Content-Type", content_type)
            .body(text.as_bytes().to_vec())
    }

    pub fn redirect(status: u16, location: &str) -> Response {
        Response::new(status).header("Location", location)
    }

    pub fn body(mut self, bytes: Vec<u8>) -> Response {
        self.body = Body::Bytes(bytes);
        self
    }
}

/// Whether the connection may serve another request after this one.
pub(crate) enum After {
    KeepAlive,
    Close,
}

/// Writes `resp` (headers only for HEAD), counting body bytes into `sent` before each write.
pub(crate) fn write_response(
    stream: &mut TcpStream,
    head: &Head,
    resp: Response,
    sent: &AtomicU64,
) -> io::Result<After> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
    let close = head.wants_close();
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes())?;
    if head.is_head() {
        stream.flush()?;
        return Ok(if close {
            After::Close
        } else {
            After::KeepAlive
        });
    }
    match resp.body {
        Body::Empty => {}
        Body::Bytes(bytes) => {
            sent.fetch_add(bytes.len() as u64, Ordering::SeqCst);
            stream.write_all(&bytes)?;
        }
        Body::Slice {
            data,
            start,
            end,
            throttle,
            cut_after,
        } => {
            let limit = cut_after.map_or(end, |k| end.min(start + k as usize));
            write_slice(stream, &data[start..limit], throttle, sent)?;
            if limit < end {
                stream.flush()?;
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return Ok(After::Close);
            }
        }
    }
    stream.flush()?;
    Ok(if close {
        After::Close
    } else {
        After::KeepAlive
    })
}

fn write_slice(
    stream: &mut TcpStream,
    bytes: &[u8],
    throttle: Option<u64>,
    sent: &AtomicU64,
) -> io::Result<()> {
    // Throttled bodies go out in 10 pieces per second so a killed client sees steady progress.
    let chunk = throttle.map_or(256 * 1024, |bps| (bps / 10).max(1) as usize);
    for piece in bytes.chunks(chunk) {
        sent.fetch_add(piece.len() as u64, Ordering::SeqCst);
        stream.write_all(piece)?;
        if throttle.is_some() {
            stream.flush()?;
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
