//! Requests to the server: a small HTTP/1.1 client on one kept-alive connection, speaking the
//! JSON of `ferry-protocol`. A broken connection is reopened once per request.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use super::SyncError;

/// The largest response body accepted, in bytes.
pub const RESPONSE_BYTES_MAX: usize = 256 * 1024 * 1024;

/// The server's address and one connection to it.
pub struct HttpTransport {
    /// `host:port`.
    address: String,
    connection: Mutex<Option<BufReader<TcpStream>>>,
}

/// A response: its status and body.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
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

    pub(crate) async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> Result<Response, SyncError> {
        let mut connection = self.connection.lock().await;
        for attempt in 0..2 {
            if connection.is_none() {
                let stream =
                    TcpStream::connect(&self.address).await.map_err(|e| self.unreachable(&e))?;
                // Requests are written whole; waiting to coalesce small writes only adds delay.
                stream.set_nodelay(true).map_err(|e| self.unreachable(&e))?;
                *connection = Some(BufReader::new(stream));
            }
            let stream = connection.as_mut().expect("connected above");
            match exchange(stream, &self.address, method, path, token, body).await {
                Ok(response) => return Ok(response),
                Err(error) if attempt == 0 => {
                    // A kept-alive connection the server closed: open a new one and try once more.
                    let _ = error;
                    *connection = None;
                }
                Err(error) => {
                    *connection = None;
                    return Err(self.unreachable(&error));
                }
            }
        }
        unreachable!("the second attempt returns")
    }

    fn unreachable(&self, error: &std::io::Error) -> SyncError {
        SyncError::Unreachable { server: self.address.clone(), reason: error.to_string() }
    }
}

async fn exchange(
    stream: &mut BufReader<TcpStream>,
    host: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> std::io::Result<Response> {
    let authorization = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{authorization}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut request = Vec::with_capacity(head.len() + body.len());
    request.extend_from_slice(head.as_bytes());
    request.extend_from_slice(body);
    stream.get_mut().write_all(&request).await?;
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
    let mut length = 0usize;
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
    if length > RESPONSE_BYTES_MAX {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a response of {length} bytes is over {RESPONSE_BYTES_MAX}"),
        ));
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await?;
    Ok(Response { status, body })
}
