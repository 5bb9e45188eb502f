//! twslake's integration tests: one binary, one module per part.

mod lake;
mod research;
mod support;
