//! twslake: Interactive Brokers market data in a partitioned Parquet lake.
//!
//! # Layout
//! - [`calendar`]: the NYSE trading calendar.
//! - [`sim`]: the simulated TWS gateway the real `ibapi` client talks to.
#![warn(missing_docs)]

pub mod calendar;
pub mod datasets;
pub mod error;
pub mod lake;
pub mod query;
pub mod sim;

pub use error::{Error, Result};
pub use lake::Lake;
pub mod cli;
