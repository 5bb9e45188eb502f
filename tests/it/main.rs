//! twslake's integration tests: one binary, one module per part.

mod cli_fuzz;
mod cli_person;
mod cli_scope;
mod edges;
mod house;
mod ingest;
mod lake;
mod live;
mod pricing;
mod report;
mod research;
mod run;
mod sim;
mod support;
