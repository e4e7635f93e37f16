//! Words around a name that tell it is one: phrases that introduce a name
//! ("my name is", "ich heiße", "je m'appelle", "me llamo", "t.n.v."), greetings
//! and thanks ("Hi X,", "Thanks X"), titles ("Mr", "Frau", "Mme") and particles
//! inside names ("van", "de", "von").

use super::gazetteer::Fnv;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::sync::LazyLock;

/// How strongly the words before a span announce a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cue {
    /// "my name is", "account holder", "Name:": whatever follows is a name.
    Strong(&'static str),
    /// A title: "Mr", "Frau", "Mme", "Sr.".
    Title(&'static str),
    /// Greetings, thanks, "I'm": a known name that follows is very likely one.
    Weak(&'static str),
}

/// Phrases (as folded words, last word next to the name) that announce a name.
const STRONG: &[&[&str]] = &[
    &["my", "name", "is"],
    &["my", "name's"],
    &["name", "is"],
    &["i", "am", "called"],
    &["call", "me"],
    &["account", "holder"],
    &["account", "name"],
    &["cardholder"],
    &["card", "holder"],
    &["signed"],
    &["ich", "heisse"],
    &["ich", "heiße"],
    &["mein", "name", "ist"],
    &["name", "ist"],
    &["kontoinhaber"],
    &["kontoinhaberin"],
    &["je", "m'appelle"],
    &["m'appelle"],
    &["mon", "nom", "est"],
    &["nom", "est"],
    &["titulaire"],
    &["me", "llamo"],
    &["mi", "nombre", "es"],
    &["nombre", "es"],
    &["titular"],
    &["mijn", "naam", "is"],
    &["naam", "is"],
    &["ik", "heet"],
    &["t.n.v"],
    &["t.n.v."],
    &["tnv"],
    &["ten", "name", "van"],
    &["rekeninghouder"],
];

/// Labels that announce a name when followed by a colon ("Name: Anna Schmidt").
const LABELS: &[&str] = &[
    "name",
    "full name",
    "patient",
    "customer",
    "contact",
    "kunde",
    "kundin",
    "nom",
    "client",
    "cliente",
    "nombre",
    "naam",
    "klant",
    "vorname",
    "nachname",
    "prénom",
    "prenom",
    "apellido",
    "achternaam",
    "voornaam",
    "surname",
    "firstname",
    "lastname",
    "from",
    "von",
    "de",
    "van",
    "to",
    "an",
    "à",
    "para",
    "aan",
];

const TITLES: &[&str] = &[
    "mr",
    "mrs",
    "ms",
    "miss",
    "mx",
    "dr",
    "prof",
    "sir",
    "madam",
    "herr",
    "frau",
    "hr",
    "fr",
    "m",
    "mme",
    "mlle",
    "monsieur",
    "madame",
    "mademoiselle",
    "sr",
    "sra",
    "srta",
    "señor",
    "señora",
    "senor",
    "senora",
    "don",
    "doña",
    "dhr",
    "mevr",
    "mevrouw",
    "meneer",
    "mw",
    "dokter",
    "docteur",
    "doctor",
];

const WEAK: &[&[&str]] = &[
    &["hi"],
    &["hey"],
    &["hello"],
    &["dear"],
    &["thanks"],
    &["thank", "you"],
    &["thx"],
    &["bye"],
    &["cheers"],
    &["i'm"],
    &["im"],
    &["i", "am"],
    &["this", "is"],
    &["regards"],
    &["sincerely"],
    &["best"],
    &["love"],
    &["contact"],
    &["tell"],
    &["email"],
    &["text"],
    &["message"],
    &["cc"],
    &["attn"],
    &["attention"],
    &["regarding"],
    &["from"],
    &["ask"],
    &["met"],
    &["with"],
    &["married"],
    &["wife"],
    &["husband"],
    &["son"],
    &["daughter"],
    &["brother"],
    &["sister"],
    &["friend"],
    &["colleague"],
    &["manager"],
    &["boss"],
    &["mom"],
    &["dad"],
    &["called"],
    &["named"],
    &["hallo"],
    &["liebe"],
    &["lieber"],
    &["danke"],
    &["grüße"],
    &["gruss"],
    &["gruß"],
    &["grusse"],
    &["ich", "bin"],
    &["bonjour"],
    &["salut"],
    &["cher"],
    &["chère"],
    &["chere"],
    &["merci"],
    &["je", "suis"],
    &["cordialement"],
    &["hola"],
    &["querido"],
    &["querida"],
    &["estimado"],
    &["estimada"],
    &["gracias"],
    &["soy"],
    &["saludos"],
    &["hoi"],
    &["beste"],
    &["dag"],
    &["bedankt"],
    &["groeten"],
    &["ik", "ben"],
    &["dank", "je"],
    &["dank", "u"],
];

/// Lower-case particles that sit inside names ("Ludwig van Beethoven").
pub const PARTICLES: &[&str] = &[
    "van", "von", "de", "der", "den", "del", "della", "di", "da", "du", "le", "la", "ten", "ter",
    "zu", "dos", "das", "y", "bin", "al", "el", "van der", "vom", "zur", "st", "des",
];

/// The cue words before token `index`, given the folded text of up to three
/// preceding tokens (nearest last) and whether the nearest ends with a colon.
pub fn classify(previous: &[&str], colon: bool) -> Option<Cue> {
    let n = previous.len();
    if n == 0 {
        return None;
    }
    let last = previous[n - 1];
    if colon {
        if let Some(label) = LABELS.iter().find(|l| **l == last) {
            return Some(Cue::Strong(label));
        }
        if n >= 2 {
            let two = [previous[n - 2], last];
            if let Some(label) = LABELS.iter().find(|l| l.split(' ').eq(two.iter().copied())) {
                return Some(Cue::Strong(label));
            }
        }
    }
    if let Some(title) = TITLE_SET.get(last.strip_suffix('.').unwrap_or(last)) {
        return Some(Cue::Title(title));
    }
    let ends_with = |phrase: &[&str]| {
        phrase.len() <= n
            && phrase
                .iter()
                .rev()
                .zip(previous.iter().rev())
                .all(|(p, w)| p == w)
    };
    // Only phrases ending in the nearest word are tried (strong ones first).
    let phrases = PHRASES_BY_LAST_WORD.get(last)?;
    phrases
        .iter()
        .find(|(phrase, _)| ends_with(phrase))
        .map(|(phrase, strong)| {
            let word = phrase[phrase.len() - 1];
            if *strong {
                Cue::Strong(word)
            } else {
                Cue::Weak(word)
            }
        })
}

/// Phrases with a flag that marks strong ones.
type Phrases = Vec<(&'static [&'static str], bool)>;
type PhraseIndex = HashMap<&'static str, Phrases, BuildHasherDefault<Fnv>>;

/// Phrases indexed by their last word; strong ones are listed first.
static PHRASES_BY_LAST_WORD: LazyLock<PhraseIndex> = LazyLock::new(|| {
    let mut map = PhraseIndex::default();
    for (list, strong) in [(STRONG, true), (WEAK, false)] {
        for phrase in list {
            map.entry(phrase[phrase.len() - 1])
                .or_default()
                .push((*phrase, strong));
        }
    }
    map
});

/// Whether a folded word is a cue on its own ("hi", "bonjour", "thanks", "dear").
pub fn is_single_word_cue(word: &str) -> bool {
    SINGLE_WORD_CUES.contains(word)
}

/// Whether a folded word (without a trailing dot) is a title.
pub fn is_title(word: &str) -> bool {
    TITLE_SET.contains(word)
}

type WordSet = HashSet<&'static str, BuildHasherDefault<Fnv>>;

static SINGLE_WORD_CUES: LazyLock<WordSet> = LazyLock::new(|| {
    WEAK.iter()
        .chain(STRONG.iter())
        .filter(|p| p.len() == 1)
        .map(|p| p[0])
        .collect()
});
static TITLE_SET: LazyLock<WordSet> = LazyLock::new(|| TITLES.iter().copied().collect());

/// Words that can end a cue, for a constant-time test on every token.
static CUE_ENDS: LazyLock<HashSet<&'static str, BuildHasherDefault<Fnv>>> = LazyLock::new(|| {
    let mut set: HashSet<&'static str, BuildHasherDefault<Fnv>> = HashSet::default();
    set.extend(TITLES.iter().copied());
    set.extend(STRONG.iter().map(|p| p[p.len() - 1]));
    set.extend(WEAK.iter().map(|p| p[p.len() - 1]));
    set
});

/// Whether a folded word can end a cue (cheap test before the full look-up).
pub fn may_end_cue(word: &str) -> bool {
    word.len() <= 15 && CUE_ENDS.contains(word.strip_suffix('.').unwrap_or(word))
}

/// Bits of (length, first letter, last letter) of the words that can end a cue, so
/// that almost every token is rejected without folding or hashing it.
static CUE_SHAPES: LazyLock<[u32; 16 * 32]> = LazyLock::new(|| {
    let mut bits = [0u32; 16 * 32];
    for w in CUE_ENDS.iter() {
        for form in [w.to_string(), format!("{w}.")] {
            if let Some((len, first, last)) = shape(&form) {
                bits[len * 32 + first] |= 1 << last;
            }
        }
    }
    bits
});

fn letter_class(b: u8) -> usize {
    match b.to_ascii_lowercase() {
        c @ b'a'..=b'z' => usize::from(c - b'a'),
        b'.' => 26,
        b'\'' => 27,
        _ => 28,
    }
}

fn shape(word: &str) -> Option<(usize, usize, usize)> {
    let b = word.as_bytes();
    let len = word.len();
    (len > 0 && len < 16).then(|| (len, letter_class(b[0]), letter_class(b[len - 1])))
}

/// A fast negative test on a raw token (before trimming punctuation): `false`
/// means it cannot end a cue. Non-ASCII words always pass to the full test.
pub fn could_end_cue(raw: &str) -> bool {
    let b = raw.as_bytes();
    if b.last() == Some(&b':') {
        // Labels ("Name:") are looked up in full.
        return true;
    }
    let punct = |c: &u8| {
        matches!(
            c,
            b',' | b':' | b'!' | b'?' | b'(' | b')' | b'"' | b';' | b'-'
        )
    };
    let start = b.iter().position(|c| !punct(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !punct(c)).map_or(start, |p| p + 1);
    let word = &b[start..end.max(start)];
    if word.iter().any(|c| !c.is_ascii()) {
        return true;
    }
    let len = word.len();
    if len == 0 || len >= 16 {
        return false;
    }
    CUE_SHAPES[len * 32 + letter_class(word[0])] & (1 << letter_class(word[len - 1])) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases() {
        assert_eq!(
            classify(&["my", "name", "is"], false),
            Some(Cue::Strong("is"))
        );
        assert_eq!(
            classify(&["ich", "heiße"], false),
            Some(Cue::Strong("heiße"))
        );
        assert_eq!(classify(&["name"], true), Some(Cue::Strong("name")));
        assert_eq!(classify(&["mr."], false), Some(Cue::Title("mr")));
        assert_eq!(classify(&["hi"], false), Some(Cue::Weak("hi")));
        assert_eq!(classify(&["the"], false), None);
    }
}
