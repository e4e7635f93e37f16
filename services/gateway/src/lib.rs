//! veil-gateway service.
