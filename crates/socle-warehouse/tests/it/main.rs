//! Warehouse integration tests: real Delta tables on a local lake (and on an S3-compatible
//! server on loopback), read back by DataFusion and by Python's `deltalake`.

mod common;
mod load;
mod python;
mod s3;
mod sql;
