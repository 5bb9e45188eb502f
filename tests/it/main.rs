//! twslake's integration tests: one binary, one module per part.

mod house;
mod ingest;
mod lake;
mod live;
mod pricing;
mod research;
mod sim;
mod support;
