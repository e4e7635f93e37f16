//! veil-testkit.
