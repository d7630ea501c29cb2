//! End-to-end tests of the `socle` binary, run as a user runs it.

mod alerts;
mod common;
mod crash;
mod dbt;
mod dbt_compat;
mod docs;
mod example;
mod extract_files;
mod extract_rest;
mod extract_scrape;
mod extract_sql;
mod pipelines;
mod project;
mod scheduler;
mod secrets;
mod server;
mod server_api;
mod server_processes;
mod server_ui;
mod sql;
mod templates;
mod users;
