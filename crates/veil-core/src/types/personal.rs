//! A wrapper for personal data that never reaches a log.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// Personal data: `Debug` and `Display` print `[redacted]`, the value is wiped on drop,
/// and reading it takes an explicit [`Personal::expose`].
///
/// Serializes transparently, so wrapping a field does not change a wire format.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Personal<T: Zeroize>(T);

impl<T: Zeroize> Personal<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// Reads the value; every call site is a place personal data is handled.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Mutable access to the value, e.g. to normalize it in place.
    pub fn expose_mut(&mut self) -> &mut T {
        &mut self.0
    }

    /// Takes the value out, leaving a wiped default behind.
    pub fn into_inner(mut self) -> T
    where
        T: Default,
    {
        std::mem::take(&mut self.0)
    }
}

impl<T: Zeroize> From<T> for Personal<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T: Zeroize> fmt::Debug for Personal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Personal([redacted])")
    }
}

impl<T: Zeroize> fmt::Display for Personal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T: Zeroize> Drop for Personal<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn personal_hides_value_in_debug_and_display() {
        let email = Personal::new(String::from("alice@example.com"));
        assert_eq!(format!("{email:?}"), "Personal([redacted])");
        assert_eq!(format!("{email}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&email)), "Some(Personal([redacted]))");
        assert_eq!(email.expose(), "alice@example.com");
        assert_eq!(
            serde_json::to_string(&email).unwrap(),
            "\"alice@example.com\""
        );
        let back: Personal<String> = serde_json::from_str("\"bob\"").unwrap();
        assert_eq!(back.into_inner(), "bob");
    }
}
