//! Requests to the server over HTTP/1.1 (hyper's client), speaking the JSON of `ferry-protocol`,
//! over TLS (rustls, with the platform's trusted roots and any extra certificate authority of a
//! private deployment) for `https://` servers, or plain for a server on this machine.
//! One kept-alive connection is reused; answers are read in whatever framing they come
//! (`Content-Length`, chunked, as a proxy may re-frame them). File contents stream from disk
//! into a request, and from an answer into a sink, in pieces. Every step that waits on the
//! network has a deadline, so a silent server or a stalled connection ends as a network error.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::Frame;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

use ferry_protocol::endpoint::Route;

use super::SyncError;
use crate::ClientError;
use crate::files::FILE_CHUNK_BYTES;

/// The largest response body accepted, in bytes.
pub const RESPONSE_BYTES_MAX: usize = 256 * 1024 * 1024;
/// The largest head of an answer (status line and headers) accepted, in bytes: a longer one is
/// refused as a network error, never read without end. It is also the most the connection's
/// buffers hold, so it stays large enough for bodies to stream at full speed.
pub const RESPONSE_HEAD_BYTES_MAX: usize = 416 * 1024;
/// The most headers an answer may have.
pub const RESPONSE_HEADERS_MAX: usize = 100;
/// How long opening a connection may take, in milliseconds.
pub const CONNECT_TIMEOUT_MS: u64 = 10_000;
/// How long a request may wait for its answer to begin, in milliseconds: longer than the
/// server's own limit on handling a request, so a slow upload is not abandoned early.
pub const ANSWER_TIMEOUT_MS: u64 = 120_000;
/// How long an answer's body may pause between two pieces, in milliseconds.
pub const ANSWER_IDLE_TIMEOUT_MS: u64 = 30_000;
/// The slowest a file content may be sent, in bytes per second: a content's request may take
/// the answer's deadline plus its size at this rate, so large contents on slow links go.
pub const FILE_SEND_RATE_MIN_BYTES_PER_S: u64 = 64 * 1024;

/// How long each network step may take; [`HttpTransport::with_timeouts`] sets them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening a connection.
    pub connect: Duration,
    /// From sending a request until its answer begins.
    pub answer: Duration,
    /// Between two pieces of an answer's body.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_millis(CONNECT_TIMEOUT_MS),
            answer: Duration::from_millis(ANSWER_TIMEOUT_MS),
            idle: Duration::from_millis(ANSWER_IDLE_TIMEOUT_MS),
        }
    }
}

type RequestBody = BoxBody<Bytes, std::io::Error>;

/// The server's address and a client keeping one connection to it.
pub struct HttpTransport {
    /// `host:port`.
    address: String,
    /// `https` or `http`.
    scheme: &'static str,
    /// The path the API lies under, behind a reverse proxy (`/ferry`), or empty.
    prefix: String,
    client: Client<HttpsConnector<HttpConnector>, RequestBody>,
    timeouts: Timeouts,
}

/// A response: its status and body.
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The body (empty when it went to a sink).
    pub body: Vec<u8>,
}

impl HttpTransport {
    /// A transport to the server at `server`: `https://host[:port][/prefix]`, or
    /// `http://host:port` for a server on this machine (loopback).
    pub fn new(server: &str) -> Result<HttpTransport, SyncError> {
        Self::with_timeouts(server, Timeouts::default())
    }

    /// [`HttpTransport::new`] with other deadlines for the network's steps.
    pub fn with_timeouts(server: &str, timeouts: Timeouts) -> Result<HttpTransport, SyncError> {
        Self::with_options(server, timeouts, None)
    }

    /// [`HttpTransport::with_timeouts`], also trusting the certificate authorities of
    /// `extra_roots` (PEM), beside the platform's, as a private deployment needs.
    pub fn with_options(
        server: &str,
        timeouts: Timeouts,
        extra_roots: Option<&[u8]>,
    ) -> Result<HttpTransport, SyncError> {
        let bad = || SyncError::BadServer { server: server.to_owned() };
        let (scheme, address, prefix) = parse_server(server).ok_or_else(bad)?;
        let mut connector = HttpConnector::new();
        // Requests are written whole; waiting to coalesce small writes only adds delay.
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeouts.connect));
        connector.enforce_http(false);
        let tls = tls_config(extra_roots)?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1)
            .http1_max_buf_size(RESPONSE_HEAD_BYTES_MAX)
            .http1_max_headers(RESPONSE_HEADERS_MAX)
            .build(connector);
        Ok(HttpTransport { address, scheme, prefix, client, timeouts })
    }

    /// Sends one request with a JSON body (and the token, when given) and reads the whole answer.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> Result<Response, SyncError> {
        let request = Request { route: None, method, path, token, payload: Payload::Bytes(body) };
        self.send(request, None).await
    }

    /// Sends a request and reads its answer. With a `sink`, the body of a 200 answer goes to it
    /// piece by piece (never whole in memory) instead of into the response; the sink's own
    /// failure ends the exchange as a local error.
    async fn send(
        &self,
        request: Request<'_>,
        sink: Option<&mut Sink<'_>>,
    ) -> Result<Response, SyncError> {
        let Request { method, path, token, payload, .. } = request;
        let (content_type, length, body) = match payload {
            Payload::Bytes(bytes) => (
                "application/json",
                bytes.len() as u64,
                Full::new(Bytes::copy_from_slice(bytes)).map_err(|never| match never {}).boxed(),
            ),
            Payload::File(file) => {
                let (length, body) = file_body(file).map_err(SyncError::Local)?;
                ("application/octet-stream", length, body)
            }
        };
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(format!("{}://{}{}{path}", self.scheme, self.address, self.prefix))
            .header(hyper::header::CONTENT_TYPE, content_type)
            .header(hyper::header::CONTENT_LENGTH, length);
        if let Some(token) = token {
            builder = builder.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = builder.body(body).map_err(|e| self.unreachable(&e))?;
        // An answer begins once the request is sent whole: a file's time to go counts too.
        let deadline = match payload {
            Payload::Bytes(_) => self.timeouts.answer,
            Payload::File(_) => {
                self.timeouts.answer + Duration::from_secs(length / FILE_SEND_RATE_MIN_BYTES_PER_S)
            }
        };
        let answer = tokio::time::timeout(deadline, self.client.request(request))
            .await
            .map_err(|_| self.timed_out("the answer did not begin in time"))?
            .map_err(|e| self.failed(&e))?;
        let status = answer.status().as_u16();
        let mut body = answer.into_body();
        let mut kept = Vec::new();
        let mut streamed = sink.filter(|_| status == 200);
        loop {
            let frame = tokio::time::timeout(self.timeouts.idle, body.frame())
                .await
                .map_err(|_| self.timed_out("the answer stalled"))?;
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|e| self.failed(&e))?;
            let Ok(data) = frame.into_data() else { continue };
            match streamed.as_mut() {
                Some(sink) => sink(&data).map_err(SyncError::Local)?,
                None if kept.len() + data.len() > RESPONSE_BYTES_MAX => {
                    return Err(self.unreachable(&format!(
                        "an answer of more than {RESPONSE_BYTES_MAX} bytes"
                    )));
                }
                None => kept.extend_from_slice(&data),
            }
        }
        Ok(Response { status, body: kept })
    }

    fn unreachable(&self, error: &dyn std::fmt::Display) -> SyncError {
        SyncError::Unreachable { server: self.address.clone(), reason: error.to_string() }
    }

    /// A failure of the HTTP client, with the causes under it (the client's own message alone
    /// says little, as "client error (Connect)"). A server certificate that does not verify is
    /// [`SyncError::Certificate`], never retried and never answered by a plain connection.
    fn failed(&self, error: &(dyn std::error::Error + 'static)) -> SyncError {
        let mut reason = error.to_string();
        let mut source = error.source();
        let mut current = Some(error);
        while let Some(cause) = current {
            if let Some(refused) = certificate_refusal(cause) {
                let server = format!("{}://{}{}", self.scheme, self.address, self.prefix);
                return SyncError::Certificate { server, reason: refused.to_string() };
            }
            current = cause.source();
        }
        while let Some(cause) = source {
            reason.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        self.unreachable(&reason)
    }

    fn timed_out(&self, what: &str) -> SyncError {
        self.unreachable(&format!("{what} (timed out)"))
    }
}

/// A content's length and its bytes as a body read from disk piece by piece.
fn file_body(content: &crate::Content) -> Result<(u64, RequestBody), ClientError> {
    let (length, mut opened) = content.open().map_err(ClientError::Files)?;
    let mut left = length;
    let pieces = std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let mut buffer =
            vec![0u8; FILE_CHUNK_BYTES.min(usize::try_from(left).unwrap_or(usize::MAX))];
        Some(match std::io::Read::read(&mut opened, &mut buffer) {
            Ok(0) => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file shrank while it was sent",
            )),
            Ok(read) => {
                left -= read as u64;
                buffer.truncate(read);
                Ok(Frame::data(Bytes::from(buffer)))
            }
            Err(error) => Err(error),
        })
    });
    Ok((length, StreamBody::new(futures_util::stream::iter(pieces)).boxed()))
}

/// Where the body of a streamed answer goes, piece by piece.
pub type Sink<'a> = dyn FnMut(&[u8]) -> Result<(), ClientError> + Send + 'a;

/// What a request carries: bytes in memory, or a file streamed from disk.
#[derive(Clone, Copy, Debug)]
pub enum Payload<'a> {
    /// A JSON body (or none, when empty).
    Bytes(&'a [u8]),
    /// A file's content, streamed from disk.
    File(&'a crate::Content),
}

/// A request as a [`Transport`] sends it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The route of the API the request is of, when the sender names it (every request of a
    /// sync, a sign-in or an action does): a transport that plays faults or routes requests
    /// in-process reads it instead of the path.
    pub route: Option<Route>,
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
        format!("{}://{}{}", self.scheme, self.address, self.prefix)
    }
}

/// The scheme, `host:port` and path prefix of a server address: `https://` anywhere, plain
/// `http://` only to this machine (a loopback address, or `localhost`), so nothing but a local
/// server or test is ever spoken to in the clear.
fn parse_server(server: &str) -> Option<(&'static str, String, String)> {
    let uri: hyper::Uri = server.parse().ok()?;
    let scheme = match uri.scheme_str()? {
        "https" => "https",
        "http" => "http",
        _ => return None,
    };
    let authority = uri.authority()?;
    if uri.query().is_some() || authority.as_str().contains('@') {
        return None;
    }
    let host = authority.host().trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host.parse::<std::net::IpAddr>().is_ok_and(|address| address.is_loopback());
    if scheme == "http" && !loopback {
        return None;
    }
    let port = authority.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
    let address = match authority.host().contains(':') {
        true => format!("[{host}]:{port}"),
        false => format!("{host}:{port}"),
    };
    let prefix = uri.path().trim_end_matches('/').to_owned();
    Some((scheme, address, prefix))
}

/// TLS as the device speaks it: rustls with ring, the platform's trusted roots, and the extra
/// authorities given (PEM).
fn tls_config(extra_roots: Option<&[u8]>) -> Result<rustls::ClientConfig, SyncError> {
    let mut roots = rustls::RootCertStore::empty();
    // A platform whose store cannot be read leaves only the extra authorities.
    let _ = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(pem) = extra_roots {
        let mut added = 0;
        for certificate in CertificateDer::pem_slice_iter(pem) {
            let certificate = certificate.map_err(|e| bad_authority(&e.to_string()))?;
            roots.add(certificate).map_err(|e| bad_authority(&e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad_authority("it holds no certificate"));
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad_authority(&e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

fn bad_authority(reason: &str) -> SyncError {
    SyncError::Local(ClientError::Authority { reason: reason.to_owned() })
}

/// The certificate refusal a failure carries, where it is one: rustls's error, inside the I/O
/// errors (one in another) the connection failed with.
fn certificate_refusal<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut inner: &(dyn std::error::Error + 'static) = error;
    while let Some(io) = inner.downcast_ref::<std::io::Error>() {
        match io.get_ref() {
            Some(wrapped) => inner = wrapped,
            None => break,
        }
    }
    let tls = inner.downcast_ref::<rustls::Error>()?;
    matches!(tls, rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
        .then_some(tls)
}
