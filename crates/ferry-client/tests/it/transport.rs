//! The HTTP transport against servers that misbehave on the wire: answers in another framing,
//! heads without end, silence and stalls. Each is read correctly or ends as a network error,
//! in time.

use std::time::Duration;

use ferry_client::{HttpTransport, RESPONSE_HEAD_BYTES_MAX, SyncError, Timeouts};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// A server on 127.0.0.1 that reads one request head and answers with `answer`, then keeps the
/// connection open (silent) until the test ends.
async fn server(answer: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).await.unwrap() == 0 {
                return;
            }
            head.push(byte[0]);
        }
        stream.write_all(&answer).await.unwrap();
        // Held open: what was not sent never comes.
        let _ = stream.read(&mut byte).await;
    });
    format!("http://{address}")
}

/// Short deadlines, so the tests that wait for one end quickly.
fn quick() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        answer: Duration::from_millis(300),
        idle: Duration::from_millis(300),
    }
}

async fn ask(answer: &[u8]) -> Result<(u16, Vec<u8>), SyncError> {
    let server = server(answer.to_vec()).await;
    let transport = HttpTransport::with_timeouts(&server, quick()).unwrap();
    let response = transport.request("GET", "/v1/model", None, b"").await?;
    Ok((response.status, response.body))
}

#[tokio::test]
async fn a_chunked_answer_is_read_whole() {
    let answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\n\r\n";
    let (status, body) = ask(answer).await.unwrap();
    assert_eq!((status, body.as_slice()), (200, &b"{\"a\": 1}"[..]));
}

#[tokio::test]
async fn an_answer_ended_by_closing_the_connection_is_read_whole() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buffer = [0u8; 4096];
        let _ = stream.read(&mut buffer).await.unwrap();
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"to\":\"the end\"}")
            .await
            .unwrap();
    });
    let transport = HttpTransport::with_timeouts(&format!("http://{address}"), quick()).unwrap();
    let response = transport.request("GET", "/v1/model", None, b"").await.unwrap();
    assert_eq!(response.body, b"{\"to\":\"the end\"}");
}

#[tokio::test]
async fn a_header_longer_than_the_limit_is_refused_as_a_network_error() {
    let mut answer = b"HTTP/1.1 200 OK\r\nX-Endless: ".to_vec();
    answer.extend(std::iter::repeat_n(b'a', 4 * RESPONSE_HEAD_BYTES_MAX));
    let error = ask(&answer).await.unwrap_err();
    assert!(matches!(error, SyncError::Unreachable { .. }), "{error}");
}

#[tokio::test]
async fn a_silent_server_ends_the_request_in_time() {
    let error = ask(b"").await.unwrap_err();
    assert!(matches!(error, SyncError::Unreachable { .. }), "{error}");
    assert!(error.to_string().contains("timed out"), "{error}");
}

#[tokio::test]
async fn an_answer_that_stalls_half_way_ends_in_time() {
    let error = ask(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"half\":").await.unwrap_err();
    assert!(matches!(error, SyncError::Unreachable { .. }), "{error}");
    assert!(error.to_string().contains("stalled"), "{error}");
}

#[tokio::test]
async fn a_malformed_status_line_is_a_network_error() {
    let error = ask(b"SMTP ready\r\n\r\n").await.unwrap_err();
    assert!(matches!(error, SyncError::Unreachable { .. }), "{error}");
}

/// A server on 127.0.0.1 that answers each request by its path with the first matching entry
/// of `answers` (a path prefix and a JSON body), on as many connections and requests as come.
async fn scripted(answers: Vec<(&'static str, String)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let answers = std::sync::Arc::new(answers);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answers = std::sync::Arc::clone(&answers);
            tokio::spawn(async move {
                loop {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&head).to_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0u8; length];
                    stream.read_exact(&mut body).await.unwrap();
                    let path = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
                    let body = answers
                        .iter()
                        .find(|(prefix, _)| path.starts_with(&prefix.to_lowercase()))
                        .map_or_else(String::new, |(_, body)| body.clone());
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    stream.write_all(answer.as_bytes()).await.unwrap();
                }
            });
        }
    });
    format!("http://{address}")
}

fn sign_in_answer() -> String {
    let user = ferry_model::ObjectId::from_u128(7);
    format!(
        r#"{{"token":"t","user_id":"{user}","roles":["Planner"],"expires_at":"2030-01-01T00:00:00Z"}}"#
    )
}

fn model_answer(protocol_version: u32) -> String {
    let model = ferry_model::samples::field_service();
    serde_json::json!({
        "version": model.version().to_string(),
        "text": ferry_model::samples::FIELD_SERVICE,
        "protocol_version": protocol_version,
    })
    .to_string()
}

/// A server speaking another protocol version is refused at sign-in, with what to do.
#[tokio::test]
async fn a_server_of_another_protocol_version_is_refused_clearly() {
    let server =
        scripted(vec![("/v1/sign-in", sign_in_answer()), ("/v1/model", model_answer(99))]).await;
    let path = crate::fresh("protocol");
    let error = ferry_client::SyncEngine::login(&path, &server, "pat", "password").await.err();
    let error = error.expect("refused");
    assert!(matches!(error, SyncError::Protocol { server: 99, .. }), "{error}");
    assert!(error.to_string().contains("update the app or the server"), "{error}");
}

/// An upload's answer that does not have one outcome per change is refused whole: nothing of
/// it is applied and every change waits for the next sync.
#[tokio::test]
async fn an_upload_answer_that_does_not_match_the_changes_is_refused() {
    let version = ferry_protocol::PROTOCOL_VERSION;
    let server = scripted(vec![
        ("/v1/sign-in", sign_in_answer()),
        ("/v1/model", model_answer(version)),
        ("/v1/upload", r#"{"upload_id":"u","outcomes":[]}"#.to_owned()),
    ])
    .await;
    let path = crate::fresh("outcomes");
    let (engine, _) = ferry_client::SyncEngine::login(&path, &server, "pat", "pw").await.unwrap();
    let db = ferry_client::Database::open_existing(&path).unwrap();
    let mut site = db.create("Field.Site").unwrap();
    db.set(&mut site, "Name", ferry_model::Value::String("Depot".to_owned())).unwrap();
    db.commit(&mut [&mut site]).unwrap();
    let error = engine.sync(ferry_client::SyncMode::Unsynchronized).await.unwrap_err();
    assert!(error.to_string().contains("0 outcomes for its 1 changes"), "{error}");
    assert_eq!(db.pending_changes().unwrap(), 1, "every change waits");
}
