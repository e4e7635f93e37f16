//! Name lists (gazetteers) built from public statistical name lists, embedded in
//! the binary and loaded once into a hash map keyed by the folded name.

use crate::lang::Language;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, LazyLock};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Ambiguity bit: the word is mostly not a person (month, place, brand).
pub const NOT_A_PERSON: u8 = 1 << 5;

/// What the lists say about a name. Masks hold one bit per [`Language`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NameInfo {
    /// Languages whose lists have it as a first name.
    pub first: u8,
    /// Languages whose lists have it as a surname.
    pub last: u8,
    /// Languages in which it is also an ordinary word, plus [`NOT_A_PERSON`].
    pub ambiguous: u8,
    /// Frequency class: 0 among the top 1,000 of a list, 1 top 10,000, 2 rarer.
    pub rank: u8,
}

/// The keys are already hashes, so the map does not hash them again.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _bytes: &[u8]) {}
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// FNV-1a as a `Hasher`, for small sets of short words.
#[derive(Default)]
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let seed = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        self.0 = fnv1a_from(seed, bytes);
    }
}

fn fnv1a_from(mut hash: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// FNV-1a, 64 bits: fast on short keys and stable across platforms (wasm too).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Lower-cases a name and strips diacritics into `buf` (as scripts/gen-names does),
/// so "Müller", "MULLER" and "muller" meet. Returns `None` when it does not fit.
pub fn fold_name<'b>(name: &str, buf: &'b mut [u8]) -> Option<&'b str> {
    let mut n = 0;
    let mut put = |c: char, buf: &mut [u8]| -> Option<()> {
        let len = c.len_utf8();
        if n + len > buf.len() {
            return None;
        }
        c.encode_utf8(&mut buf[n..n + len]);
        n += len;
        Some(())
    };
    for c in name.chars() {
        if c.is_ascii() {
            put(c.to_ascii_lowercase(), buf)?;
            continue;
        }
        for lower in c.to_lowercase() {
            match lower {
                'ß' => {
                    put('s', buf)?;
                    put('s', buf)?;
                }
                'æ' => {
                    put('a', buf)?;
                    put('e', buf)?;
                }
                'œ' => {
                    put('o', buf)?;
                    put('e', buf)?;
                }
                'ø' => put('o', buf)?,
                'đ' => put('d', buf)?,
                'ł' => put('l', buf)?,
                '\u{2019}' => put('\'', buf)?,
                other => {
                    for d in std::iter::once(other).nfkd() {
                        if !is_combining_mark(d) {
                            put(d, buf)?;
                        }
                    }
                }
            }
        }
    }
    std::str::from_utf8(&buf[..n]).ok()
}

/// First names and surnames per language, with ambiguity and frequency.
pub struct Gazetteer {
    names: HashMap<u64, NameInfo, BuildHasherDefault<PassThrough>>,
}

static EMBEDDED: LazyLock<Arc<Gazetteer>> = LazyLock::new(|| {
    Arc::new(Gazetteer::parse(
        &[
            (Language::En, include_str!("../../data/names/en.tsv")),
            (Language::De, include_str!("../../data/names/de.tsv")),
            (Language::Fr, include_str!("../../data/names/fr.tsv")),
            (Language::Es, include_str!("../../data/names/es.tsv")),
            (Language::Nl, include_str!("../../data/names/nl.tsv")),
        ],
        include_str!("../../data/names/ambiguous.tsv"),
    ))
});

impl Gazetteer {
    /// The lists shipped with the crate (see `data/names/LICENSES.md`), parsed once
    /// per process and shared.
    pub fn embedded() -> Arc<Gazetteer> {
        EMBEDDED.clone()
    }

    /// Parses name lists: per language, lines `name<TAB>kinds<TAB>rank` where kinds
    /// holds `f` (first name) and/or `l` (surname); and ambiguity lines
    /// `name<TAB>mask`. Lines starting with `#` and malformed lines are skipped.
    pub fn parse(lists: &[(Language, &str)], ambiguous: &str) -> Gazetteer {
        let capacity = lists.iter().map(|(_, t)| t.len() / 12).sum();
        let mut names: HashMap<u64, NameInfo, BuildHasherDefault<PassThrough>> =
            HashMap::with_capacity_and_hasher(capacity, BuildHasherDefault::default());
        let mut buf = [0u8; 128];
        for (lang, text) in lists {
            for line in text.lines().filter(|l| !l.starts_with('#')) {
                let mut parts = line.split('\t');
                let (Some(name), Some(kinds), rank) = (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                let Some(key) = fold_name(name, &mut buf) else {
                    continue;
                };
                let entry = names.entry(fnv1a(key.as_bytes())).or_insert(NameInfo {
                    rank: 2,
                    ..NameInfo::default()
                });
                if kinds.contains('f') {
                    entry.first |= lang.bit();
                }
                if kinds.contains('l') {
                    entry.last |= lang.bit();
                }
                let rank = rank.and_then(|r| r.trim().parse().ok()).unwrap_or(2u8);
                entry.rank = entry.rank.min(rank);
            }
        }
        for line in ambiguous.lines().filter(|l| !l.starts_with('#')) {
            let mut parts = line.split('\t');
            let (Some(name), Some(mask)) = (parts.next(), parts.next()) else {
                continue;
            };
            let (Some(key), Ok(mask)) = (fold_name(name, &mut buf), mask.trim().parse::<u8>())
            else {
                continue;
            };
            let entry = names.entry(fnv1a(key.as_bytes())).or_insert(NameInfo {
                rank: 2,
                ..NameInfo::default()
            });
            entry.ambiguous |= mask;
        }
        Gazetteer { names }
    }

    /// Looks a word up (any case, with or without diacritics).
    pub fn lookup(&self, word: &str) -> Option<NameInfo> {
        let mut buf = [0u8; 96];
        let key = fold_name(word, &mut buf)?;
        self.names.get(&fnv1a(key.as_bytes())).copied()
    }

    /// Number of distinct names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no names.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_matches_the_generator() {
        let mut buf = [0u8; 32];
        assert_eq!(fold_name("Müller", &mut buf), Some("muller"));
        let mut buf = [0u8; 32];
        assert_eq!(fold_name("Straße", &mut buf), Some("strasse"));
        let mut buf = [0u8; 32];
        assert_eq!(fold_name("Élodie", &mut buf), Some("elodie"));
        let mut buf = [0u8; 32];
        assert_eq!(fold_name("O\u{2019}Brien", &mut buf), Some("o'brien"));
    }

    #[test]
    fn embedded_lists_load() {
        let g = Gazetteer::embedded();
        assert!(g.len() > 50_000);
        let anna = g.lookup("Anna").expect("a common first name");
        assert!(anna.first & Language::En.bit() != 0);
        let smith = g.lookup("SMITH").expect("a common surname");
        assert!(smith.last != 0 && smith.rank == 0);
        let may = g.lookup("May").expect("listed");
        assert!(may.ambiguous & NOT_A_PERSON != 0);
        assert!(g.lookup("Qwxzyv").is_none());
    }
}
