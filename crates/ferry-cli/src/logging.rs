//! The server's log on standard error, through `tracing`: human-readable lines on a terminal
//! (coloured) or in a file, JSON lines with `--log-format json`; which events by `--log` (or
//! `RUST_LOG`): a level (`info`), or targets with levels (`warn,ferry_server=debug`).

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The filter when none is given.
pub(crate) const DEFAULT_LOG: &str = "info";

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum LogFormat {
    /// For people: one line per event, with its span's fields.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Starts logging with `filter` in `format`, and the spans the filter lets through also to
/// `otlp` when given; refused when the filter does not parse.
pub(crate) fn init(
    filter: &str,
    format: LogFormat,
    otlp: Option<opentelemetry_sdk::trace::SdkTracer>,
) -> Result<(), String> {
    let targets: Targets = filter
        .parse()
        .map_err(|e| format!("--log `{filter}`: {e} (e.g. `info` or `warn,ferry_server=debug`)"))?;
    let spans = otlp.map(|tracer| tracing_opentelemetry::layer().with_tracer(tracer));
    let registry = tracing_subscriber::registry().with(targets).with(spans);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let started = match format {
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi))
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    started.map_err(|e| format!("start logging: {e}"))
}
