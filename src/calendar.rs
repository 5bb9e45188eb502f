//! The NYSE trading calendar (placeholder until written).
