//! Which process is doing something: its id (`host:pid:start`) and whether the process an
//! id names still runs. Pipeline runs record their runner this way, and so do model
//! trainings writing their output tables: a record left by a process that is gone can be
//! taken over.

use chrono::Utc;

/// This process, as recorded on what it runs (`host:pid:start`).
pub fn runner_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        format!(
            "{host}:{}:{}",
            std::process::id(),
            Utc::now().timestamp_millis()
        )
    })
}

/// What is known of the process an id names.
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

/// The host part of a runner id.
pub fn host_of(runner: &str) -> Option<&str> {
    parse(runner).map(|(host, _, _)| host)
}

/// Whether `runner` (as recorded) is this process, alive, dead or elsewhere.
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
