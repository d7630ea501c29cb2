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
use crate::runner::RunEnv;
use socle_core::process::host_of;
pub use socle_core::process::{Runner, runner_id, runner_state};

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
