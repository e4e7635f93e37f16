//! Phone number validation on libphonenumber's metadata (as shipped in the
//! `phonenumber` crate), with the patterns compiled once into our own anchored
//! regular expressions. The crate's own parser recompiles and locks a shared
//! regex cache per call (tens of microseconds); this takes about a microsecond
//! and allocates nothing for national numbers.

use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use regex::Regex;
use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock};

/// One region's compiled rules.
struct Region {
    /// National prefix to strip (`0`, `1`, Brazil's carrier codes ...), anchored.
    prefix: Option<Regex>,
    /// Rewrite after the prefix match (`$2`), when the region has one.
    transform: Option<String>,
    /// The general pattern, anchored on both ends.
    general: Regex,
    /// Any specific type (fixed line, mobile, toll free, VoIP ...), anchored.
    typed: Regex,
    /// Possible lengths of national significant numbers.
    lengths: Vec<u16>,
}

struct Index {
    /// Region id -> position in `regions`.
    by_id: HashMap<String, usize>,
    /// Country calling code -> positions (main region first).
    by_code: HashMap<u16, Vec<usize>>,
    /// Region ids and their calling codes.
    regions: Vec<(&'static Metadata, u16)>,
    compiled: Vec<OnceLock<Option<Region>>>,
}

static INDEX: LazyLock<Index> = LazyLock::new(|| {
    let mut regions: Vec<(&'static Metadata, u16)> =
        DATABASE.iter().map(|m| (m, m.country_code())).collect();
    regions.sort_by(|a, b| a.0.id().cmp(b.0.id()));
    let mut by_id = HashMap::new();
    let mut by_code: HashMap<u16, Vec<usize>> = HashMap::new();
    for (i, (m, code)) in regions.iter().enumerate() {
        by_id.insert(m.id().to_owned(), i);
        let entry = by_code.entry(*code).or_default();
        if m.is_main_country_for_code() {
            entry.insert(0, i);
        } else {
            entry.push(i);
        }
    }
    let compiled = (0..regions.len()).map(|_| OnceLock::new()).collect();
    Index {
        by_id,
        by_code,
        regions,
        compiled,
    }
});

/// libphonenumber's patterns are laid out with whitespace (read in `x` mode).
fn anchored(pattern: &str) -> Option<Regex> {
    Regex::new(&format!("(?x)^(?:{pattern})$")).ok()
}

fn compile(meta: &Metadata) -> Option<Region> {
    let d = meta.descriptors();
    let general = anchored(d.general().national_number().as_str())?;
    let typed: Vec<&Descriptor> = [
        d.fixed_line(),
        d.mobile(),
        d.toll_free(),
        d.premium_rate(),
        d.shared_cost(),
        d.personal_number(),
        d.voip(),
        d.pager(),
        d.uan(),
        d.voicemail(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let alternation = typed
        .iter()
        .map(|t| format!("(?:{})", t.national_number().as_str()))
        .collect::<Vec<_>>()
        .join("|");
    let typed = anchored(if alternation.is_empty() {
        "$^"
    } else {
        &alternation
    })?;
    let prefix = meta
        .national_prefix_for_parsing()
        .map(|r| r.as_str().to_owned())
        .or_else(|| meta.national_prefix().map(regex::escape))
        .and_then(|p| Regex::new(&format!("(?x)^(?:{p})")).ok());
    let transform = meta.national_prefix_transform_rule().map(|t| {
        // libphonenumber writes "$1"; regex's expand wants "${1}" before digits.
        let mut out = String::new();
        let mut chars = t.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                out.push_str("${");
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    out.push(d);
                    chars.next();
                }
                out.push('}');
            } else {
                out.push(c);
            }
        }
        out
    });
    Some(Region {
        prefix,
        transform,
        general,
        typed,
        lengths: d.general().possible_length().to_vec(),
    })
}

fn region(i: usize) -> Option<&'static Region> {
    let index = &*INDEX;
    index.compiled[i]
        .get_or_init(|| compile(index.regions[i].0))
        .as_ref()
}

impl Region {
    fn valid(&self, nsn: &str) -> bool {
        (self.lengths.is_empty() || self.lengths.contains(&(nsn.len() as u16)))
            && self.general.is_match(nsn)
            && self.typed.is_match(nsn)
    }

    /// The national significant number after the national prefix, when stripping
    /// it leaves a number that still fits (libphonenumber's rule).
    fn strip<'n>(&self, digits: &'n str, buf: &'n mut String) -> Option<&'n str> {
        let prefix = self.prefix.as_ref()?;
        let caps = prefix.captures(digits)?;
        let whole = caps.get(0)?;
        let rest = &digits[whole.end()..];
        match (
            &self.transform,
            caps.len() > 1 && caps.get(caps.len() - 1).is_some(),
        ) {
            (Some(rule), true) => {
                buf.clear();
                caps.expand(rule, buf);
                buf.push_str(rest);
                Some(buf.as_str())
            }
            _ => (!rest.is_empty()).then_some(rest),
        }
    }

    fn valid_national(&self, digits: &str) -> bool {
        let mut buf = String::new();
        if let Some(stripped) = self.strip(digits, &mut buf)
            && self.valid(stripped)
        {
            return true;
        }
        self.valid(digits)
    }
}

/// Whether `digits` (national significant number, no prefix) is valid for any
/// region with calling code `code`.
fn valid_for_code(code: u16, nsn: &str) -> bool {
    INDEX.by_code.get(&code).is_some_and(|list| {
        list.iter()
            .any(|&i| region(i).is_some_and(|r| r.valid(nsn) || r.valid_national(nsn)))
    })
}

/// Validates a number written in international form: `digits` follow the `+`.
pub(crate) fn valid_international(digits: &str) -> bool {
    (1..=3).any(|len| {
        digits.len() > len + 3
            && digits[..len].parse::<u16>().is_ok_and(|code| {
                INDEX.by_code.contains_key(&code) && valid_for_code(code, &digits[len..])
            })
    })
}

/// Validates a number written in national form for a region (ISO code), also
/// accepting a leading country code without `+` ("49 30 1234567").
pub(crate) fn valid_national(region_id: &str, digits: &str) -> bool {
    let Some(&i) = INDEX.by_id.get(region_id) else {
        return false;
    };
    let code = INDEX.regions[i].1;
    let Some(r) = region(i) else { return false };
    if r.valid_national(digits) {
        return true;
    }
    // Other regions sharing the calling code (Canada for the US, ...).
    if INDEX.by_code.get(&code).is_some_and(|list| {
        list.iter()
            .any(|&j| j != i && region(j).is_some_and(|o| o.valid_national(digits)))
    }) {
        return true;
    }
    let cc = code.to_string();
    digits.len() > cc.len() + 6
        && digits.starts_with(&cc)
        && valid_for_code(code, &digits[cc.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert!(valid_international("14155550132"));
        assert!(valid_international("442079460958"));
        assert!(valid_international("4930123456"));
        assert!(!valid_international("999123"));
        assert!(valid_national("US", "4155550132"));
        assert!(valid_national("DE", "0301234567"));
        assert!(valid_national("FR", "0142685300"));
        assert!(valid_national("GB", "02079460958"));
        assert!(!valid_national("GB", "0301234"));
        assert!(valid_national("BR", "11984565666"));
        assert!(valid_national("IN", "914155550132"));
    }
}
