//! The serve loop: hyper's HTTP/1.1 connections, each holding one of `Limits::connections_max`
//! places (a connection beyond them is answered 503 and closed), with a deadline for reading a
//! request head (`Limits::request_head_timeout_ms`) and the client's address on every request.
//! Stopping lets open connections finish their requests.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

use super::ApiError;

/// The largest request head (request line and headers) read, in bytes; also the most a
/// connection's buffers hold, large enough for bodies to stream at full speed.
pub const REQUEST_HEAD_BYTES_MAX: usize = 416 * 1024;
/// How long to wait before accepting again after the listener failed (out of descriptors).
const ACCEPT_RETRY_MS: u64 = 100;
/// How long a connection over the limit is kept to be told so, in milliseconds.
const REFUSAL_MS: u64 = 1_000;

/// Serves `server` on `listener` until `shutdown` completes, then waits for open connections
/// to finish the requests they are in.
pub async fn serve(
    listener: tokio::net::TcpListener,
    server: crate::Server,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = server.state.limits.clone();
    let places = Arc::new(tokio::sync::Semaphore::new(limits.connections_max));
    let router = server.router();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.request_head_timeout_ms))
        .max_buf_size(REQUEST_HEAD_BYTES_MAX);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(stream);
        let Ok(place) = Arc::clone(&places).try_acquire_owned() else {
            let refusal = refuse(builder.clone(), io, limits.connections_max);
            tokio::spawn(tokio::time::timeout(Duration::from_millis(REFUSAL_MS), refusal));
            continue;
        };
        let service = router.clone().layer(axum::Extension(ConnectInfo(peer)));
        let connection = builder.serve_connection(io, TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(place);
        });
    }
    graceful.shutdown().await;
    Ok(())
}

/// Answers every request of a connection over the limit with 503, and closes it.
async fn refuse(
    mut builder: hyper::server::conn::http1::Builder,
    io: TokioIo<tokio::net::TcpStream>,
    connections_max: usize,
) {
    let busy = hyper::service::service_fn(move |_request| async move {
        let message =
            format!("the server has its {connections_max} connections open; try again in a moment");
        Ok::<_, std::convert::Infallible>(axum::response::IntoResponse::into_response(
            ApiError::Unavailable(message),
        ))
    });
    let _ = builder.keep_alive(false).serve_connection(io, busy).await;
}
