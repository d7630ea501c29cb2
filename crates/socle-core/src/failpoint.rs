//! Failure injection for crash tests: `SOCLE_FAILPOINT=<name>` makes the process abort at
//! the named point, as a `kill -9` would, so that tests can stop a writer exactly between
//! two of its steps (after a commit, before the state is written, ...).
//!
//! Only a build with the `failpoints` cargo feature honours the variable (the test
//! command of the README turns it on for the binary the crash tests drive:
//! `--features socle-cli/failpoints`). Any other build, a release binary above all,
//! compiles [`hit`] to nothing: no environment variable can make it abort.
//!
//! The points: `extract-before-load` (the pending state is written, the data not),
//! `extract-after-load` (the data is committed, the state not yet), `extract-after-commit`
//! (data and state committed, the run not yet recorded), `load-after-commit` (`socle load`
//! committed, not yet said so).

/// Aborts the process when `SOCLE_FAILPOINT` names `name` (only with the `failpoints`
/// feature; a no-op otherwise).
#[inline]
pub fn hit(name: &str) {
    #[cfg(feature = "failpoints")]
    if std::env::var("SOCLE_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

#[cfg(test)]
mod tests {
    /// A build without the feature goes on past a named point. (`scripts/test.sh` runs
    /// this test in such a build; the crash tests run the other.)
    #[cfg(not(feature = "failpoints"))]
    #[test]
    fn failpoint_is_ignored_without_the_feature() {
        // SAFETY: nextest runs each test in its own process; nothing else reads the
        // environment concurrently.
        unsafe { std::env::set_var("SOCLE_FAILPOINT", "load-after-commit") };
        super::hit("load-after-commit");
    }

    /// With the feature, a point that is not named goes on too.
    #[cfg(feature = "failpoints")]
    #[test]
    fn failpoint_other_names_go_on() {
        // SAFETY: as above.
        unsafe { std::env::set_var("SOCLE_FAILPOINT", "somewhere-else") };
        super::hit("load-after-commit");
    }
}
