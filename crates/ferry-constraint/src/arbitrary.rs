//! Random constraints.
