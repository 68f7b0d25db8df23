//! The server process's metrics, in Prometheus's text format at `/metrics`, through the
//! `metrics` crate and its Prometheus exporter. Each `Server` has a recorder of its own (no
//! global one), so servers sharing a process (tests, an app embedding several) count apart.
//!
//! Counters: requests per route and status, uploads, objects applied and rejected, download
//! pages and objects, sign-ins, refreshes, errors, file bytes in and out, devices' syncs per
//! mode. Histograms: request, upload and download-page durations; objects per upload and per
//! page; the duration and objects of the syncs devices report. Gauges, read when scraped: live
//! devices connected to this process, failures waiting for replay.

use metrics::{
    Counter, Histogram, Key, KeyName, Label, Metadata, Recorder as _, SharedString, Unit,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

/// Bucket bounds of the duration histograms, in seconds.
const SECONDS_BUCKETS: [f64; 12] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
/// Bucket bounds of the size histograms, in objects.
const OBJECTS_BUCKETS: [f64; 9] =
    [0.0, 1.0, 10.0, 100.0, 500.0, 1_000.0, 5_000.0, 10_000.0, 100_000.0];

const METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// What the server counts.
pub(crate) struct Metrics {
    recorder: PrometheusRecorder,
    pub(crate) uploads: Counter,
    pub(crate) objects_applied: Counter,
    pub(crate) objects_failed: Counter,
    pub(crate) download_pages: Counter,
    pub(crate) objects_downloaded: Counter,
    pub(crate) sign_ins: Counter,
    pub(crate) refreshes: Counter,
    pub(crate) errors: Counter,
    pub(crate) file_bytes_received: Counter,
    pub(crate) file_bytes_sent: Counter,
    pub(crate) upload_seconds: Histogram,
    pub(crate) upload_objects: Histogram,
    pub(crate) download_page_seconds: Histogram,
    pub(crate) download_page_objects: Histogram,
    pub(crate) sync_seconds: Histogram,
    pub(crate) sync_objects: Histogram,
}

/// The names and descriptions of every metric, with its kind.
const COUNTERS: [(&str, &str); 13] = [
    ("ferry_lifecycle_removed_total", "What the data lifecycle's jobs removed, by job."),
    ("ferry_uploads_total", "Uploads applied."),
    ("ferry_objects_applied_total", "Uploaded objects applied."),
    ("ferry_objects_failed_total", "Uploaded objects skipped into SynchronizationError."),
    ("ferry_download_pages_total", "Download pages served."),
    ("ferry_objects_downloaded_total", "Objects sent in downloads."),
    ("ferry_sign_ins_total", "Successful sign-ins."),
    ("ferry_refreshes_total", "Access tokens renewed by a refresh token."),
    ("ferry_errors_total", "Requests answered with an error (4xx or 5xx)."),
    ("ferry_file_bytes_received_total", "File content bytes stored."),
    ("ferry_file_bytes_sent_total", "File content bytes sent."),
    ("ferry_requests_total", "Requests answered, by route and status."),
    ("ferry_syncs_total", "Syncs devices completed and reported, by mode."),
];
const HISTOGRAMS: [(&str, &str, Unit); 7] = [
    ("ferry_request_seconds", "Time to answer a request, by route.", Unit::Seconds),
    ("ferry_upload_seconds", "Time to apply an upload.", Unit::Seconds),
    ("ferry_upload_objects", "Changes per upload.", Unit::Count),
    ("ferry_download_page_seconds", "Time to serve a download page.", Unit::Seconds),
    ("ferry_download_page_objects", "Objects per download page.", Unit::Count),
    ("ferry_sync_seconds", "Duration of the syncs devices report.", Unit::Seconds),
    ("ferry_sync_objects", "Objects up and down in the syncs devices report.", Unit::Count),
];
const GAUGES: [(&str, &str); 2] = [
    ("ferry_live_devices", "Live streams open on this server process."),
    ("ferry_failures_waiting", "Rejected changes in SynchronizationError not replayed yet."),
];

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Suffix("_seconds".to_owned()),
                &SECONDS_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Suffix("_objects".to_owned()),
                    &OBJECTS_BUCKETS,
                )
            })
            .expect("the buckets are not empty");
        let recorder = builder.build_recorder();
        for (name, help) in COUNTERS {
            recorder.describe_counter(KeyName::from(name), None, SharedString::from(help));
        }
        for (name, help, unit) in HISTOGRAMS {
            recorder.describe_histogram(KeyName::from(name), Some(unit), SharedString::from(help));
        }
        for (name, help) in GAUGES {
            recorder.describe_gauge(KeyName::from(name), None, SharedString::from(help));
        }
        let counter =
            |name: &'static str| recorder.register_counter(&Key::from_name(name), &METADATA);
        let histogram =
            |name: &'static str| recorder.register_histogram(&Key::from_name(name), &METADATA);
        Metrics {
            uploads: counter("ferry_uploads_total"),
            objects_applied: counter("ferry_objects_applied_total"),
            objects_failed: counter("ferry_objects_failed_total"),
            download_pages: counter("ferry_download_pages_total"),
            objects_downloaded: counter("ferry_objects_downloaded_total"),
            sign_ins: counter("ferry_sign_ins_total"),
            refreshes: counter("ferry_refreshes_total"),
            errors: counter("ferry_errors_total"),
            file_bytes_received: counter("ferry_file_bytes_received_total"),
            file_bytes_sent: counter("ferry_file_bytes_sent_total"),
            upload_seconds: histogram("ferry_upload_seconds"),
            upload_objects: histogram("ferry_upload_objects"),
            download_page_seconds: histogram("ferry_download_page_seconds"),
            download_page_objects: histogram("ferry_download_page_objects"),
            sync_seconds: histogram("ferry_sync_seconds"),
            sync_objects: histogram("ferry_sync_objects"),
            recorder,
        }
    }

    /// A request answered: its route and status, and how long it took.
    pub(crate) fn request(&self, route: &str, status: u16, seconds: f64) {
        let labels =
            vec![Label::new("route", route.to_owned()), Label::new("status", status.to_string())];
        let key = Key::from_parts("ferry_requests_total", labels);
        self.recorder.register_counter(&key, &METADATA).increment(1);
        let key =
            Key::from_parts("ferry_request_seconds", vec![Label::new("route", route.to_owned())]);
        self.recorder.register_histogram(&key, &METADATA).record(seconds);
        if status >= 400 {
            self.errors.increment(1);
        }
    }

    /// What a lifecycle job removed.
    pub(crate) fn lifecycle_removed(&self, job: &str, removed: u64) {
        let key = Key::from_parts(
            "ferry_lifecycle_removed_total",
            vec![Label::new("job", job.to_owned())],
        );
        self.recorder.register_counter(&key, &METADATA).increment(removed);
    }

    /// A sync a device completed and reported.
    pub(crate) fn sync(&self, mode: &str, seconds: f64, objects: u64) {
        let key = Key::from_parts("ferry_syncs_total", vec![Label::new("mode", mode.to_owned())]);
        self.recorder.register_counter(&key, &METADATA).increment(1);
        self.sync_seconds.record(seconds);
        self.sync_objects.record(objects as f64);
    }

    /// The text `/metrics` answers, with the gauges set to what they are now (the failures
    /// waiting keep their last value when the database could not say).
    pub(crate) fn render(&self, live_devices: usize, failures_waiting: Option<i64>) -> String {
        let gauge =
            |name: &'static str| self.recorder.register_gauge(&Key::from_name(name), &METADATA);
        gauge("ferry_live_devices").set(live_devices as f64);
        if let Some(waiting) = failures_waiting {
            gauge("ferry_failures_waiting").set(waiting as f64);
        }
        self.recorder.handle().render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_histograms_and_gauges_render_per_server() {
        let (one, two) = (Metrics::new(), Metrics::new());
        one.sign_ins.increment(1);
        one.request("/v1/upload", 200, 0.003);
        one.request("/v1/upload", 409, 0.2);
        one.sync("all", 1.5, 120);
        let text = one.render(3, Some(2));
        for line in [
            "ferry_sign_ins_total 1",
            "ferry_errors_total 1",
            "ferry_requests_total{route=\"/v1/upload\",status=\"200\"} 1",
            "ferry_request_seconds_bucket{route=\"/v1/upload\",le=\"0.005\"} 1",
            "ferry_request_seconds_count{route=\"/v1/upload\"} 2",
            "ferry_syncs_total{mode=\"all\"} 1",
            "ferry_sync_objects_bucket{le=\"500\"} 1",
            "ferry_live_devices 3",
            "ferry_failures_waiting 2",
            "# HELP ferry_upload_seconds Time to apply an upload.",
        ] {
            assert!(text.contains(line), "no `{line}` in\n{text}");
        }
        assert!(two.render(0, Some(0)).contains("ferry_sign_ins_total 0"), "servers count apart");
    }
}
