//! `classification`: the same learners as `regression` for class labels (boosted trees
//! with log loss, or logistic regression); see [`super::regression`].

pub use super::regression::Classification;
