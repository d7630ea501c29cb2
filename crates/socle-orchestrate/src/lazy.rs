//! The warehouse, opened when a task first needs it: the scheduler daemon waits for hours
//! between runs and should stay small. It lives in the application layer
//! ([`socle_app::LazyWarehouse`]), which every layer opens the project's parts through.

pub use socle_app::LazyWarehouse;
