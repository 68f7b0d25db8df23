//! Requests to the server: a small HTTP/1.1 client on one kept-alive connection, speaking the
//! JSON of `ferry-protocol`. A broken connection is reopened once per request. File contents
//! stream from disk into a request, and from an answer into a sink, in pieces.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use super::SyncError;
use crate::ClientError;
use crate::files::FILE_CHUNK_BYTES;

/// The largest response body accepted, in bytes.
pub const RESPONSE_BYTES_MAX: usize = 256 * 1024 * 1024;

/// The server's address and one connection to it.
pub struct HttpTransport {
    /// `host:port`.
    address: String,
    connection: Mutex<Option<BufReader<TcpStream>>>,
}

/// A response: its status and body.
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The body (empty when it went to a sink).
    pub body: Vec<u8>,
}

impl HttpTransport {
    /// A transport to `http://host:port` (TLS is for a proxy in front of the server).
    pub fn new(server: &str) -> Result<HttpTransport, SyncError> {
        let address = server
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .ok_or_else(|| SyncError::BadServer { server: server.to_owned() })?;
        Ok(HttpTransport { address: address.to_owned(), connection: Mutex::new(None) })
    }

    /// Sends one request with a JSON body (and the token, when given) and reads the whole answer;
    /// a kept-alive connection the server closed is reopened once.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> Result<Response, SyncError> {
        self.send(Request { method, path, token, payload: Payload::Bytes(body) }, None).await
    }

    /// Sends a request and reads its answer. With a `sink`, the body of a 200 answer goes to it
    /// piece by piece (never whole in memory) instead of into the response; the sink's own
    /// failure ends the exchange as a local error.
    async fn send(
        &self,
        request: Request<'_>,
        sink: Option<&mut Sink<'_>>,
    ) -> Result<Response, SyncError> {
        let Request { method, path, token, payload } = request;
        let mut connection = self.connection.lock().await;
        let mut head = None;
        for attempt in 0..2 {
            let reused = connection.is_some();
            if !reused {
                let stream =
                    TcpStream::connect(&self.address).await.map_err(|e| self.unreachable(&e))?;
                // Requests are written whole; waiting to coalesce small writes only adds delay.
                stream.set_nodelay(true).map_err(|e| self.unreachable(&e))?;
                *connection = Some(BufReader::new(stream));
            }
            let stream = connection.as_mut().expect("connected above");
            let sent = async {
                write_request(stream, &self.address, method, path, token, payload).await?;
                read_head(stream).await
            };
            match sent.await {
                Ok(answer) => {
                    head = Some(answer);
                    break;
                }
                // A kept-alive connection the server closed while idle: open a new one and try
                // once more. A new connection that fails is the network's failure.
                Err(_) if attempt == 0 && reused => *connection = None,
                Err(error) => {
                    *connection = None;
                    return Err(self.unreachable(&error));
                }
            }
        }
        let (status, length) = head.expect("the second attempt returns or breaks");
        let stream = connection.as_mut().expect("connected above");
        let result = match sink {
            Some(sink) if status == 200 => {
                read_streamed(stream, length, sink).await.map(|()| Vec::new())
            }
            _ => read_body(stream, length).await.map_err(Failed::Network),
        };
        match result {
            Ok(body) => Ok(Response { status, body }),
            Err(failed) => {
                // The rest of the answer is unread: the connection cannot serve another request.
                *connection = None;
                Err(match failed {
                    Failed::Network(error) => self.unreachable(&error),
                    Failed::Local(error) => SyncError::Local(error),
                })
            }
        }
    }

    fn unreachable(&self, error: &std::io::Error) -> SyncError {
        SyncError::Unreachable { server: self.address.clone(), reason: error.to_string() }
    }
}

/// Where the body of a streamed answer goes, piece by piece.
pub type Sink<'a> = dyn FnMut(&[u8]) -> Result<(), ClientError> + Send + 'a;

/// What a request carries: bytes in memory, or a file streamed from disk.
#[derive(Clone, Copy, Debug)]
pub enum Payload<'a> {
    /// A JSON body (or none, when empty).
    Bytes(&'a [u8]),
    /// A file's content, streamed from disk.
    File(&'a Path),
}

/// A request as a [`Transport`] sends it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// `GET`, `POST` or `PUT`.
    pub method: &'a str,
    /// The path and query, as `/v1/download/Field.Site?after=…`.
    pub path: &'a str,
    /// The bearer token, when signed in.
    pub token: Option<&'a str>,
    /// The body.
    pub payload: Payload<'a>,
}

/// An answer on its way.
pub type Answer<'a> = Pin<Box<dyn Future<Output = Result<Response, SyncError>> + Send + 'a>>;

/// How a sync engine reaches its server: over HTTP for apps ([`HttpTransport`]); a simulation
/// hands requests to an in-process server instead, and plays the network's faults.
pub trait Transport: Send + Sync {
    /// Sends a request and reads its answer. With a `sink`, the body of a 200 answer goes to it
    /// piece by piece instead of into the response; a network failure is
    /// [`SyncError::Unreachable`].
    fn exchange<'a>(&'a self, request: Request<'a>, sink: Option<&'a mut Sink<'a>>) -> Answer<'a>;

    /// The server's address, kept with the sign-in.
    fn server(&self) -> String;
}

impl Transport for HttpTransport {
    fn exchange<'a>(&'a self, request: Request<'a>, sink: Option<&'a mut Sink<'a>>) -> Answer<'a> {
        Box::pin(self.send(request, sink))
    }

    fn server(&self) -> String {
        format!("http://{}", self.address)
    }
}

/// Why reading a streamed answer stopped.
enum Failed {
    Network(std::io::Error),
    Local(ClientError),
}

async fn write_request(
    stream: &mut BufReader<TcpStream>,
    host: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    payload: Payload<'_>,
) -> std::io::Result<()> {
    let authorization = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let (content_type, length) = match payload {
        Payload::Bytes(body) => ("application/json", body.len() as u64),
        Payload::File(file) => ("application/octet-stream", std::fs::metadata(file)?.len()),
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{authorization}Content-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    );
    let file = match payload {
        Payload::Bytes(body) => {
            let mut request = Vec::with_capacity(head.len() + body.len());
            request.extend_from_slice(head.as_bytes());
            request.extend_from_slice(body);
            return stream.get_mut().write_all(&request).await;
        }
        Payload::File(file) => file,
    };
    let mut file = std::fs::File::open(file)?;
    stream.get_mut().write_all(head.as_bytes()).await?;
    let mut buffer = vec![0u8; FILE_CHUNK_BYTES];
    let mut sent = 0u64;
    while sent < length {
        let read = std::io::Read::read(&mut file, &mut buffer)?;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file shrank while it was sent",
            ));
        }
        let read = read.min(usize::try_from(length - sent).unwrap_or(usize::MAX));
        stream.get_mut().write_all(&buffer[..read]).await?;
        sent += read as u64;
    }
    Ok(())
}

/// The status and `Content-Length` of an answer.
async fn read_head(stream: &mut BufReader<TcpStream>) -> std::io::Result<(u16, u64)> {
    let mut status_line = String::new();
    if stream.read_line(&mut status_line).await? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    let status =
        status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not an HTTP response: {status_line:?}"),
            )
        })?;
    let mut length = 0u64;
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the response ended in its headers",
            ));
        }
        if line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "a bad Content-Length")
            })?;
        }
    }
    Ok((status, length))
}

async fn read_body(stream: &mut BufReader<TcpStream>, length: u64) -> std::io::Result<Vec<u8>> {
    if length > RESPONSE_BYTES_MAX as u64 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a response of {length} bytes is over {RESPONSE_BYTES_MAX}"),
        ));
    }
    let mut body = vec![0; length as usize];
    stream.read_exact(&mut body).await?;
    Ok(body)
}

async fn read_streamed(
    stream: &mut BufReader<TcpStream>,
    length: u64,
    sink: &mut Sink<'_>,
) -> Result<(), Failed> {
    let mut buffer = vec![0u8; FILE_CHUNK_BYTES];
    let mut left = length;
    while left > 0 {
        let want = buffer.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let read = stream.read(&mut buffer[..want]).await.map_err(Failed::Network)?;
        if read == 0 {
            return Err(Failed::Network(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the answer ended before its end",
            )));
        }
        sink(&buffer[..read]).map_err(Failed::Local)?;
        left -= read as u64;
    }
    Ok(())
}
