//! socle's server layer. So far: [`auth`], the principals every surface will check —
//! local users with argon2id password hashes, roles, API tokens. The HTTP API, web UI and
//! metrics build on it.

pub mod auth;
