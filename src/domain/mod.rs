//! The ground floor: the vocabulary every other part of twslake speaks — symbols, bar series,
//! security types and option rights, windows of trading dates, IB's message codes. It depends on
//! nothing of twslake's but the error type (and the calendar, for trading days), so the datasets,
//! the lake, the source and the simulator can all stand on it without standing on each other.

pub mod codes;
pub mod contract;
pub mod series;
pub mod symbol;
pub mod window;

pub use contract::{ExerciseStyle, Right, SecType};
pub use series::{BarSize, Series, WhatToShow};
pub use symbol::Symbol;
pub use window::{DateWindow, MissingWindow};
