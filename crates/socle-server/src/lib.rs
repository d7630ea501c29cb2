//! socle's server layer: [`auth`] (roles, password hashing, API tokens) and [`http`]
//! (the HTTP server `socle serve --port` runs beside the scheduler: sign-in, role checks,
//! audit log, metrics). The catalog and query API and the web UI build on them.

pub mod auth;
pub mod http;
