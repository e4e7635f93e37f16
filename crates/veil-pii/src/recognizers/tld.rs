//! Top-level domains (from the Public Suffix List, embedded at build time).

use std::collections::HashSet;
use std::sync::LazyLock;

static TLDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../data/tlds.txt")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
});

/// Whether `label` (any case) is a top-level domain.
pub(crate) fn is_tld(label: &str) -> bool {
    if label.len() < 2 || label.len() > 63 {
        return false;
    }
    let mut buf = [0u8; 63];
    for (i, b) in label.bytes().enumerate() {
        if !(b.is_ascii_alphanumeric() || b == b'-') {
            return false;
        }
        buf[i] = b.to_ascii_lowercase();
    }
    std::str::from_utf8(&buf[..label.len()]).is_ok_and(|l| TLDS.contains(l))
}

/// Whether `host` is a plausible domain name: dot-separated labels of letters,
/// digits and hyphens, a known top-level domain, and at least one label before it
/// other than `www`.
pub(crate) fn is_domain(host: &str) -> bool {
    if host.len() > 253 || host.starts_with('.') || host.ends_with('.') {
        return false;
    }
    let mut labels = 0;
    let mut meaningful = 0;
    let mut last = "";
    for label in host.split('.') {
        if label.is_empty()
            || label.len() > 63
            || label.starts_with('-')
            || label.ends_with('-')
            || !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return false;
        }
        labels += 1;
        if !label.eq_ignore_ascii_case("www") {
            meaningful += 1;
        }
        last = label;
    }
    // The top-level label itself is "meaningful" but does not count as a host part.
    labels >= 2 && meaningful >= 2 && is_tld(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlds() {
        assert!(is_tld("com") && is_tld("COM") && is_tld("xn--p1ai") && is_tld("vlaanderen"));
        assert!(!is_tld("notatld") && !is_tld("c"));
    }

    #[test]
    fn domains() {
        assert!(is_domain("microsoft.com"));
        assert!(is_domain("google.co.il"));
        assert!(is_domain("www.microsoft.com"));
        assert!(!is_domain("www.microsoft"));
        assert!(!is_domain("microsoft"));
        assert!(!is_domain("presidio."));
        assert!(!is_domain("a..com"));
    }
}
