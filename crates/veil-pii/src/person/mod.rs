//! PERSON without a downloaded model: name lists (first names and surnames from
//! public statistics, per language), context cues, capitalization, and a stop-list
//! of names that are also ordinary words. Scores follow simple, explainable rules;
//! an ML NER backend can replace or complement this through [`crate::Recognizer`].

mod cues;
mod gazetteer;

pub use gazetteer::{Gazetteer, NameInfo};

use crate::entity::{BuiltIn, EntityType};
use crate::finding::Label;
use crate::lang::{LangSet, Language};
use crate::recognizer::{Candidate, Input, Recognizer};
use crate::text::{AFTER_NEWLINE, ALPHA, CAPITALIZED, DIGIT, Token, fold_into};
use cues::{Cue, PARTICLES, classify, may_end_cue};
use gazetteer::NOT_A_PERSON;
use std::sync::Arc;

const NAME: &str = "PersonRecognizer";
const MAX_NAME_TOKENS: usize = 4;
/// Tokens on each side of a name whose function words tell the language.
const LANGUAGE_WINDOW: usize = 12;

/// Finds person names with the gazetteer and cues.
pub struct PersonRecognizer {
    gazetteer: Arc<Gazetteer>,
}

impl PersonRecognizer {
    /// A recognizer over the given name lists.
    pub fn new(gazetteer: Arc<Gazetteer>) -> Self {
        PersonRecognizer { gazetteer }
    }
}

/// The name-like part of a token: letters with inner hyphens or apostrophes,
/// without surrounding punctuation or a possessive "'s".
#[derive(Clone, Copy)]
struct Core {
    start: usize,
    end: usize,
    /// Punctuation after the word ends the name (",", ".", ")").
    closed: bool,
}

fn core(text: &str, tok: &Token) -> Option<Core> {
    let s = tok.text(text);
    if s.starts_with(['@', '#']) {
        return None;
    }
    let lead = s.len() - s.trim_start_matches(|c: char| !c.is_alphabetic()).len();
    let mut body = &s[lead..];
    let trimmed = body.trim_end_matches(|c: char| !c.is_alphabetic());
    let closed = trimmed.len() < body.len();
    body = trimmed;
    for suffix in ["'s", "\u{2019}s"] {
        if body.len() > suffix.len() + 1 && body.ends_with(suffix) {
            body = &body[..body.len() - suffix.len()];
        }
    }
    if body.chars().count() < 2
        || !body
            .chars()
            .all(|c| c.is_alphabetic() || c == '-' || c == '\'' || c == '\u{2019}')
    {
        return None;
    }
    // A leading character that is not a quote or bracket ("x=John") is not a name start.
    if lead > 0
        && !s[..lead].chars().all(|c| {
            matches!(
                c,
                '"' | '\'' | '(' | '[' | '«' | '“' | '‘' | '*' | '_' | '-'
            )
        })
    {
        return None;
    }
    Some(Core {
        start: tok.start + lead,
        end: tok.start + lead + body.len(),
        closed,
    })
}

/// Whether a token starts a sentence (so its capital letter says nothing).
fn sentence_initial(text: &str, tokens: &[Token], i: usize) -> bool {
    if i == 0 || tokens[i].has(AFTER_NEWLINE) {
        return true;
    }
    let prev = tokens[i - 1].text(text);
    prev.ends_with([
        '.', '!', '?', ':', ';', '"', '\u{201C}', '\u{2014}', '-', '*', '>',
    ]) || prev.chars().all(|c| !c.is_alphanumeric())
}

/// The languages a text is likely written in, from its most frequent function
/// words (within the hinted languages). Ambiguity ("Chris" is a Dutch word, "Rose"
/// a German noun) then only counts in those languages. No evidence: the hints.
fn likely_languages(text: &str, tokens: &[Token], hints: LangSet) -> (LangSet, bool) {
    let (en, de, fr, es, nl) = (
        Language::En.bit(),
        Language::De.bit(),
        Language::Fr.bit(),
        Language::Es.bit(),
        Language::Nl.bit(),
    );
    let mut counts = [0u32; 5];
    for tok in tokens {
        let w = tok.text(text).trim_matches(|c: char| !c.is_alphabetic());
        if w.is_empty() || w.len() > 7 {
            continue;
        }
        let mut buf = [0u8; 16];
        let bits = match fold_into(w, &mut buf) {
            Some(
                "the" | "and" | "is" | "you" | "to" | "of" | "my" | "i" | "for" | "it" | "with"
                | "this" | "that" | "are" | "can" | "please" | "thanks" | "your" | "me" | "was"
                | "have" | "will",
            ) => en,
            Some(
                "der" | "die" | "das" | "und" | "ist" | "ich" | "nicht" | "mit" | "ein" | "eine"
                | "dem" | "sie" | "wir" | "auf" | "für" | "bitte" | "danke" | "meine" | "mein"
                | "habe" | "zu" | "von" | "bei",
            ) => de,
            Some(
                "le" | "les" | "et" | "est" | "vous" | "des" | "une" | "pour" | "pas" | "avec"
                | "mon" | "ma" | "merci" | "bonjour" | "qui" | "au",
            ) => fr,
            Some(
                "el" | "los" | "las" | "y" | "es" | "yo" | "una" | "para" | "con" | "mi"
                | "gracias" | "hola" | "por" | "del" | "tengo",
            ) => es,
            Some(
                "het" | "een" | "ik" | "met" | "voor" | "mijn" | "niet" | "dat" | "bedankt" | "hoi"
                | "graag" | "op" | "naam",
            ) => nl,
            Some("de") => de | fr | es | nl,
            Some("je") => fr | nl,
            Some("la" | "que" | "un") => fr | es,
            Some("en") => es | nl | fr,
            Some("in") => en | de | nl,
            Some("van") => nl,
            Some("den") => de | nl,
            _ => 0,
        };
        for (k, c) in counts.iter_mut().enumerate() {
            if bits & (1 << k) != 0 {
                *c += 1;
            }
        }
    }
    let top = counts
        .iter()
        .enumerate()
        .filter(|(k, _)| hints.0 & (1 << k) != 0)
        .map(|(_, c)| *c)
        .max()
        .unwrap_or(0);
    if top == 0 {
        return (hints, false);
    }
    let mut likely = 0u8;
    for (k, c) in counts.iter().enumerate() {
        if hints.0 & (1 << k) != 0 && 2 * c >= top {
            likely |= 1 << k;
        }
    }
    (LangSet(likely), true)
}

struct Ctx<'a> {
    text: &'a str,
    tokens: &'a [Token],
    langs: LangSet,
}

impl Ctx<'_> {
    /// The likely languages around token `i` (a dozen tokens on each side) and
    /// whether they rest on evidence. Local, so that a stream, which sees only a
    /// window of the text, judges a name as one-shot analysis does.
    fn likely_near(&self, i: usize) -> (LangSet, bool) {
        // Mostly before: a stream holds back only a little text after a name.
        let window = &self.tokens
            [i.saturating_sub(LANGUAGE_WINDOW)..(i + LANGUAGE_WINDOW / 3).min(self.tokens.len())];
        likely_languages(self.text, window, self.langs)
    }

    /// The cue before token `i`, looking at up to three tokens on the same line.
    fn cue_before(&self, i: usize) -> Option<Cue> {
        // Folded words, nearest first.
        let mut bufs = [[0u8; 32]; 3];
        let mut lens = [0usize; 3];
        let mut n = 0;
        let mut colon = false;
        let mut k = i;
        while k > 0 && n < 3 {
            if self.tokens[k].has(AFTER_NEWLINE) && n > 0 {
                break;
            }
            k -= 1;
            let raw = self.tokens[k].text(self.text);
            if n == 0 {
                colon = raw.ends_with(':');
            } else if raw.ends_with(['.', '!', '?', ':', ';'])
                && !raw.eq_ignore_ascii_case("t.n.v.")
            {
                break;
            }
            let trimmed = raw.trim_matches(|c: char| {
                matches!(c, ',' | ':' | '!' | '?' | '(' | ')' | '"' | ';' | '-')
            });
            let Some(len) = fold_into(trimmed, &mut bufs[n]).map(str::len) else {
                break;
            };
            lens[n] = len;
            n += 1;
            // Only the nearest word can end a phrase: stop early when it cannot.
            if n == 1 && !colon && !std::str::from_utf8(&bufs[0][..len]).is_ok_and(may_end_cue) {
                return None;
            }
            if self.tokens[k].has(AFTER_NEWLINE) {
                break;
            }
        }
        // `classify` wants the nearest word last.
        let mut ordered: [&str; 3] = ["", "", ""];
        for j in 0..n {
            ordered[n - 1 - j] = std::str::from_utf8(&bufs[j][..lens[j]]).unwrap_or("");
        }
        classify(&ordered[..n], colon)
    }
}

/// "Mr", "Frau", "Mme." on their own.
fn is_title(text: &str, tok: &Token) -> bool {
    let w = tok.text(text).trim_end_matches(['.', ',']);
    let mut buf = [0u8; 16];
    w.len() <= 12 && fold_into(w, &mut buf).is_some_and(cues::is_title)
}

/// "Hi", "Bonjour", "Thanks" on their own (single-word cues).
fn is_greeting(text: &str, tok: &Token) -> bool {
    let w = tok.text(text).trim_end_matches([',', '!', '.', ':']);
    let mut buf = [0u8; 16];
    w.len() <= 12 && fold_into(w, &mut buf).is_some_and(cues::is_single_word_cue)
}

/// An all-capitals word in mixed-case text is an acronym ("IBAN", "NASA"), not a name.
fn acronym(text: &str, tokens: &[Token], i: usize) -> bool {
    let w = tokens[i].text(text);
    let letters = w.chars().filter(|c| c.is_alphabetic()).count();
    let all_caps = letters >= 2
        && w.chars()
            .filter(|c| c.is_alphabetic())
            .all(char::is_uppercase);
    if !all_caps {
        return false;
    }
    // In shouted text ("JOHN SMITH PAID") the neighbours are capitals too.
    let shouting = |j: usize| {
        tokens.get(j).is_some_and(|t| {
            let w = t.text(text);
            w.chars().any(char::is_alphabetic)
                && !w.chars().any(|c| c.is_lowercase() || c.is_ascii_digit())
        })
    };
    !((i > 0 && shouting(i - 1)) || shouting(i + 1))
}

/// Whether token `i` follows the person that ended before token `end` through a
/// conjunction ("Sarah and Tom", "Anna und Ben").
fn coordinated(text: &str, tokens: &[Token], end: usize, i: usize) -> bool {
    i == end + 1
        && matches!(
            tokens[end].text(text),
            "and" | "und" | "et" | "y" | "en" | "or" | "oder" | "ou" | "o" | "&"
        )
}

fn is_particle(text: &str, tok: &Token) -> bool {
    let w = tok.text(text);
    w.len() <= 4 && w.chars().all(|c| c.is_lowercase()) && PARTICLES.contains(&w)
}

/// Evidence about one word of a candidate name.
#[derive(Clone, Copy)]
struct Word {
    info: Option<NameInfo>,
}

impl Word {
    fn first(&self) -> bool {
        self.info.is_some_and(|i| i.first != 0)
    }
    fn last(&self) -> bool {
        self.info.is_some_and(|i| i.last != 0)
    }
    fn known(&self) -> bool {
        self.first() || self.last()
    }
    fn rare(&self) -> bool {
        self.info.is_none_or(|i| i.rank >= 2)
    }
    fn not_a_person(&self) -> bool {
        self.info.is_some_and(|i| i.ambiguous & NOT_A_PERSON != 0)
    }
    /// Also an ordinary word in one of the text's likely languages.
    fn ambiguous(&self, likely: LangSet) -> bool {
        self.info
            .is_some_and(|i| i.ambiguous & likely.0 != 0 || i.ambiguous & NOT_A_PERSON != 0)
    }
}

impl Recognizer for PersonRecognizer {
    fn name(&self) -> &str {
        NAME
    }

    fn entities(&self) -> Vec<EntityType> {
        vec![BuiltIn::Person.into()]
    }

    fn recognize(&self, input: &Input<'_>, out: &mut Vec<Candidate>) {
        if !input.wants(BuiltIn::Person) || input.flags & ALPHA == 0 {
            return;
        }
        let text = input.text;
        let tokens = input.tokens;
        let mut ctx = Ctx {
            text,
            tokens,
            langs: input.languages,
        };
        let mut i = 0;
        let mut last_person_end: Option<usize> = None;
        while i < tokens.len() {
            let tok = &tokens[i];
            if !tok.has(ALPHA) || tok.has(DIGIT) {
                i += 1;
                continue;
            }
            let capitalized = tok.has(CAPITALIZED);
            if capitalized && (is_title(text, tok) || is_greeting(text, tok)) {
                // "Frau Becker", "Hoi Sanne": the title or greeting is a cue for the
                // next word, not part of a name.
                i += 1;
                continue;
            }
            // Lower-case names count only right after a cue ("my name is anna"); a
            // long or numeric previous token cannot end one.
            let prev_may_cue = i > 0
                && tokens[i - 1].end - tokens[i - 1].start <= 16
                && !tokens[i - 1].has(DIGIT)
                && cues::could_end_cue(tokens[i - 1].text(text));
            if !capitalized && !prev_may_cue {
                i += 1;
                continue;
            }
            let mut cue = if prev_may_cue {
                ctx.cue_before(i)
            } else {
                None
            };
            if cue.is_none() && last_person_end.is_some_and(|end| coordinated(text, tokens, end, i))
            {
                // "Sarah and Tom": a name joined to a name just found.
                cue = Some(Cue::Weak("and"));
            }
            if capitalized
                && acronym(text, tokens, i)
                && !matches!(cue, Some(Cue::Strong(_) | Cue::Title(_)))
            {
                i += 1;
                continue;
            }
            if !capitalized && cue.is_none() {
                i += 1;
                continue;
            }
            match self.span_at(&mut ctx, i, cue, capitalized) {
                Some((candidate, next)) => {
                    if candidate.score >= 0.5 {
                        last_person_end = Some(next);
                    }
                    out.push(candidate);
                    i = next;
                }
                None => i += 1,
            }
        }
    }
}

impl PersonRecognizer {
    /// Evaluates the name that may start at token `i`; returns the candidate and
    /// the index of the token after it.
    fn span_at(
        &self,
        ctx: &mut Ctx<'_>,
        i: usize,
        cue: Option<Cue>,
        capitalized: bool,
    ) -> Option<(Candidate, usize)> {
        let text = ctx.text;
        let tokens = ctx.tokens;
        let mut words: [(Core, Word); MAX_NAME_TOKENS] = [(
            Core {
                start: 0,
                end: 0,
                closed: false,
            },
            Word { info: None },
        ); MAX_NAME_TOKENS];
        let mut n = 0;
        let mut j = i;
        loop {
            let tok = &tokens[j];
            let Some(c) = core(text, tok) else { break };
            let info = self
                .gazetteer
                .lookup(&text[c.start..c.end])
                .or_else(|| self.hyphenated(&text[c.start..c.end]));
            let word = Word { info };
            // After the first word, lower-case words join only when they are known names
            // in a lower-case span, and capitalized words join.
            // Lower-case words count only as names that are no ordinary word in any
            // language ("my name is anna", not "call me on"), or, after a phrase
            // such as "my name is", as very common first names ("john").
            let strong = matches!(cue, Some(Cue::Strong(_)));
            let lower_ok = word.info.is_some_and(|info| {
                (info.first != 0 || info.last != 0)
                    && (info.ambiguous == 0
                        || (strong
                            && info.first != 0
                            && info.rank == 0
                            && info.ambiguous & NOT_A_PERSON == 0))
            });
            if n > 0 && !tok.has(CAPITALIZED) && (capitalized || !lower_ok) {
                break;
            }
            // An acronym ends a name rather than joining it ("Meine IBAN", "Mon IBAN").
            if n > 0 && acronym(text, tokens, j) {
                break;
            }
            if !capitalized && !lower_ok && n == 0 {
                break;
            }
            words[n] = (c, word);
            n += 1;
            if c.closed || c.end < tok.end || n == MAX_NAME_TOKENS {
                break;
            }
            // Next token on the same line, possibly behind a particle ("van", "de").
            let mut next = j + 1;
            if next < tokens.len()
                && crate::recognizers::joined(text, &tokens[j], &tokens[next])
                && is_particle(text, &tokens[next])
            {
                next += 1;
            }
            if next >= tokens.len()
                || !crate::recognizers::joined(text, &tokens[next - 1], &tokens[next])
            {
                break;
            }
            if tokens[next].has(DIGIT) || (!tokens[next].has(CAPITALIZED) && capitalized) {
                break;
            }
            j = next;
        }
        if n == 0 {
            return None;
        }
        // "John Smith paid": trailing words that are not names are not part of it.
        while n > 2 && !words[n - 1].1.known() {
            n -= 1;
        }
        let initial = sentence_initial(text, tokens, i);
        let (score, pattern, cue_word) = self.score(ctx, i, &words[..n], cue, initial)?;
        let start = words[0].0.start;
        let end = words[n - 1].0.end;
        let mut candidate = Candidate::builtin(BuiltIn::Person, start, end, score, NAME, pattern);
        candidate.apply_context = false;
        if let Some(w) = cue_word {
            candidate.context_words.push(Label::Static(w));
        }
        let next = tokens.partition_point(|t| t.start < end);
        Some((candidate, next.max(i + 1)))
    }

    /// "Jean-Pierre": known when every part is a known name.
    fn hyphenated(&self, word: &str) -> Option<NameInfo> {
        if !word.contains('-') {
            return None;
        }
        let mut acc: Option<NameInfo> = None;
        for part in word.split('-') {
            let info = self.gazetteer.lookup(part)?;
            acc = Some(match acc {
                None => info,
                Some(a) => NameInfo {
                    first: a.first & info.first,
                    last: a.last | info.last,
                    ambiguous: 0,
                    rank: a.rank.max(info.rank),
                },
            });
        }
        acc.filter(|a| a.first != 0 || a.last != 0)
    }

    /// The rules, from the strongest evidence down. Returns the score, the rule
    /// name and the cue word that counted.
    fn score(
        &self,
        ctx: &mut Ctx<'_>,
        at: usize,
        words: &[(Core, Word)],
        cue: Option<Cue>,
        initial: bool,
    ) -> Option<(f32, &'static str, Option<&'static str>)> {
        // The text's languages matter only when a word is also an ordinary word.
        let any_ambiguous = words
            .iter()
            .any(|(_, w)| w.info.is_some_and(|i| i.ambiguous != 0));
        let (likely, evidence) = if any_ambiguous {
            ctx.likely_near(at)
        } else {
            (ctx.langs, false)
        };
        // German capitalizes nouns, so capitals say little in German text.
        let german = evidence && likely.contains(Language::De);
        let first = words[0].1;
        let last = words[words.len() - 1].1;
        let amb = |w: &Word| w.ambiguous(likely);
        match cue {
            Some(Cue::Strong(w)) => return Some((0.9, "cue_phrase", Some(w))),
            Some(Cue::Title(w)) => return Some((0.85, "title", Some(w))),
            _ => {}
        }
        let weak = match cue {
            Some(Cue::Weak(w)) => Some(w),
            _ => None,
        };
        // Capitals mid-sentence are evidence, except where nouns are capitalized.
        let mid = !initial && !german;
        if words.len() >= 2 {
            if !(first.first() || (first.last() && last.last())) {
                return None;
            }
            let (a0, al) = (amb(&first), amb(&last));
            // Two capitalized name words in mid-sentence are a name even when each
            // is also a word; at a sentence start (or in German) they may not be.
            let plain = mid || weak.is_some();
            let score: f32 = match (a0, last.known(), al) {
                (false, true, false) => 0.9,
                (false, true, true) if plain => 0.85,
                (false, true, true) => 0.7,
                (false, false, _) => 0.7,
                (true, true, false) if plain => 0.85,
                (true, true, false) => 0.7,
                (true, true, true) if plain => 0.75,
                (true, true, true) => 0.4,
                (true, false, _) if plain => 0.55,
                (true, false, _) => 0.3,
            };
            let score = if first.not_a_person() && last.not_a_person() {
                score.min(0.3)
            } else {
                score
            };
            let score = if weak.is_some() {
                (score + 0.1f32).min(0.95)
            } else {
                score
            };
            return Some((score, "full_name", weak));
        }
        // A single word.
        let a = amb(&first);
        if first.first() {
            let score = match (a, weak.is_some(), mid, first.rare()) {
                (false, true, _, _) => 0.85,
                (true, true, _, _) if !first.not_a_person() => 0.65,
                (true, true, _, _) => 0.4,
                (false, false, true, false) => 0.6,
                (false, false, true, true) => 0.45,
                (false, false, false, false) => 0.5,
                (false, false, false, true) => 0.3,
                (true, false, true, _) if !first.not_a_person() && !german => 0.5,
                (true, false, _, _) => 0.15,
            };
            return Some((score, "first_name", weak));
        }
        if first.last() {
            let score = match (a, weak.is_some(), mid) {
                (false, true, _) => 0.6,
                (false, false, true) if !first.rare() => 0.45,
                (false, false, true) => 0.35,
                (false, false, false) => 0.3,
                (true, _, _) => 0.15,
            };
            return Some((score, "surname", weak));
        }
        None
    }
}
