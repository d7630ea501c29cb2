//! socle's server layer: [`auth`] (roles, password hashing, API tokens) and [`http`] (the
//! HTTP server `socle serve --port` runs beside the scheduler: sign-in, role checks, audit
//! log, metrics, the JSON API over the catalog, queries and pipelines, and the web UI).

pub mod auth;
pub mod http;
