//! A template render has a budget of work and memory: a string doubled in a loop fails
//! quickly with the model's or the pipeline's file, in dbt models and in pipeline tasks.

use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;

const DOUBLING: &str = "{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}";

/// What a bounded run of socle did.
struct Bounded {
    success: bool,
    out: String,
    elapsed: Duration,
    peak_rss_mb: i64,
}

/// Runs socle with its address space capped at 4 GiB (so an unbounded render fails the
/// test instead of taking the machine's memory); its output, time and peak RSS.
fn run_bounded(dir: &Path, args: &[&str]) -> Bounded {
    let mut cmd = socle();
    cmd.current_dir(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let cap = libc::rlimit {
                rlim_cur: 4 << 30,
                rlim_max: 4 << 30,
            };
            libc::setrlimit(libc::RLIMIT_AS, &cap);
            Ok(())
        });
    }
    let started = Instant::now();
    // Reaped by wait4 below, which also gives its peak memory.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd.spawn().expect("socle runs");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).ok();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).ok();
        s
    });
    let mut status = 0;
    // SAFETY: plain wait4 on our own child; rusage is written by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    let elapsed = started.elapsed();
    let out = format!("{}\n{}", out.join().unwrap(), err.join().unwrap());
    Bounded {
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        out,
        elapsed,
        peak_rss_mb: usage.ru_maxrss / 1024,
    }
}

fn assert_bounded_failure(r: &Bounded, file: &str) {
    assert!(!r.success, "{}", r.out);
    assert!(r.out.contains(file), "the error names {file}:\n{}", r.out);
    assert!(r.out.contains("budget of work"), "{}", r.out);
    assert!(
        r.peak_rss_mb <= 500,
        "peak RSS {} MB:\n{}",
        r.peak_rss_mb,
        r.out
    );
    // Well under a second in a release build; generous for a debug build on a busy machine.
    assert!(r.elapsed < Duration::from_secs(30), "{:?}", r.elapsed);
}

#[test]
fn a_model_that_doubles_a_string_fails_with_its_file() {
    let (_tmp, dir) = project();
    write(
        &dir,
        "models/doubling.sql",
        &format!("{DOUBLING}select '{{{{ ns.s }}}}' as s\n"),
    );
    write(&dir, "models/fine.sql", "select 1 as one\n");
    let r = run_bounded(&dir, &["compile"]);
    assert_bounded_failure(&r, "models/doubling.sql");
    // The same project without it compiles.
    std::fs::remove_file(dir.join("models/doubling.sql")).unwrap();
    ok(&dir, &["compile"]);
}

#[test]
fn a_pipeline_task_that_doubles_a_string_fails_with_its_file() {
    let (_tmp, dir) = project();
    write(
        &dir,
        "pipelines/dbl.yml",
        &format!(
            "tasks:\n  boom:\n    kind: command\n    command: [\"echo\", \"{DOUBLING}{{{{ ns.s }}}}\"]\n"
        ),
    );
    let r = run_bounded(&dir, &["run", "dbl", "--date", "2024-01-01"]);
    assert_bounded_failure(&r, "pipelines/dbl.yml");
}
