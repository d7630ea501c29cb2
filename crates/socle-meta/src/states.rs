//! The typed states and roles the metadata database stores as text: a run's state, a task
//! instance's or an attempt's state, a stream extraction's state, and a user's or token's
//! role. Callers compare and
//! match these enums; the text form exists only here ([`as_str`](RunState::as_str) to
//! store, [`FromStr`] to read back), so a misspelt state is a compile error, not a run
//! that never matches.

use std::fmt;
use std::str::FromStr;

/// Text in the database that names no known state or role (a newer socle wrote it, or a
/// hand edit).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{text}` (one of: {known})")]
pub struct Unknown {
    pub kind: &'static str,
    pub text: String,
    pub known: String,
}

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident, $kind:literal, { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the database and shown to users.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = Unknown;
            fn from_str(s: &str) -> Result<Self, Unknown> {
                let wanted = s.trim().to_ascii_lowercase();
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == wanted)
                    .ok_or_else(|| Unknown {
                        kind: $kind,
                        text: s.to_string(),
                        known: $name::ALL
                            .iter()
                            .map(|v| v.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
            }
        }
    };
}

text_enum!(
    /// A pipeline run's state.
    RunState, "run state", {
        /// Recorded, not started.
        Queued => "queued",
        Running => "running",
        Success => "success",
        Failed => "failed",
    }
);

impl RunState {
    /// `success` or `failed`: the run ended.
    pub fn is_final(self) -> bool {
        matches!(self, RunState::Success | RunState::Failed)
    }
}

text_enum!(
    /// The state of a task in a run, and of one attempt of it.
    TaskState, "task state", {
        Running => "running",
        /// Failed, with another try to come.
        UpForRetry => "up_for_retry",
        Success => "success",
        Failed => "failed",
        /// Not run: a task it depends on failed.
        UpstreamFailed => "upstream_failed",
        /// Not run: its trigger rule said so.
        Skipped => "skipped",
    }
);

impl TaskState {
    /// Whether the task ended (nothing more will happen to it in this run).
    pub fn is_final(self) -> bool {
        !matches!(self, TaskState::Running | TaskState::UpForRetry)
    }

    /// `failed` or `upstream_failed`.
    pub fn is_failure(self) -> bool {
        matches!(self, TaskState::Failed | TaskState::UpstreamFailed)
    }
}

text_enum!(
    /// The state of one stream's extraction.
    StreamState, "stream state", {
        Running => "running",
        Success => "success",
        Failed => "failed",
    }
);

text_enum!(
    /// A model version's state.
    VersionState, "model version state", {
        /// Its number is claimed; the model is being fitted.
        Training => "training",
        /// Its output tables are being written: at most one version of a model at a time.
        Writing => "writing",
        /// Its files are in the lake: it can be used.
        Ready => "ready",
        /// The training failed; the number is not reused.
        Failed => "failed",
    }
);

text_enum!(
    /// What a user or an API token may do; each role includes the ones before it.
    Role, "role", {
        /// Dashboards and the catalog.
        Viewer => "viewer",
        /// + queries, reading all data.
        Analyst => "analyst",
        /// + running, rerunning and backfilling pipelines; SQL that writes.
        Editor => "editor",
        /// + users, tokens, configuration, the audit log.
        Admin => "admin",
    }
);

impl Role {
    /// Whether this role includes `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

/// Reads a stored text column as one of these enums (an unknown value is a decode error
/// naming the column).
pub(crate) fn decode<T: FromStr<Err = Unknown>>(
    row: &sqlx::any::AnyRow,
    column: &str,
) -> Result<T, sqlx::Error> {
    use sqlx::Row;
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|e: Unknown| sqlx::Error::ColumnDecode {
            index: column.to_string(),
            source: Box::new(e),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_unknown_text_says_what_is_known() {
        for s in RunState::ALL {
            assert_eq!(s.as_str().parse::<RunState>().unwrap(), *s);
        }
        for s in TaskState::ALL {
            assert_eq!(s.to_string().parse::<TaskState>().unwrap(), *s);
        }
        assert_eq!("Editor".parse::<Role>().unwrap(), Role::Editor);
        let e = "root".parse::<Role>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown role `root` (one of: viewer, analyst, editor, admin)"
        );
        assert!(Role::Admin.allows(Role::Editor) && !Role::Analyst.allows(Role::Editor));
        assert!(TaskState::UpstreamFailed.is_failure() && !TaskState::UpForRetry.is_final());
        assert_eq!(
            serde_json::to_string(&TaskState::UpstreamFailed).unwrap(),
            "\"upstream_failed\""
        );
    }
}
