//! The serve loop: hyper's HTTP/1.1 connections, each holding one of `Limits::connections_max`
//! places (a connection beyond them is answered 503 and closed), with a deadline for reading a
//! request head (`Limits::request_head_timeout_ms`) and the client's address on every request.
//! Stopping lets open connections finish their requests. With a [`Tls`] identity each
//! connection is TLS (rustls), its handshake held to the same deadline as a request head.

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

/// The server's TLS identity: a certificate chain and its private key.
#[derive(Clone)]
pub struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
}

impl Tls {
    /// The identity of a PEM certificate chain (the server's certificate first) and a PEM
    /// private key; refused with what is wrong when they cannot be used.
    pub fn from_pem(certificate_chain: &[u8], private_key: &[u8]) -> Result<Tls, String> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_slice_iter(certificate_chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the certificate is not PEM: {e}"))?;
        if chain.is_empty() {
            return Err("the certificate file holds no certificate".to_owned());
        }
        let key = PrivateKeyDer::from_pem_slice(private_key)
            .map_err(|e| format!("the key is not a PEM private key: {e}"))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| format!("the certificate and key do not go together: {e}"))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls { acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)) })
    }
}

/// Serves `server` on `listener` until `shutdown` completes, then takes no new connection and
/// lets open ones finish the requests they are in, for at most `Limits::shutdown_grace_ms`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    server: crate::Server,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, server, None, shutdown).await
}

/// [`serve`], over TLS when `tls` is given.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    server: crate::Server,
    tls: Option<Tls>,
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
    // The data lifecycle's jobs run while the server serves; they end when it stops.
    tokio::spawn(crate::lifecycle::run(Arc::clone(&server.state)));
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
        // The peer's address wraps the router as a service: `Router::layer` would rebuild the
        // route table for every connection (kilobytes each, held while it stays open).
        let service = tower::Layer::layer(&axum::Extension(ConnectInfo(peer)), router.clone());
        let service = TowerToHyperService::new(service);
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        let place = Arc::clone(&places).try_acquire_owned().ok();
        let connections_max = limits.connections_max;
        let Some(tls) = &tls else {
            let io = TokioIo::new(stream);
            match place {
                Some(place) => spawn_connection(builder, io, service, watcher, place),
                None => refuse_later(builder, io, connections_max),
            }
            continue;
        };
        let (acceptor, handshake) =
            (tls.acceptor.clone(), Duration::from_millis(limits.request_head_timeout_ms));
        tokio::spawn(async move {
            // A handshake that stalls or fails ends the connection, not the loop.
            let Ok(Ok(stream)) = tokio::time::timeout(handshake, acceptor.accept(stream)).await
            else {
                return;
            };
            let io = TokioIo::new(stream);
            match place {
                Some(place) => spawn_connection(builder, io, service, watcher, place),
                None => refuse_later(builder, io, connections_max),
            }
        });
    }
    stop(listener, &server, graceful).await;
    Ok(())
}

/// Takes no new connection (they are refused at once, and go to another server), ends the live
/// streams, and lets open connections finish their requests within `Limits::shutdown_grace_ms`.
async fn stop(listener: tokio::net::TcpListener, server: &crate::Server, open: GracefulShutdown) {
    drop(listener);
    // Live streams last minutes: they end now, and their devices connect again elsewhere.
    server.state.closing.send_replace(true);
    let grace_ms = server.state.limits.shutdown_grace_ms;
    if tokio::time::timeout(Duration::from_millis(grace_ms), open.shutdown()).await.is_err() {
        tracing::warn!(
            grace_ms,
            "requests still running after the grace period; their connections close"
        );
    }
    tracing::info!("stopped");
}

type Service = TowerToHyperService<
    axum::middleware::AddExtension<axum::Router, ConnectInfo<std::net::SocketAddr>>,
>;

/// Serves one connection, holding its place until it ends.
fn spawn_connection<I>(
    builder: hyper::server::conn::http1::Builder,
    io: TokioIo<I>,
    service: Service,
    watcher: hyper_util::server::graceful::Watcher,
    place: tokio::sync::OwnedSemaphorePermit,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let connection = watcher.watch(builder.serve_connection(io, service));
    tokio::spawn(async move {
        let _ = connection.await;
        drop(place);
    });
}

/// Tells a connection over the limit so, within [`REFUSAL_MS`].
fn refuse_later<I>(
    builder: hyper::server::conn::http1::Builder,
    io: TokioIo<I>,
    connections_max: usize,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let refusal = refuse(builder, io, connections_max);
    tokio::spawn(tokio::time::timeout(Duration::from_millis(REFUSAL_MS), refusal));
}

/// Answers every request of a connection over the limit with 503, and closes it.
async fn refuse<I>(
    mut builder: hyper::server::conn::http1::Builder,
    io: TokioIo<I>,
    connections_max: usize,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let busy = hyper::service::service_fn(move |_request| async move {
        let message =
            format!("the server has its {connections_max} connections open; try again in a moment");
        Ok::<_, std::convert::Infallible>(axum::response::IntoResponse::into_response(
            ApiError::Unavailable(message),
        ))
    });
    let _ = builder.keep_alive(false).serve_connection(io, busy).await;
}
