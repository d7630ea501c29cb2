//! Running the binary.

use std::path::Path;
use std::process::{Command, Output};

pub fn socle() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_socle"));
    c.env_remove("SOCLE_PROJECT").env("NO_COLOR", "1");
    c
}

/// Runs socle with `args` in `dir`; returns (success, stdout, stderr).
pub fn run(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out: Output = socle()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("socle runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs socle and fails the test with its output if it fails.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let (success, stdout, stderr) = run(dir, args);
    assert!(success, "socle {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// A fresh project made by `socle init`.
pub fn project() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    ok(tmp.path(), &["init", "proj"]);
    let dir = tmp.path().join("proj");
    (tmp, dir)
}

/// Whether process `pid` runs (a killed process may linger as a zombie when nothing reaps
/// orphans: that counts as dead).
pub fn alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/status", pid.trim())) {
        Ok(status) => !status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z')),
        Err(_) => false,
    }
}
