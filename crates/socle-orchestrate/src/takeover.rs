//! Taking over runs whose process died.
//!
//! Every run records its runner, the process running it (`host:pid:start`, see
//! [`runner_id`]). A run left `running` is *orphaned* when that process is gone: on this
//! host, its pid no longer runs, is a zombie, or is another program started after the run's
//! runner. A runner on another host cannot be checked from here: the scheduler takes its
//! scheduled runs over when its lease expires ([`crate::scheduler`]), and leaves its other
//! runs to it.
//!
//! Taking a run over, whatever started it (the schedule, `socle run`, the HTTP API):
//! 1. **claim** it: its runner becomes this process in one statement that names the dead
//!    runner, so that two processes taking over never both resume it;
//! 2. **stop** the process groups its running attempts recorded (same host only);
//! 3. **close** those attempts as failed ("crash"); the caller then resumes the run.

use crate::error::Result;
use crate::runner::{RunEnv, runner_id};

/// What is known of the process that runs a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// This process.
    Me,
    /// Another process on this host, running.
    Alive,
    /// A process of this host that is gone.
    Dead,
    /// A process of another host (or none recorded): cannot be checked from here.
    Elsewhere,
}

/// `host:pid:start` split; `None` when malformed.
fn parse(runner: &str) -> Option<(&str, i32, i64)> {
    let mut parts = runner.rsplitn(3, ':');
    let started_ms = parts.next()?.parse().ok()?;
    let pid = parts.next()?.parse().ok()?;
    Some((parts.next()?, pid, started_ms))
}

fn host_of(runner: &str) -> Option<&str> {
    parse(runner).map(|(host, _, _)| host)
}

/// Whether `runner` (as recorded on a run) is this process, alive, dead or elsewhere.
pub fn runner_state(runner: Option<&str>) -> Runner {
    let me = runner_id();
    let Some(runner) = runner else {
        return Runner::Elsewhere;
    };
    if runner == me {
        return Runner::Me;
    }
    match (parse(runner), host_of(me)) {
        (Some((host, pid, started_ms)), Some(here)) if host == here => {
            if process_alive(pid, started_ms) {
                Runner::Alive
            } else {
                Runner::Dead
            }
        }
        _ => Runner::Elsewhere,
    }
}

/// Whether `pid` runs and is the process that made a runner id at `started_ms`.
fn process_alive(pid: i32, started_ms: i64) -> bool {
    if pid <= 1 {
        return false;
    }
    if !std::path::Path::new("/proc/self/stat").exists() {
        // Without /proc, kill(2) with no signal tells whether the pid exists.
        // SAFETY: signal 0 only checks the process exists.
        let r = unsafe { libc::kill(pid, 0) };
        return r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // Fields after the command (which may hold spaces) in parentheses: state, ppid, ...
    let Some(fields) = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace())
    else {
        return false;
    };
    let fields: Vec<&str> = fields.collect();
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return false; // a zombie: it exited, nobody collected it yet
    }
    // A pid reused by a program started after the runner's id was made is not the runner.
    let started = fields.get(19).and_then(|t| t.parse::<i64>().ok());
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|b| b.trim().parse::<i64>().ok())
    });
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as i64;
    match (started, boot) {
        (Some(started), Some(boot)) if ticks > 0 => boot + started / ticks <= started_ms / 1000 + 2,
        _ => true,
    }
}

/// Takes over `run_id`, left `running` by `dead` (a runner that is gone, or a scheduler
/// whose lease expired): claims it, kills the process groups its running attempts left on
/// this host, and marks those attempts failed with `reason`. False when another process
/// claimed it first or it ended; then nothing is changed.
pub async fn take_over(env: &RunEnv, run_id: &str, dead: &str, reason: &str) -> Result<bool> {
    if !env.meta.claim_run(run_id, dead, runner_id()).await? {
        return Ok(false);
    }
    if host_of(dead).is_some() && host_of(dead) == host_of(runner_id()) {
        for pgid in env.meta.running_pgids(run_id).await? {
            if let Ok(pgid) = i32::try_from(pgid)
                && pgid > 1
            {
                // SAFETY: kill(2) on a process group the dead runner created.
                unsafe {
                    libc::kill(-pgid, libc::SIGKILL);
                }
            }
        }
    }
    let closed = env.meta.fail_running(run_id, reason).await?;
    tracing::warn!(
        run_id,
        runner = dead,
        attempts = closed,
        "taking over a run whose process stopped"
    );
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runners_are_told_apart() {
        assert_eq!(runner_state(Some(runner_id())), Runner::Me);
        assert_eq!(runner_state(None), Runner::Elsewhere);
        assert_eq!(runner_state(Some("other-host:1234:1")), Runner::Elsewhere);
        let host = host_of(runner_id()).unwrap().to_string();
        // pid 1 is never a runner; a pid that cannot exist is gone.
        assert_eq!(runner_state(Some(&format!("{host}:1:1"))), Runner::Dead);
        assert_eq!(
            runner_state(Some(&format!("{host}:2147483646:1"))),
            Runner::Dead
        );
        // The parent of this test started before now: alive. Started after the id: reused.
        let ppid = std::os::unix::process::parent_id();
        let now = chrono::Utc::now().timestamp_millis();
        assert_eq!(
            runner_state(Some(&format!("{host}:{ppid}:{now}"))),
            Runner::Alive
        );
        assert_eq!(
            runner_state(Some(&format!("{host}:{ppid}:1000"))),
            Runner::Dead
        );
    }
}
