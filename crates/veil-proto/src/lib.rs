//! veil-proto.
