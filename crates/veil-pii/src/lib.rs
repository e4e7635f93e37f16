//! PII detection and anonymization.
