//! A proxy between devices and the server that plays the network's faults: it forwards HTTP/1.1
//! requests one at a time, and can cut requests before they reach the server or lose answers
//! after the server handled them (the connection closes instead).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct Faults {
    /// Path prefixes whose requests never reach the server.
    cut: Vec<String>,
    /// Path prefixes whose next requests never reach the server, and how many more.
    cut_next: Vec<(String, usize)>,
    /// Path prefixes whose next answers stop half way, and how many more.
    truncate: Vec<(String, usize)>,
    /// Path prefixes whose next answers are lost, and how many more.
    lose: Vec<(String, usize)>,
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
        let faults = Arc::new(Mutex::new(Faults::default()));
        let shared = Arc::clone(&faults);
        tokio::spawn(async move {
            while let Ok((device, _)) = listener.accept().await {
                tokio::spawn(relay(device, server, Arc::clone(&shared)));
            }
        });
        FaultProxy { address, faults }
    }

    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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

    /// Ends every fault.
    pub fn heal(&self) {
        let mut faults = self.faults();
        faults.cut.clear();
        faults.cut_next.clear();
        faults.lose.clear();
        faults.truncate.clear();
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

async fn relay(device: TcpStream, server: SocketAddr, faults: Arc<Mutex<Faults>>) {
    let mut device = BufReader::new(device);
    let Ok(upstream) = TcpStream::connect(server).await else { return };
    let mut upstream = BufReader::new(upstream);
    while let Some((head, body)) = read_message(&mut device).await {
        let path = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
        let (lose, truncate) = {
            let mut faults = faults.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if faults.cut.iter().any(|prefix| path.starts_with(prefix.as_str()))
                || take(&mut faults.cut_next, &path)
            {
                return;
            }
            faults.forwarded.push(path.clone());
            (take(&mut faults.lose, &path), take(&mut faults.truncate, &path))
        };
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
        let sent = if truncate { answer_body.len() / 2 } else { answer_body.len() };
        let answered = async {
            device.get_mut().write_all(answer_head.as_bytes()).await?;
            device.get_mut().write_all(&answer_body[..sent]).await
        };
        if answered.await.is_err() || truncate {
            return;
        }
    }
}
