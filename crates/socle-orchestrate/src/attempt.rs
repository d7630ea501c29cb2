//! The attempts of one task: wait for a pool slot, run with the timeout, record the
//! attempt and its log, alert on a retry or a final failure, back off, try again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use socle_meta::MetaDb;
use socle_meta::runs::{AttemptRecord, TaskRecord};

use crate::pipeline::{Pipeline, Policy, TaskSpec};
use crate::runner::{Event, RunProgress, TaskState, now_text};
use crate::tasks::process::run as process;
use crate::tasks::{Log, TaskContext};

/// The delay before attempt `try_number + 1` (1-based tries).
pub fn retry_delay(policy: &Policy, try_number: u32) -> Duration {
    if !policy.retry_backoff {
        return policy.retry_delay;
    }
    // Up to 10% more, so that tasks failing together do not retry in lockstep.
    socle_core::backoff::Backoff {
        base: policy.retry_delay,
        max: policy.max_retry_delay.max(policy.retry_delay),
        jitter: socle_core::backoff::Jitter::Above(0.1),
    }
    .delay(try_number)
}

/// Every attempt of one task, until one succeeds or the retries are spent.
pub(crate) async fn attempt_all(
    meta: &MetaDb,
    spec: &TaskSpec,
    ctx: TaskContext,
    progress: Arc<dyn RunProgress>,
    (first_try, last_try): (u32, u32),
    pipeline: Arc<Pipeline>,
    pool: Option<Arc<crate::pools::Pool>>,
) -> (String, TaskState, Duration, String) {
    let started = Instant::now();
    let alert = |event: &str, try_number: u32, message: String| {
        let ctx = ctx.clone();
        let (pipeline, task, event) = (pipeline.clone(), spec.name.clone(), event.to_string());
        async move {
            if let Some(alerter) = &ctx.alerter {
                let logs = alerter.logs_link(&pipeline.name, &ctx.run_id, Some(&task));
                let alert = crate::alerts::Alert {
                    event,
                    pipeline: pipeline.name.clone(),
                    task: Some(task),
                    run_id: ctx.run_id.clone(),
                    logical_date: ctx.dates.ds(),
                    attempt: Some(try_number),
                    message,
                    logs,
                };
                alerter.emit(&pipeline, alert).await;
            }
        }
    };
    let tries = last_try;
    if first_try > last_try {
        let message = format!("no tries left ({last_try} used) after an interruption");
        let task = TaskRecord::ended_without_running(
            &ctx.run_id,
            &spec.name,
            TaskState::Failed,
            i64::from(last_try),
            &message,
        );
        let _ = meta.put_task(&task).await;
        return (
            spec.name.clone(),
            TaskState::Failed,
            Duration::ZERO,
            message,
        );
    }
    let kind = &spec.kind;
    let mut try_number = first_try;
    loop {
        // Held while the attempt runs; released before waiting to retry.
        let slot = match &pool {
            Some(p) => Some(p.acquire(spec.priority).await),
            None => None,
        };
        progress.event(&Event::TaskStarted {
            task: spec.name.clone(),
            try_number,
            tries,
        });
        let t0 = Instant::now();
        let began = now_text();
        let log = Log::default();
        let ctx = TaskContext {
            log: log.clone(),
            meta: Some((meta.clone(), spec.name.clone(), i64::from(try_number))),
            ..ctx.clone()
        };
        let mut record = AttemptRecord {
            run_id: ctx.run_id.clone(),
            task: spec.name.clone(),
            try_number: try_number as i64,
            state: TaskState::Running,
            started_at: began.clone(),
            ended_at: None,
            duration_ms: None,
            exit_code: None,
            error: None,
            log: String::new(),
        };
        let mut task = TaskRecord {
            run_id: ctx.run_id.clone(),
            task: spec.name.clone(),
            state: TaskState::Running,
            try_number: try_number as i64,
            started_at: Some(began),
            ended_at: None,
            duration_ms: None,
            error: None,
        };
        let recorded = async {
            meta.put_attempt(&record).await?;
            meta.put_task(&task).await
        }
        .await;
        if let Err(e) = recorded {
            return (
                spec.name.clone(),
                TaskState::Failed,
                started.elapsed(),
                format!("cannot record the attempt: {e}"),
            );
        }
        let outcome = match spec.policy.timeout {
            Some(limit) => match tokio::time::timeout(limit, process(kind, spec, &ctx)).await {
                Ok(r) => r,
                Err(_) => Err(crate::tasks::TaskFailure::new(format!(
                    "timed out after {}",
                    human(limit)
                ))),
            },
            None => process(kind, spec, &ctx).await,
        };
        let elapsed = t0.elapsed();
        record.ended_at = Some(now_text());
        record.duration_ms = Some(elapsed.as_millis() as i64);
        task.ended_at = record.ended_at.clone();
        task.duration_ms = Some(started.elapsed().as_millis() as i64);
        let (state, message, retry) = match outcome {
            Ok(summary) => {
                log.line(&format!("[socle] succeeded: {summary}"));
                (TaskState::Success, summary, false)
            }
            Err(mut f) => {
                f.message = socle_core::secrets::redact(&f.message);
                log.line(&format!("[socle] failed: {}", f.message));
                record.exit_code = f.exit_code;
                record.error = Some(f.message.clone());
                task.error = Some(f.message.clone());
                (
                    TaskState::Failed,
                    f.message,
                    f.retryable && try_number < tries,
                )
            }
        };
        record.state = state;
        record.log = log.text();
        task.state = if retry { TaskState::UpForRetry } else { state };
        if let Err(e) = async {
            meta.put_attempt(&record).await?;
            meta.put_task(&task).await
        }
        .await
        {
            return (
                spec.name.clone(),
                TaskState::Failed,
                started.elapsed(),
                format!("cannot record the attempt: {e}"),
            );
        }
        if state == TaskState::Success {
            return (
                spec.name.clone(),
                TaskState::Success,
                started.elapsed(),
                message,
            );
        }
        let excerpt = format!("{message}\n\n{}", log.tail(20));
        if !retry {
            alert("failure", try_number, excerpt).await;
            return (
                spec.name.clone(),
                TaskState::Failed,
                started.elapsed(),
                message,
            );
        }
        alert("retry", try_number, excerpt).await;
        drop(slot);
        let delay = retry_delay(&spec.policy, try_number);
        progress.event(&Event::TaskRetrying {
            task: spec.name.clone(),
            try_number,
            error: message,
            delay,
        });
        tokio::time::sleep(delay).await;
        try_number += 1;
    }
}

/// `1.5s`, `2m 3s`, `1h 2m`.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else if secs < 3600.0 {
        format!("{}m {}s", d.as_secs() / 60, d.as_secs() % 60)
    } else {
        format!("{}h {}m", d.as_secs() / 3600, d.as_secs() / 60 % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = Policy {
            retries: 5,
            retry_delay: Duration::from_secs(10),
            retry_backoff: true,
            max_retry_delay: Duration::from_secs(60),
            timeout: None,
        };
        let d1 = retry_delay(&p, 1);
        let d2 = retry_delay(&p, 2);
        let d4 = retry_delay(&p, 4);
        assert!(
            d1 >= Duration::from_secs(10) && d1 <= Duration::from_secs(11),
            "{d1:?}"
        );
        assert!(
            d2 >= Duration::from_secs(20) && d2 <= Duration::from_secs(22),
            "{d2:?}"
        );
        assert_eq!(d4, Duration::from_secs(60));
        let flat = Policy {
            retry_backoff: false,
            ..p
        };
        assert_eq!(retry_delay(&flat, 3), Duration::from_secs(10));
    }
}
