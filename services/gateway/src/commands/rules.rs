//! The shape of a language's rule table and how its patterns are written.
//!
//! Patterns match the folded text (lowercase, no diacritics, plain apostrophes) and
//! use a small shorthand so that the tables stay readable:
//! - a space matches one or more spaces or commas;
//! - `~N` matches up to N further words (`delete~2 my data` also matches
//!   `delete all of my data`);
//! - `{NAME}` is replaced by the language's fragment `NAME` before anything else.
//!
//! Every pattern is wrapped in word boundaries and compiled without Unicode classes,
//! which keeps the whole table one fast lazy-DFA scan.

use super::CommandKind;

/// One phrase pattern and what it means.
pub(crate) struct Spec {
    pub kind: CommandKind,
    pub confidence: f32,
    /// Whether a negation nearby ("don't delete my data") cancels the match; false
    /// for patterns whose negation is the request itself ("don't use my chats to train").
    pub negatable: bool,
    pub pattern: &'static str,
}

/// A pattern that a nearby negation cancels.
pub(crate) const fn rule(kind: CommandKind, confidence: f32, pattern: &'static str) -> Spec {
    Spec {
        kind,
        confidence,
        negatable: true,
        pattern,
    }
}

/// A pattern that already contains its negation, or where one does not change it.
pub(crate) const fn fixed(kind: CommandKind, confidence: f32, pattern: &'static str) -> Spec {
    Spec {
        kind,
        confidence,
        negatable: false,
        pattern,
    }
}

/// Words that change how a match is read.
pub(crate) struct Cues {
    /// Negation words (a regex alternation, no outer group needed).
    pub negation: &'static str,
    /// Words next to or before a negation that make it about something else
    /// ("I don't know how to delete my data").
    pub neutral: &'static [&'static str],
    /// A question about the process rather than a request ("how do I ...").
    pub question: &'static str,
    /// A negation right after the match, as in verb-second word orders
    /// ("löscht meine Daten nicht"); empty when the language has none.
    pub trailing_negation: &'static str,
    /// Subject pronouns that make a leading negation a statement rather than a
    /// request ("you don't sell my data" against "don't sell my data").
    pub subjects: &'static [&'static str],
    /// Auxiliaries that put the verb right after them in the past ("j'ai supprimé mes
    /// données" reports, "supprimez mes données" asks); they cancel negatable rules.
    pub past_auxiliaries: &'static [&'static str],
    /// Words that, right after a match, show it was about something else ("send me my
    /// data usage", "mes données mobiles").
    pub blocked_after: &'static [&'static str],
    /// Frequent words, to tell the language of a language-neutral match.
    pub stopwords: &'static [&'static str],
}

/// One supported language.
pub(crate) struct Language {
    /// ISO 639-1 code, as returned in `DetectedCommand::language`.
    pub code: &'static str,
    pub fragments: &'static [(&'static str, &'static str)],
    pub rules: &'static [Spec],
    pub cues: Cues,
}

/// Expands fragments and the shorthand into a regex wrapped in word boundaries.
pub(crate) fn expand(pattern: &str, fragments: &[(&str, &str)]) -> String {
    let mut text = pattern.to_owned();
    // Fragments may use other fragments; two passes cover the tables' nesting.
    for _ in 0..2 {
        for (name, value) in fragments {
            text = text.replace(&format!("{{{name}}}"), value);
        }
    }
    let mut out = String::with_capacity(text.len() * 2);
    out.push_str(r"\b(?:");
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            ' ' => out.push_str(r"[\s,]+"),
            '~' => {
                let mut count = String::new();
                while let Some(digit) = chars.next_if(char::is_ascii_digit) {
                    count.push(digit);
                }
                let count = if count.is_empty() { "3" } else { &count };
                out.push_str(&format!(r"(?:[\s,]+[a-z0-9'-]+){{0,{count}}}"));
            }
            _ => out.push(ch),
        }
    }
    out.push_str(r")\b");
    out
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn expands_spaces_fillers_and_fragments() {
        let regex = expand("delete~2 {MY} data", &[("MY", "(?:my|our)")]);
        assert_eq!(
            regex,
            r"\b(?:delete(?:[\s,]+[a-z0-9'-]+){0,2}[\s,]+(?:my|our)[\s,]+data)\b"
        );
    }
}
