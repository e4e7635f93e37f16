//! Dates of birth: a date (numeric or with a month name in en, de, fr, es, nl)
//! scores high only with birth context ("born", "DOB", "geboren", "né le",
//! "fecha de nacimiento", "geboortedatum"); a bare date stays below thresholds.

use super::{isolated, neighbourhoods};
use crate::context;
use crate::entity::{BuiltIn, EntityType};
use crate::recognizer::{Candidate, Input, Recognizer};
use crate::text::DIGIT;
use aho_corasick::AhoCorasick;
use regex::Regex;

pub(crate) struct DateOfBirthRecognizer {
    numeric: Regex,
    textual: Regex,
    /// Month names: a window without one holds no textual date.
    months: AhoCorasick,
}

const NAME: &str = "DateOfBirthRecognizer";
const WITH_CONTEXT: f32 = 0.85;
const WITHOUT_CONTEXT: f32 = 0.15;

const MONTHS: &[(&str, u32)] = &[
    ("january", 1),
    ("jan", 1),
    ("januar", 1),
    ("jänner", 1),
    ("janvier", 1),
    ("enero", 1),
    ("januari", 1),
    ("february", 2),
    ("feb", 2),
    ("februar", 2),
    ("février", 2),
    ("fevrier", 2),
    ("febrero", 2),
    ("februari", 2),
    ("march", 3),
    ("mar", 3),
    ("märz", 3),
    ("maerz", 3),
    ("mars", 3),
    ("marzo", 3),
    ("maart", 3),
    ("april", 4),
    ("apr", 4),
    ("avril", 4),
    ("abril", 4),
    ("may", 5),
    ("mai", 5),
    ("mayo", 5),
    ("mei", 5),
    ("june", 6),
    ("jun", 6),
    ("juni", 6),
    ("juin", 6),
    ("junio", 6),
    ("july", 7),
    ("jul", 7),
    ("juli", 7),
    ("juillet", 7),
    ("julio", 7),
    ("august", 8),
    ("aug", 8),
    ("août", 8),
    ("aout", 8),
    ("agosto", 8),
    ("augustus", 8),
    ("september", 9),
    ("sep", 9),
    ("sept", 9),
    ("septembre", 9),
    ("septiembre", 9),
    ("setiembre", 9),
    ("october", 10),
    ("oct", 10),
    ("oktober", 10),
    ("octobre", 10),
    ("octubre", 10),
    ("november", 11),
    ("nov", 11),
    ("novembre", 11),
    ("noviembre", 11),
    ("december", 12),
    ("dec", 12),
    ("dezember", 12),
    ("décembre", 12),
    ("decembre", 12),
    ("diciembre", 12),
];

fn month_number(word: &str) -> Option<u32> {
    let lower = word.trim_end_matches('.').to_lowercase();
    MONTHS.iter().find(|(m, _)| *m == lower).map(|(_, n)| *n)
}

fn plausible(day: u32, month: u32, year: u32) -> bool {
    let year_ok = year < 100 || (1900..=2100).contains(&year);
    (1..=12).contains(&month) && (1..=31).contains(&day) && year_ok
}

impl DateOfBirthRecognizer {
    pub(crate) fn new() -> Self {
        let mut names: Vec<&str> = MONTHS.iter().map(|(m, _)| *m).collect();
        names.sort_by_key(|m| std::cmp::Reverse(m.len()));
        let alternation = names.join("|");
        let textual = format!(
            r"(?i)\b(?:(?P<d1>\d{{1,2}})(?:st|nd|rd|th|er|\.)?\s+(?:of\s+|de\s+)?(?P<m1>{alternation})\.?,?\s+(?:de\s+)?(?P<y1>\d{{4}})|(?P<m2>{alternation})\.?\s+(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y2>\d{{4}}))\b"
        );
        let months = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(MONTHS.iter().map(|(m, _)| *m))
            .expect("built-in month names compile");
        DateOfBirthRecognizer {
            months,
            numeric: Regex::new(r"(?-u)\b(?:\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})|\d{4}-\d{1,2}-\d{1,2}|\d{4}/\d{1,2}/\d{1,2})\b")
                .expect("built-in pattern compiles"),
            textual: Regex::new(&textual).expect("built-in pattern compiles"),
        }
    }

    fn numeric_ok(s: &str) -> bool {
        let mut parts = [0u32; 3];
        let mut lens = [0usize; 3];
        for (i, p) in s.split(['.', '/', '-']).enumerate().take(3) {
            parts[i] = p.parse().unwrap_or(0);
            lens[i] = p.len();
        }
        if lens[0] == 4 {
            plausible(parts[2], parts[1], parts[0])
        } else {
            // Day-month-year or month-day-year.
            plausible(parts[0], parts[1], parts[2]) || plausible(parts[1], parts[0], parts[2])
        }
    }
}

impl Recognizer for DateOfBirthRecognizer {
    fn name(&self) -> &str {
        NAME
    }

    fn entities(&self) -> Vec<EntityType> {
        vec![BuiltIn::DateOfBirth.into()]
    }

    fn recognize(&self, input: &Input<'_>, out: &mut Vec<Candidate>) {
        if !input.wants(BuiltIn::DateOfBirth) || input.flags & DIGIT == 0 {
            return;
        }
        let text = input.text;
        let words = context::words_for(BuiltIn::DateOfBirth);
        let push = |s: usize, e: usize, pattern: &'static str, out: &mut Vec<Candidate>| {
            if out
                .last()
                .is_some_and(|c: &Candidate| c.entity == BuiltIn::DateOfBirth.into() && c.end > s)
            {
                return;
            }
            let found = context::find(text, input.tokens, s, e, words);
            let score = if found.is_empty() {
                WITHOUT_CONTEXT
            } else {
                WITH_CONTEXT
            };
            let mut c = Candidate::builtin(BuiltIn::DateOfBirth, s, e, score, NAME, pattern);
            c.apply_context = false;
            c.context_words = found;
            out.push(c);
        };
        for (ws, we) in neighbourhoods(input, 3, 4, |t| t.has(DIGIT)) {
            let window = &text[ws..we];
            for m in self.numeric.find_iter(window) {
                let (s, e) = (ws + m.start(), ws + m.end());
                if Self::numeric_ok(m.as_str()) && isolated(text, s, e) {
                    push(s, e, "numeric_date", out);
                }
            }
            // A month name as a whole word, then a full match, before the slower captures.
            let has_month = self.months.find_iter(window).any(|m| {
                !window[..m.start()]
                    .chars()
                    .next_back()
                    .is_some_and(char::is_alphabetic)
                    && !window[m.end()..]
                        .chars()
                        .next()
                        .is_some_and(char::is_alphabetic)
            });
            if !has_month || !self.textual.is_match(window) {
                continue;
            }
            for caps in self.textual.captures_iter(window) {
                let Some(whole) = caps.get(0) else { continue };
                let (day, month, year) = match (caps.name("d1"), caps.name("m1"), caps.name("y1")) {
                    (Some(d), Some(m), Some(y)) => (d, m, y),
                    _ => match (caps.name("d2"), caps.name("m2"), caps.name("y2")) {
                        (Some(d), Some(m), Some(y)) => (d, m, y),
                        _ => continue,
                    },
                };
                let (Ok(day), Some(month), Ok(year)) = (
                    day.as_str().parse(),
                    month_number(month.as_str()),
                    year.as_str().parse(),
                ) else {
                    continue;
                };
                if plausible(day, month, year) {
                    push(ws + whole.start(), ws + whole.end(), "textual_date", out);
                }
            }
        }
    }
}
