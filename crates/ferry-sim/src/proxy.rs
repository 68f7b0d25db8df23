//! A proxy between devices and the server that plays the network's faults: it forwards HTTP/1.1
//! requests one at a time, and can cut requests before they reach the server, answer them itself
//! as a failing gateway would, lose answers after the server handled them (the connection
//! closes instead), break them off half way, or re-frame them in small chunks.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

struct Faults {
    /// The server requests are forwarded to.
    upstream: SocketAddr,
    /// Path prefixes whose requests never reach the server.
    cut: Vec<String>,
    /// Path prefixes whose next requests never reach the server, and how many more.
    cut_next: Vec<(String, usize)>,
    /// Path prefixes whose next answers stop half way, and how many more.
    truncate: Vec<(String, usize)>,
    /// Path prefixes whose next answers are lost, and how many more.
    lose: Vec<(String, usize)>,
    /// Path prefixes whose next requests the proxy answers itself with a status, and how many
    /// more.
    gateway: Vec<(String, u16, usize)>,
    /// Answers are sent with `Transfer-Encoding: chunked`, in small chunks.
    rechunk: bool,
    /// How many of the next `changed` events of live streams are dropped.
    lose_hints: usize,
    /// How many of the next `changed` events of live streams are sent twice.
    duplicate_hints: usize,
    /// Requests that reached the proxy, by path.
    received: Vec<String>,
    /// Requests that reached the server, by path.
    forwarded: Vec<String>,
}

/// A fault-playing proxy on 127.0.0.1 in front of a server.
pub struct FaultProxy {
    /// Where devices connect.
    pub address: SocketAddr,
    faults: Arc<Mutex<Faults>>,
}

impl FaultProxy {
    /// A proxy in front of the server at `server`, on the caller's runtime.
    pub async fn start(server: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port on 127.0.0.1");
        let address = listener.local_addr().expect("a bound address");
        let faults = Arc::new(Mutex::new(Faults {
            upstream: server,
            cut: Vec::new(),
            cut_next: Vec::new(),
            truncate: Vec::new(),
            lose: Vec::new(),
            gateway: Vec::new(),
            rechunk: false,
            lose_hints: 0,
            duplicate_hints: 0,
            received: Vec::new(),
            forwarded: Vec::new(),
        }));
        let shared = Arc::clone(&faults);
        tokio::spawn(async move {
            while let Ok((device, _)) = listener.accept().await {
                tokio::spawn(relay(device, Arc::clone(&shared)));
            }
        });
        FaultProxy { address, faults }
    }

    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        locked(&self.faults)
    }

    /// Requests whose path starts with `prefix` are cut before they reach the server, until
    /// [`FaultProxy::heal`].
    pub fn cut(&self, prefix: &str) {
        self.faults().cut.push(prefix.to_owned());
    }

    /// The next `count` requests whose path starts with `prefix` are cut before they reach the
    /// server; the ones after go through.
    pub fn cut_next(&self, prefix: &str, count: usize) {
        self.faults().cut_next.push((prefix.to_owned(), count));
    }

    /// The next `count` answers to requests whose path starts with `prefix` stop half way
    /// through their body (the connection closes), after the server handled the request.
    pub fn truncate_answers(&self, prefix: &str, count: usize) {
        self.faults().truncate.push((prefix.to_owned(), count));
    }

    /// The next `count` answers to requests whose path starts with `prefix` are lost after the
    /// server handled the request.
    pub fn lose_answers(&self, prefix: &str, count: usize) {
        self.faults().lose.push((prefix.to_owned(), count));
    }

    /// The next `count` requests whose path starts with `prefix` are answered by the proxy with
    /// `status` (a gateway's 502, 503 or 504) and never reach the server.
    pub fn gateway_fails(&self, prefix: &str, status: u16, count: usize) {
        self.faults().gateway.push((prefix.to_owned(), status, count));
    }

    /// Connections from now on go to `server` (one started again on another port, say).
    pub fn point_at(&self, server: SocketAddr) {
        self.faults().upstream = server;
    }

    /// The next `count` hints (`changed` events) of live streams are dropped on the way.
    pub fn lose_hints(&self, count: usize) {
        self.faults().lose_hints = count;
    }

    /// The next `count` hints (`changed` events) of live streams arrive twice.
    pub fn duplicate_hints(&self, count: usize) {
        self.faults().duplicate_hints = count;
    }

    /// Every answer from now on is re-framed as a chunked one, in chunks of a few bytes, as
    /// a proxy that rewrites bodies may send it.
    pub fn rechunk_answers(&self) {
        self.faults().rechunk = true;
    }

    /// How many requests with a path starting with `prefix` reached the proxy (cut or not).
    pub fn received(&self, prefix: &str) -> usize {
        self.faults().received.iter().filter(|path| path.starts_with(prefix)).count()
    }

    /// Ends every fault.
    pub fn heal(&self) {
        let mut faults = self.faults();
        faults.cut.clear();
        faults.cut_next.clear();
        faults.lose.clear();
        faults.truncate.clear();
        faults.gateway.clear();
        faults.rechunk = false;
    }

    /// How many requests with a path starting with `prefix` reached the server.
    pub fn forwarded(&self, prefix: &str) -> usize {
        self.faults().forwarded.iter().filter(|path| path.starts_with(prefix)).count()
    }
}

/// One HTTP/1.1 message: the head as read, and the body of its `Content-Length`.
async fn read_message(stream: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().ok()?;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.ok()?;
    Some((head, body))
}

/// True when a counted fault matches `path`; counts it down.
fn take(faults: &mut [(String, usize)], path: &str) -> bool {
    let found = faults.iter_mut().find(|(prefix, n)| *n > 0 && path.starts_with(prefix.as_str()));
    found.map(|(_, n)| *n -= 1).is_some()
}

fn locked(faults: &Mutex<Faults>) -> std::sync::MutexGuard<'_, Faults> {
    faults.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn relay(device: TcpStream, faults: Arc<Mutex<Faults>>) {
    let mut device = BufReader::new(device);
    let server = locked(&faults).upstream;
    let Ok(upstream) = TcpStream::connect(server).await else { return };
    let mut upstream = BufReader::new(upstream);
    while let Some((head, body)) = read_message(&mut device).await {
        let path = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
        let (lose, truncate, rechunk, gateway) = {
            let mut faults = locked(&faults);
            faults.received.push(path.clone());
            if faults.cut.iter().any(|prefix| path.starts_with(prefix.as_str()))
                || take(&mut faults.cut_next, &path)
            {
                return;
            }
            let gateway = faults
                .gateway
                .iter_mut()
                .find(|(prefix, _, n)| *n > 0 && path.starts_with(prefix.as_str()))
                .map(|(_, status, n)| {
                    *n -= 1;
                    *status
                });
            if gateway.is_none() {
                faults.forwarded.push(path.clone());
            }
            let (lose, truncate) =
                (take(&mut faults.lose, &path), take(&mut faults.truncate, &path));
            (lose, truncate, faults.rechunk, gateway)
        };
        if let Some(status) = gateway {
            let body = "<html>the upstream server is not answering</html>";
            let answer = format!(
                "HTTP/1.1 {status} Gateway Failure\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if device.get_mut().write_all(answer.as_bytes()).await.is_err() {
                return;
            }
            continue;
        }
        let forwarded = async {
            upstream.get_mut().write_all(head.as_bytes()).await?;
            upstream.get_mut().write_all(&body).await
        };
        if forwarded.await.is_err() {
            return;
        }
        let Some((answer_head, answer_body)) = read_message(&mut upstream).await else { return };
        if lose {
            return;
        }
        if answer_head.to_ascii_lowercase().contains("content-type: text/event-stream") {
            return relay_events(&answer_head, &mut upstream, device.get_mut(), &faults).await;
        }
        let sent = if truncate { answer_body.len() / 2 } else { answer_body.len() };
        let answered = async {
            if rechunk {
                let body = &answer_body[..sent];
                return write_chunked(device.get_mut(), &answer_head, body, !truncate).await;
            }
            device.get_mut().write_all(answer_head.as_bytes()).await?;
            device.get_mut().write_all(&answer_body[..sent]).await
        };
        if answered.await.is_err() || truncate {
            return;
        }
    }
}

/// A stream of events (the live stream, chunked) is relayed as it comes, an event at a time,
/// until either side ends; hints are dropped or doubled as the faults say.
async fn relay_events(
    head: &str,
    upstream: &mut BufReader<TcpStream>,
    device: &mut TcpStream,
    faults: &Mutex<Faults>,
) {
    if device.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let mut pending = Vec::new();
    loop {
        let mut size = String::new();
        if upstream.read_line(&mut size).await.unwrap_or(0) == 0 {
            return;
        }
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { return };
        let mut chunk = vec![0; size + 2];
        if upstream.read_exact(&mut chunk).await.is_err() {
            return;
        }
        if size == 0 {
            let _ = device.write_all(b"0\r\n\r\n").await;
            return;
        }
        pending.extend_from_slice(&chunk[..size]);
        while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = pending.drain(..end + 2).collect();
            let copies = match String::from_utf8_lossy(&event).contains("event: changed") {
                false => 1,
                true => {
                    let mut faults = locked(faults);
                    if faults.lose_hints > 0 {
                        faults.lose_hints -= 1;
                        0
                    } else if faults.duplicate_hints > 0 {
                        faults.duplicate_hints -= 1;
                        2
                    } else {
                        1
                    }
                }
            };
            for _ in 0..copies {
                let mut framed = format!("{:x}\r\n", event.len()).into_bytes();
                framed.extend_from_slice(&event);
                framed.extend_from_slice(b"\r\n");
                if device.write_all(&framed).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The bytes of each chunk of a re-framed answer: small and odd, so chunks split values.
const RECHUNK_BYTES: usize = 7;

/// Writes an answer as a chunked one: its `Content-Length` dropped, its body in small chunks,
/// and the last chunk only when the answer is `complete`.
async fn write_chunked(
    device: &mut TcpStream,
    head: &str,
    body: &[u8],
    complete: bool,
) -> std::io::Result<()> {
    let mut framed = String::new();
    for line in head.split_inclusive("\r\n") {
        if line == "\r\n" {
            framed.push_str("Transfer-Encoding: chunked\r\n\r\n");
        } else if !line.to_ascii_lowercase().starts_with("content-length:") {
            framed.push_str(line);
        }
    }
    let mut bytes = framed.into_bytes();
    for chunk in body.chunks(RECHUNK_BYTES) {
        bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        bytes.extend_from_slice(chunk);
        bytes.extend_from_slice(b"\r\n");
    }
    if complete {
        bytes.extend_from_slice(b"0\r\n\r\n");
    }
    device.write_all(&bytes).await
}
