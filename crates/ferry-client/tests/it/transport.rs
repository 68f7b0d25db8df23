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
