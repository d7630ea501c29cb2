//! The scheduler daemon: starts a run of each scheduled pipeline when its interval ends.
//!
//! - **Exactly once.** A logical date gets at most one scheduled run: the metadata
//!   database refuses a second (a unique index), and only the holder of a lease there
//!   schedules at all, so two daemons on one PostgreSQL database never both run a date.
//! - **Catch-up.** With `catchup: true`, every interval since `start_date` (or since the
//!   last scheduled one) runs, oldest first; without it, only the latest complete one.
//!   `max_active_runs` bounds the runs of a pipeline in flight; `end_date` stops it.
//! - **Crash recovery.** Runs left `running` by a process that died are taken over by the
//!   daemon holding the lease (see [`crate::takeover`]): scheduled runs of a daemon whose
//!   lease expired, and any run (scheduled, manual, over HTTP, backfill) whose process on
//!   this host is gone, when the lease is taken and every lease period after. The
//!   process groups they left are killed, the attempts that were running are marked
//!   failed, and the run resumes, retrying those tasks if they have tries left.
//! - **Graceful shutdown.** On SIGTERM or Ctrl-C no new run starts; runs in flight get a
//!   grace period, then their tasks' process groups are killed; the lease is released.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinSet;

use crate::error::Result;
use crate::pipeline::Pipeline;
use crate::runner::{Previous, RunEnv, RunProgress, RunRequest, runner_id};
use crate::schedule::start_of_day;

const LEASE: &str = "scheduler";

/// Daemon settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a lease lasts without renewal (a dead daemon's runs are taken over after).
    pub lease: Duration,
    /// How often the daemon looks at the schedules and renews its lease.
    pub tick: Duration,
    /// How long runs in flight may finish after a shutdown signal.
    pub grace: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            tick: Duration::from_secs(1),
            grace: Duration::from_secs(60),
        }
    }
}

/// Intervals of `pipeline` due at `now`, oldest first, given the start of the latest
/// scheduled one (`last`) and how many of its runs are in flight (`active`).
pub fn due(
    pipeline: &Pipeline,
    last: Option<DateTime<Utc>>,
    active: usize,
    now: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let Some(schedule) = &pipeline.schedule else {
        return Vec::new();
    };
    let room = (pipeline.max_active_runs as usize).saturating_sub(active);
    if room == 0 {
        return Vec::new();
    }
    let tz = schedule.tz;
    let earliest = pipeline.start_date.map(|d| start_of_day(d, tz));
    let latest = pipeline
        .end_date
        .map(|d| start_of_day(d + chrono::Duration::days(1), tz));
    let in_range = |start: DateTime<Utc>| {
        earliest.is_none_or(|e| start >= e) && latest.is_none_or(|l| start < l)
    };
    let complete = |start: DateTime<Utc>| -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let end = schedule.next(start, false)?;
        (end <= now).then_some((start, end))
    };
    if !pipeline.catchup {
        // Only the latest complete interval, if not run yet.
        let Some((start, end)) = schedule.latest_complete(now) else {
            return Vec::new();
        };
        if last.is_some_and(|l| l >= start) || !in_range(start) {
            return Vec::new();
        }
        return vec![(start, end)];
    }
    let mut at = match (last, earliest) {
        (Some(l), _) => schedule.next(l, false),
        (None, Some(e)) => schedule.next(e, true),
        (None, None) => schedule.latest_complete(now).map(|(s, _)| s),
    };
    let mut out = Vec::new();
    while let Some(start) = at {
        if out.len() >= room || !in_range(start) {
            break;
        }
        let Some(interval) = complete(start) else {
            break;
        };
        out.push(interval);
        at = Some(interval.1);
    }
    out
}

/// Runs the daemon until `shutdown` resolves.
pub async fn serve(
    env: RunEnv,
    settings: Settings,
    progress: Arc<dyn RunProgress>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let holder = runner_id().to_string();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut running: JoinSet<(String, String)> = JoinSet::new();
    // Pipeline name → runs in flight.
    let mut active: BTreeMap<String, usize> = BTreeMap::new();
    // Run id → (pipeline, ds, interval end) of scheduled runs in flight, for SLA alerts.
    let mut inflight: BTreeMap<String, (Pipeline, String, DateTime<Utc>)> = BTreeMap::new();
    let mut leader = false;
    let mut swept = std::time::Instant::now();
    tracing::info!(holder, "scheduler started");
    loop {
        let now = Utc::now();
        let expires = now + chrono::Duration::from_std(settings.lease).unwrap_or_default();
        let held = env
            .meta
            .acquire_lease(LEASE, &holder, &now.to_rfc3339(), &expires.to_rfc3339())
            .await?;
        if held && !leader {
            tracing::info!(holder, "scheduler lease acquired: scheduling");
            leader = true;
            recover(&env, true, &progress, &mut running, &mut active).await?;
            swept = std::time::Instant::now();
        } else if !held && leader {
            tracing::warn!("scheduler lease lost: another daemon schedules now");
            leader = false;
        }
        if leader && swept.elapsed() >= settings.lease {
            // Runs of processes that died since (a killed `socle run`, for instance).
            recover(&env, false, &progress, &mut running, &mut active).await?;
            swept = std::time::Instant::now();
        }
        if leader {
            let pipelines = match crate::pipeline::load_all(&env.project.root) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!("pipelines not loaded, nothing scheduled: {e}");
                    Vec::new()
                }
            };
            for pipeline in pipelines.into_iter().filter(|p| p.schedule.is_some()) {
                let last = env
                    .meta
                    .last_scheduled(&pipeline.name)
                    .await?
                    .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                    .map(|t| t.with_timezone(&Utc));
                let in_flight = active.get(&pipeline.name).copied().unwrap_or(0);
                for (start, end) in due(&pipeline, last, in_flight, now) {
                    let request = RunRequest {
                        pipeline: pipeline.clone(),
                        start,
                        end,
                        trigger: "scheduled".into(),
                        only: None,
                    };
                    let Some(run_id) = crate::runner::create_run(&env, &request).await? else {
                        continue; // that date has its run already
                    };
                    *active.entry(pipeline.name.clone()).or_default() += 1;
                    let ds = start
                        .with_timezone(&pipeline.schedule.as_ref().expect("scheduled").tz)
                        .format("%Y-%m-%d")
                        .to_string();
                    inflight.insert(run_id.clone(), (pipeline.clone(), ds, end));
                    let (env, progress, name) =
                        (env.clone(), progress.clone(), pipeline.name.clone());
                    running.spawn(async move {
                        if let Err(e) = crate::runner::execute(
                            &env,
                            &run_id,
                            request,
                            progress,
                            Previous::default(),
                        )
                        .await
                        {
                            tracing::error!(run_id, "run failed to execute: {e}");
                        }
                        (name, run_id)
                    });
                }
            }
        }
        sla_watch(&env, &inflight, now).await;
        // Wait for a tick, a run to finish, or the end.
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(settings.tick) => {}
            Some(done) = running.join_next(), if !running.is_empty() => {
                if let Ok((name, run_id)) = done {
                    inflight.remove(&run_id);
                    if let Some(n) = active.get_mut(&name) {
                        *n = n.saturating_sub(1);
                    }
                }
            }
        }
    }
    tracing::info!(
        runs = running.len(),
        "scheduler stopping: no new runs; waiting for runs in flight"
    );
    let drained = tokio::time::timeout(settings.grace, async {
        while running.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("grace period over: stopping the runs still in flight");
        running.abort_all();
        while running.join_next().await.is_some() {}
        for run in env
            .meta
            .runs_in_state(socle_meta::RunState::Running)
            .await?
        {
            if env.meta.run_runner(&run.run_id).await?.as_deref() == Some(holder.as_str()) {
                env.meta
                    .fail_running(&run.run_id, "the scheduler stopped during this attempt")
                    .await?;
                env.meta
                    .set_run_state(&run.run_id, socle_meta::RunState::Failed)
                    .await?;
            }
        }
    }
    env.meta.release_lease(LEASE, &holder).await?;
    tracing::info!("scheduler stopped");
    Ok(())
}

/// Alerts `sla_miss` for runs still in flight past their interval's end plus `sla`
/// (once per run; a run that finishes late without this having fired alerts at its end).
async fn sla_watch(
    env: &RunEnv,
    inflight: &BTreeMap<String, (Pipeline, String, DateTime<Utc>)>,
    now: DateTime<Utc>,
) {
    let Some(alerter) = &env.alerter else { return };
    for (run_id, (pipeline, ds, end)) in inflight {
        let Some(sla) = pipeline.sla else { continue };
        let Ok(sla_c) = chrono::Duration::from_std(sla) else {
            continue;
        };
        if now <= *end + sla_c
            || !env
                .sla_alerted
                .lock()
                .expect("sla lock")
                .insert(run_id.clone())
        {
            continue;
        }
        let alert = crate::alerts::Alert {
            event: "sla_miss".into(),
            pipeline: pipeline.name.clone(),
            task: None,
            run_id: run_id.clone(),
            logical_date: ds.clone(),
            attempt: None,
            message: format!(
                "the run was due within {} of its interval's end ({end}) and is still running",
                crate::runner::human(sla)
            ),
            logs: alerter.logs_link(&pipeline.name, run_id, None),
        };
        alerter.emit(pipeline, alert).await;
    }
}

/// Takes over runs left `running` by processes that died (see [`crate::takeover`]):
/// whatever started them (the schedule, `socle run`, the HTTP API) when their process
/// on this host is gone; with `lease_taken` (this daemon just got the lease), also the
/// scheduled runs of other daemons, whose lease expired. Each resumes here, interrupted
/// tasks retried within their `retries`.
async fn recover(
    env: &RunEnv,
    lease_taken: bool,
    progress: &Arc<dyn RunProgress>,
    running: &mut JoinSet<(String, String)>,
    active: &mut BTreeMap<String, usize>,
) -> Result<()> {
    use crate::takeover::{Runner, runner_state, take_over};
    for run in env
        .meta
        .runs_in_state(socle_meta::RunState::Running)
        .await?
    {
        let Some(runner) = env.meta.run_runner(&run.run_id).await? else {
            continue;
        };
        let orphaned = match runner_state(Some(&runner)) {
            Runner::Me => false,
            Runner::Dead => true,
            Runner::Alive | Runner::Elsewhere => lease_taken && run.trigger == "scheduled",
        };
        if !orphaned
            || !take_over(
                env,
                &run.run_id,
                &runner,
                "the process running this attempt stopped (crash)",
            )
            .await?
        {
            continue;
        }
        *active.entry(run.pipeline.clone()).or_default() += 1;
        let (env, progress, run_id, name) = (
            env.clone(),
            progress.clone(),
            run.run_id.clone(),
            run.pipeline.clone(),
        );
        running.spawn(async move {
            if let Err(e) = crate::runner::resume(&env, &run_id, progress, true).await {
                tracing::error!(run_id, "recovered run failed to execute: {e}");
                let _ = env
                    .meta
                    .set_run_state(&run_id, socle_meta::RunState::Failed)
                    .await;
            }
            (name, run_id)
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::Schedule;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn pipeline(schedule: &str, tz: chrono_tz::Tz, catchup: bool, max_active: u32) -> Pipeline {
        Pipeline {
            name: "p".into(),
            file: "pipelines/p.yml".into(),
            description: String::new(),
            schedule: Some(Schedule::parse(schedule, tz).unwrap()),
            start_date: Some(chrono::NaiveDate::from_ymd_opt(2024, 3, 29).unwrap()),
            end_date: None,
            catchup,
            max_active_runs: max_active,
            params: Default::default(),
            tasks: Default::default(),
            alerts: None,
            sla: None,
        }
    }

    #[test]
    fn catchup_runs_every_missed_interval_in_order_within_max_active_runs() {
        let p = pipeline("@daily", chrono_tz::Europe::Paris, true, 16);
        // Fake clock: 2024-04-02 10:00 Paris. Intervals since 2024-03-29, across the DST
        // change of 2024-03-31 (a 23-hour day).
        let now = utc("2024-04-02T08:00:00Z");
        let runs = due(&p, None, 0, now);
        let starts: Vec<String> = runs.iter().map(|(s, _)| s.to_rfc3339()).collect();
        assert_eq!(
            starts,
            [
                "2024-03-28T23:00:00+00:00",
                "2024-03-29T23:00:00+00:00",
                "2024-03-30T23:00:00+00:00",
                "2024-03-31T22:00:00+00:00",
            ]
        );
        assert_eq!(runs[2].1 - runs[2].0, chrono::Duration::hours(23));
        // max_active_runs = 2 with one in flight: one more now.
        let p2 = pipeline("@daily", chrono_tz::Europe::Paris, true, 2);
        assert_eq!(due(&p2, None, 1, now).len(), 1);
        assert!(due(&p2, None, 2, now).is_empty());
        // After the last scheduled date, only what follows it.
        let next = due(&p, Some(runs[2].0), 0, now);
        assert_eq!(next, vec![runs[3]]);
        // Nothing new until the next interval ends.
        assert!(due(&p, Some(runs[3].0), 0, now).is_empty());
        assert_eq!(
            due(&p, Some(runs[3].0), 0, utc("2024-04-02T22:00:00Z")).len(),
            1
        );
    }

    #[test]
    fn without_catchup_only_the_latest_interval_runs_once() {
        let p = pipeline("0 * * * *", chrono_tz::UTC, false, 1);
        let now = utc("2024-04-02T10:30:00Z");
        let runs = due(&p, None, 0, now);
        assert_eq!(
            runs,
            vec![(utc("2024-04-02T09:00:00Z"), utc("2024-04-02T10:00:00Z"))]
        );
        assert!(due(&p, Some(runs[0].0), 0, now).is_empty());
        assert_eq!(
            due(&p, Some(runs[0].0), 0, utc("2024-04-02T11:00:00Z")),
            vec![(utc("2024-04-02T10:00:00Z"), utc("2024-04-02T11:00:00Z"))]
        );
    }

    #[test]
    fn start_and_end_dates_bound_the_schedule() {
        let mut p = pipeline("@daily", chrono_tz::UTC, true, 16);
        p.end_date = Some(chrono::NaiveDate::from_ymd_opt(2024, 3, 30).unwrap());
        let runs = due(&p, None, 0, utc("2024-04-10T00:00:00Z"));
        assert_eq!(runs.len(), 2, "{runs:?}"); // 29 and 30 March
        p.start_date = Some(chrono::NaiveDate::from_ymd_opt(2024, 5, 1).unwrap());
        p.end_date = None;
        assert!(due(&p, None, 0, utc("2024-04-10T00:00:00Z")).is_empty());
    }
}
