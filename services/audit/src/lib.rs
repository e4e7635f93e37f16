//! veil-audit service.
