//! veil-retention service.
