//! twslake: Interactive Brokers market data in a partitioned Parquet lake.
#![warn(missing_docs)]

pub mod calendar;
pub mod datasets;
pub mod error;
pub mod lake;
pub mod query;

pub use error::{Error, Result};
pub use lake::Lake;
pub mod cli;
