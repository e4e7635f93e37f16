//! veil-vault service.
