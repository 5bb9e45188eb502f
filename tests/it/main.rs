//! The integration tests: one binary, one module per part.

mod sim;
