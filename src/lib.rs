//! twslake: Interactive Brokers market data in a partitioned Parquet lake.
#![warn(missing_docs)]

pub mod calendar;
