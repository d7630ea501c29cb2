//! Open-loop load: sends requests at a fixed rate (one every 1/rate s, whether or not the
//! earlier ones have been answered) for a duration, round-robin over the given requests,
//! over keep-alive HTTP/1.1 connections. Latency is measured from the moment a request was
//! due, so a server that falls behind shows it (no coordinated omission). Prints JSON:
//! latency percentiles (all answers, and the answers of each HTTP status), answers by
//! HTTP status, and transport errors.
//!
//! Usage: socle-loadgen --url http://127.0.0.1:8080 --rate 1000 --seconds 30
//!   --header "Authorization: Bearer ..." --get /api/tables --post '/api/query={"sql":"..."}'

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

struct Spec {
    method: &'static str,
    path: String,
    body: Option<String>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut url, mut rate, mut seconds) = (String::new(), 1000u64, 30u64);
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut specs: Vec<Spec> = Vec::new();
    while let Some(a) = args.next() {
        let mut value = || args.next().expect("a value after each flag");
        match a.as_str() {
            "--url" => url = value(),
            "--rate" => rate = value().parse().expect("--rate N"),
            "--seconds" => seconds = value().parse().expect("--seconds N"),
            "--header" => {
                let v = value();
                let (k, v) = v.split_once(':').expect("--header 'Name: value'");
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
            "--get" => specs.push(Spec { method: "GET", path: value(), body: None }),
            "--post" => {
                let v = value();
                let (p, b) = v.split_once('=').expect("--post '/path={json}'");
                specs.push(Spec { method: "POST", path: p.to_string(), body: Some(b.to_string()) });
            }
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(!url.is_empty() && !specs.is_empty() && rate > 0);
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(512)
        .build_http();
    let specs = Arc::new(specs);
    let headers = Arc::new(headers);
    let errors = Arc::new(AtomicU64::new(0));
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let total = rate * seconds;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let (client, specs, headers, errors, url) =
            (client.clone(), specs.clone(), headers.clone(), errors.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let spec = &specs[i as usize % specs.len()];
            let mut req = Request::builder()
                .method(spec.method)
                .uri(format!("{url}{}", spec.path));
            for (k, v) in headers.iter() {
                req = req.header(k, v);
            }
            if spec.body.is_some() {
                req = req.header("content-type", "application/json");
            }
            let body = Full::new(Bytes::from(spec.body.clone().unwrap_or_default()));
            let status = match client.request(req.body(body).unwrap()).await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if resp.into_body().collect().await.is_ok() { status } else { 0 }
                }
                Err(_) => 0,
            };
            if status == 0 {
                errors.fetch_add(1, Ordering::Relaxed);
            }
            (spec.path.clone(), due.elapsed().as_secs_f64() * 1000.0, status)
        }));
    }
    let sent_for = start.elapsed().as_secs_f64();
    let mut all = Vec::with_capacity(tasks.len());
    let mut by_path: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    let mut statuses: std::collections::BTreeMap<String, u64> = Default::default();
    let mut by_status: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for t in tasks {
        let (path, ms, status) = t.await.unwrap();
        *statuses.entry(status.to_string()).or_default() += 1;
        all.push(ms);
        by_path.entry(path).or_default().push(ms);
        by_status.entry(status.to_string()).or_default().push(ms);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        serde_json::json!({
            "requests": v.len(),
            "p50_ms": percentile(v, 50.0), "p90_ms": percentile(v, 90.0),
            "p99_ms": percentile(v, 99.0), "max_ms": v.last().copied().unwrap_or(f64::NAN),
        })
    };
    let per_path: serde_json::Map<String, serde_json::Value> = by_path
        .iter_mut()
        .map(|(k, v)| (k.clone(), stats(v)))
        .collect();
    let mut out = stats(&mut all);
    out["target_rate"] = rate.into();
    out["achieved_rate"] = (total as f64 / sent_for).into();
    out["seconds"] = elapsed.into();
    out["errors"] = errors.load(Ordering::Relaxed).into();
    out["statuses"] = serde_json::to_value(&statuses).unwrap();
    out["by_path"] = per_path.into();
    // Latency of the answers of each status (e.g. the admitted 200s apart from the 503s).
    let per_status: serde_json::Map<String, serde_json::Value> = by_status
        .iter_mut()
        .map(|(k, v)| (k.clone(), stats(v)))
        .collect();
    out["by_status"] = per_status.into();
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
