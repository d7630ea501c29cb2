//! `/metrics` in Prometheus' text format: the server's own requests (counts by route,
//! method and status; latency histograms by route), and, from the metadata database,
//! pipeline runs and task instances with their durations, rows extracted per stream, when
//! each stream last loaded, how late the scheduler started runs, and table freshness
//! (when the catalog has been read).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::{ApiError, AppState, Caller, internal};
use crate::auth::Role;

/// Request counts and latency histograms per route and status.
#[derive(Default)]
pub struct Metrics {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
}

const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// Counts every request by the route it matched.
pub async fn observe(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let secs = started.elapsed().as_secs_f64();
    let mut m = state.metrics.lock().expect("metrics");
    *m.requests
        .entry((route.clone(), method, resp.status().as_u16()))
        .or_default() += 1;
    let h = m.latency.entry(route).or_default();
    if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
        h.counts[i] += 1;
    }
    h.sum += secs;
    h.count += 1;
    resp
}

/// Label values escaped as the text format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn help(out: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(out, "# HELP {name} {text}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn seconds(t: &str) -> Option<f64> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_millis() as f64 / 1000.0)
}

impl Metrics {
    fn write(&self, out: &mut String, started: Instant) {
        help(
            out,
            "socle_http_requests_total",
            "counter",
            "HTTP requests by route, method and status.",
        );
        for ((route, method, status), n) in &self.requests {
            let _ = writeln!(
                out,
                "socle_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                label(route)
            );
        }
        help(
            out,
            "socle_http_request_duration_seconds",
            "histogram",
            "Time to answer, by route.",
        );
        for (route, h) in &self.latency {
            let route = label(route);
            let mut cumulative = 0;
            for (b, c) in BUCKETS.iter().zip(h.counts) {
                cumulative += c;
                let _ = writeln!(
                    out,
                    "socle_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "socle_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "socle_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "socle_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        help(
            out,
            "socle_uptime_seconds",
            "gauge",
            "Seconds since the server started.",
        );
        let _ = writeln!(
            out,
            "socle_uptime_seconds {}",
            started.elapsed().as_secs_f64()
        );
    }
}

/// The metadata database's part: pipelines, tasks, streams, scheduler lag.
async fn history(state: &AppState, out: &mut String) -> Result<(), ApiError> {
    let meta = &state.meta;
    help(
        out,
        "socle_pipeline_runs",
        "gauge",
        "Pipeline runs in the history, by pipeline, state and trigger.",
    );
    for r in meta.run_counts().await.map_err(internal)? {
        let _ = writeln!(
            out,
            "socle_pipeline_runs{{pipeline=\"{}\",state=\"{}\",trigger=\"{}\"}} {}",
            label(&r.pipeline),
            label(&r.state),
            label(&r.trigger),
            r.runs
        );
    }
    let tasks = meta.task_counts().await.map_err(internal)?;
    help(
        out,
        "socle_task_instances",
        "gauge",
        "Task instances in the history, by pipeline, task and state.",
    );
    for t in &tasks {
        let _ = writeln!(
            out,
            "socle_task_instances{{pipeline=\"{}\",task=\"{}\",state=\"{}\"}} {}",
            label(&t.pipeline),
            label(&t.task),
            label(&t.state),
            t.count
        );
    }
    help(
        out,
        "socle_task_duration_seconds_total",
        "gauge",
        "Summed duration of the task instances in the history, by pipeline, task and state.",
    );
    for t in &tasks {
        let _ = writeln!(
            out,
            "socle_task_duration_seconds_total{{pipeline=\"{}\",task=\"{}\",state=\"{}\"}} {}",
            label(&t.pipeline),
            label(&t.task),
            label(&t.state),
            t.duration_ms as f64 / 1000.0
        );
    }
    // Durations and scheduler lag from the latest runs.
    let times = meta.run_times(2000).await.map_err(internal)?;
    let mut last_duration: BTreeMap<&str, f64> = BTreeMap::new();
    let mut lag: BTreeMap<&str, f64> = BTreeMap::new();
    for r in &times {
        if let (Some(s), Some(e)) = (
            r.started_at.as_deref().and_then(seconds),
            r.ended_at.as_deref().and_then(seconds),
        ) {
            last_duration.entry(&r.pipeline).or_insert(e - s);
        }
        if r.trigger == "scheduled"
            && let (Some(due), Some(created)) = (seconds(&r.interval_end), seconds(&r.created_at))
        {
            lag.entry(&r.pipeline).or_insert((created - due).max(0.0));
        }
    }
    help(
        out,
        "socle_pipeline_last_run_duration_seconds",
        "gauge",
        "How long the latest finished run of each pipeline took.",
    );
    for (p, d) in &last_duration {
        let _ = writeln!(
            out,
            "socle_pipeline_last_run_duration_seconds{{pipeline=\"{}\"}} {d}",
            label(p)
        );
    }
    help(
        out,
        "socle_scheduler_lag_seconds",
        "gauge",
        "How long after its interval ended the latest scheduled run of each pipeline was created.",
    );
    for (p, d) in &lag {
        let _ = writeln!(
            out,
            "socle_scheduler_lag_seconds{{pipeline=\"{}\"}} {d}",
            label(p)
        );
    }
    let streams = meta.stream_counts().await.map_err(internal)?;
    help(
        out,
        "socle_stream_extractions",
        "gauge",
        "Stream extractions in the history, by source, stream and status.",
    );
    for s in &streams {
        let _ = writeln!(
            out,
            "socle_stream_extractions{{source=\"{}\",stream=\"{}\",status=\"{}\"}} {}",
            label(&s.source),
            label(&s.stream),
            label(s.status.as_str()),
            s.count
        );
    }
    let mut loaded: BTreeMap<(&str, &str), (i64, i64, Option<f64>)> = BTreeMap::new();
    for s in &streams {
        let e = loaded.entry((&s.source, &s.stream)).or_default();
        e.0 += s.rows_loaded;
        e.1 += s.rows_rejected;
        if s.status == socle_meta::StreamState::Success {
            e.2 = s.last_ended_at.as_deref().and_then(seconds);
        }
    }
    help(
        out,
        "socle_stream_rows_loaded_total",
        "counter",
        "Rows extracted and loaded into the warehouse, by source and stream.",
    );
    for ((src, stream), (rows, _, _)) in &loaded {
        let _ = writeln!(
            out,
            "socle_stream_rows_loaded_total{{source=\"{}\",stream=\"{}\"}} {rows}",
            label(src),
            label(stream)
        );
    }
    help(
        out,
        "socle_stream_rows_rejected_total",
        "counter",
        "Records rejected (quarantined with a reason), by source and stream.",
    );
    for ((src, stream), (_, rejected, _)) in &loaded {
        let _ = writeln!(
            out,
            "socle_stream_rows_rejected_total{{source=\"{}\",stream=\"{}\"}} {rejected}",
            label(src),
            label(stream)
        );
    }
    help(
        out,
        "socle_stream_last_success_timestamp_seconds",
        "gauge",
        "When each stream last loaded successfully (Unix time).",
    );
    for ((src, stream), (_, _, at)) in &loaded {
        if let Some(at) = at {
            let _ = writeln!(
                out,
                "socle_stream_last_success_timestamp_seconds{{source=\"{}\",stream=\"{}\"}} {at}",
                label(src),
                label(stream)
            );
        }
    }
    Ok(())
}

/// `GET /metrics` (viewer).
pub async fn metrics(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.need(Role::Viewer)?;
    let mut out = String::new();
    state
        .metrics
        .lock()
        .expect("metrics")
        .write(&mut out, state.started);
    history(&state, &mut out).await?;
    help(
        &mut out,
        "socle_query_process_running",
        "gauge",
        "1 while the query process (which runs queries through the API) runs; it stops when idle.",
    );
    let _ = writeln!(
        out,
        "socle_query_process_running {}",
        u8::from(state.engine.child_pid().is_some())
    );
    if let Some(snapshot) = state.catalog.current() {
        help(
            &mut out,
            "socle_table_last_modified_timestamp_seconds",
            "gauge",
            "When each table's newest data file was written (Unix time), as of the catalog's last read.",
        );
        for t in &snapshot.tables {
            if let Some(at) = t.last_modified.as_deref().and_then(seconds) {
                let _ = writeln!(
                    out,
                    "socle_table_last_modified_timestamp_seconds{{schema=\"{}\",table=\"{}\"}} {at}",
                    label(&t.schema),
                    label(&t.name)
                );
            }
        }
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}
