//! The algorithms, over plain Rust values ([`Matrix`], slices), independent of Arrow, the
//! warehouse and the model specs: each is small, tested against known answers, and
//! deterministic given its seed ([`Rng`]).

pub mod anomaly;
pub mod boost;
pub mod forecast;
pub mod fpgrowth;
pub mod kmeans;
pub mod lbfgs;
pub mod linear;
pub mod logistic;
pub mod matrix;
pub mod metrics;
pub mod recommend;
pub mod rng;
pub mod rules;
pub mod validate;

pub use matrix::{Matrix, dot};
pub use rng::Rng;
