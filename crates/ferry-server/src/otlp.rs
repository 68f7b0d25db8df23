//! The optional export of the server's spans to an OpenTelemetry collector: OTLP over HTTP
//! (protobuf), batched by the OpenTelemetry SDK on a thread of its own. Each batch is sent
//! through the server's tokio runtime, with the HTTP client the server already speaks (hyper,
//! rustls with the system's certificate authorities). Spans carry what the log's request span
//! carries (route, status, user and device ids, duration), never a value or a token.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

/// How long one export may take, request and answer, in milliseconds.
pub const OTLP_EXPORT_TIMEOUT_MS: u64 = 10_000;
/// The largest answer of a collector read, in bytes (its answers are small).
const OTLP_ANSWER_BYTES_MAX: usize = 64 * 1024;

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// The span export to a collector: its tracer for the `tracing` layer, and the provider to
/// flush and stop when the server stops.
pub struct OtlpExport {
    provider: SdkTracerProvider,
}

impl OtlpExport {
    /// Exports to `endpoint` (the collector's traces URL, e.g.
    /// `http://collector:4318/v1/traces`), sending through the runtime of `runtime`.
    pub fn start(endpoint: &str, runtime: tokio::runtime::Handle) -> Result<OtlpExport, String> {
        let bad = |reason: &str| format!("--otlp-endpoint `{endpoint}`: {reason}");
        let url: hyper::Uri = endpoint.parse().map_err(|_| bad("not a URL"))?;
        if !matches!(url.scheme_str(), Some("http" | "https")) || url.host().is_none() {
            return Err(bad("not an http(s) URL"));
        }
        let client = crate::tls_client::https_client(None).map_err(|reason| bad(&reason))?;
        let client = OnRuntime { client, runtime };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_endpoint(endpoint)
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_timeout(Duration::from_millis(OTLP_EXPORT_TIMEOUT_MS))
            .build()
            .map_err(|e| bad(&e.to_string()))?;
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name("ferry")
            .with_attributes([KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))])
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        Ok(OtlpExport { provider })
    }

    /// The tracer the `tracing` layer records spans with.
    pub fn tracer(&self) -> SdkTracer {
        self.provider.tracer("ferry")
    }

    /// Sends the spans not yet sent and stops the export (call it off the runtime's threads).
    pub fn shutdown(&self) -> Result<(), String> {
        self.provider.shutdown().map_err(|e| format!("the OTLP export: {e}"))
    }
}

/// An HTTP client for the OpenTelemetry exporter whose requests run on the server's runtime
/// (the exporter's thread has none).
#[derive(Clone)]
struct OnRuntime {
    client: Client<Https, http_body_util::Full<Bytes>>,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for OnRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnRuntime")
    }
}

impl OnRuntime {
    async fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let request = Request::from_parts(parts, http_body_util::Full::new(body));
        let client = self.client.clone();
        let exchange = async move {
            let answer = client.request(request).await?;
            let (parts, body) = answer.into_parts();
            let body = http_body_util::Limited::new(body, OTLP_ANSWER_BYTES_MAX);
            let bytes = body.collect().await?.to_bytes();
            Ok::<_, HttpError>(Response::from_parts(parts, bytes))
        };
        let timeout = Duration::from_millis(OTLP_EXPORT_TIMEOUT_MS);
        // The timer, too, needs the runtime: it is made inside the task.
        let task = self.runtime.spawn(async move { tokio::time::timeout(timeout, exchange).await });
        match task.await? {
            Ok(answer) => answer,
            Err(_) => Err(format!("no answer within {OTLP_EXPORT_TIMEOUT_MS} ms").into()),
        }
    }
}

impl HttpClient for OnRuntime {
    fn send_bytes<'life0, 'async_trait>(
        &'life0 self,
        request: Request<Bytes>,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'async_trait>,
    >
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.send(request))
    }
}
