//! veil-consent service.
