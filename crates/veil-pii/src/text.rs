//! One pass over the text that splits it into whitespace-separated tokens and
//! records, per token, which kinds of characters it holds. Recognizers skip
//! tokens by these flags, so most of a long text is looked at only once.

/// Token flag: an ASCII digit.
pub const DIGIT: u32 = 1;
/// Token flag: an ASCII upper-case letter.
pub const UPPER: u32 = 1 << 1;
/// Token flag: an ASCII lower-case letter.
pub const LOWER: u32 = 1 << 2;
/// Token flag: a non-ASCII character.
pub const NON_ASCII: u32 = 1 << 3;
/// Token flag: `@`.
pub const AT: u32 = 1 << 4;
/// Token flag: `.`.
pub const DOT: u32 = 1 << 5;
/// Token flag: `:`.
pub const COLON: u32 = 1 << 6;
/// Token flag: `/`.
pub const SLASH: u32 = 1 << 7;
/// Token flag: `-`.
pub const DASH: u32 = 1 << 8;
/// Token flag: `+`.
pub const PLUS: u32 = 1 << 9;
/// Token flag: `(` or `)`.
pub const PAREN: u32 = 1 << 10;
/// Token flag: other ASCII punctuation.
pub const PUNCT: u32 = 1 << 11;
/// Token flag: the first letter or digit of the token is an upper-case letter (any script).
pub const CAPITALIZED: u32 = 1 << 12;
/// Token flag: a newline precedes the token (paragraph or line start).
pub const AFTER_NEWLINE: u32 = 1 << 13;

/// Any letter, ASCII or not.
pub const ALPHA: u32 = UPPER | LOWER | NON_ASCII;

const fn byte_class_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = if b.is_ascii_digit() {
            DIGIT
        } else if b.is_ascii_uppercase() {
            UPPER
        } else if b.is_ascii_lowercase() {
            LOWER
        } else if b >= 0x80 {
            NON_ASCII
        } else {
            match b {
                b'@' => AT,
                b'.' => DOT,
                b':' => COLON,
                b'/' => SLASH,
                b'-' => DASH,
                b'+' => PLUS,
                b'(' | b')' => PAREN,
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => 0,
                _ => PUNCT,
            }
        };
        i += 1;
    }
    table
}

static BYTE_CLASS: [u32; 256] = byte_class_table();

/// A whitespace-separated run of the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
    /// Union of the character-kind flags above.
    pub flags: u32,
}

impl Token {
    /// Whether any of the given flags is set.
    #[inline]
    pub fn has(&self, flags: u32) -> bool {
        self.flags & flags != 0
    }

    /// The token's text.
    #[inline]
    pub fn text<'t>(&self, text: &'t str) -> &'t str {
        &text[self.start..self.end]
    }
}

/// Length in bytes of a Unicode space that starts at `i`, or 0. Only the spaces that
/// appear in chat text matter here (no-break, thin, ideographic).
#[inline]
fn unicode_space_len(bytes: &[u8], i: usize) -> usize {
    match bytes[i] {
        0xC2 if bytes.get(i + 1) == Some(&0xA0) => 2,
        0xE2 => match (bytes.get(i + 1), bytes.get(i + 2)) {
            (Some(0x80), Some(&c))
                if (0x80..=0x8A).contains(&c) || c == 0xAF || c == 0xA8 || c == 0xA9 =>
            {
                3
            }
            (Some(0x81), Some(0x9F)) => 3,
            _ => 0,
        },
        0xE3 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0x80) => 3,
        _ => 0,
    }
}

/// Whether the byte is ASCII whitespace.
#[inline]
pub fn is_ascii_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Splits `text` into tokens, appending them to `out` (which is cleared first).
/// Returns the union of all token flags.
pub fn tokenize(text: &str, out: &mut Vec<Token>) -> u32 {
    out.clear();
    let bytes = text.as_bytes();
    let mut all = 0u32;
    let mut i = 0;
    let mut newline = true;
    while i < bytes.len() {
        let b = bytes[i];
        if is_ascii_space(b) {
            newline |= b == b'\n';
            i += 1;
            continue;
        }
        if b >= 0x80 {
            let n = unicode_space_len(bytes, i);
            if n > 0 {
                i += n;
                continue;
            }
        }
        let start = i;
        let mut flags = 0u32;
        while i < bytes.len() {
            let c = bytes[i];
            if is_ascii_space(c) {
                break;
            }
            if c >= 0x80 && unicode_space_len(bytes, i) > 0 {
                break;
            }
            flags |= BYTE_CLASS[c as usize];
            i += 1;
        }
        if first_alnum_is_upper(&text[start..i]) {
            flags |= CAPITALIZED;
        }
        if newline {
            flags |= AFTER_NEWLINE;
            newline = false;
        }
        all |= flags;
        out.push(Token {
            start,
            end: i,
            flags,
        });
    }
    all
}

fn first_alnum_is_upper(token: &str) -> bool {
    for c in token.chars() {
        if c.is_ascii() {
            if c.is_ascii_uppercase() {
                return true;
            }
            if c.is_ascii_alphanumeric() {
                return false;
            }
        } else if c.is_alphabetic() {
            return c.is_uppercase();
        }
    }
    false
}

/// Whether `c` counts as part of a word for boundary checks (letters, digits, `_`).
#[inline]
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The character before byte offset `i`, if any.
#[inline]
pub fn char_before(text: &str, i: usize) -> Option<char> {
    text[..i].chars().next_back()
}

/// The character at byte offset `i`, if any.
#[inline]
pub fn char_at(text: &str, i: usize) -> Option<char> {
    text[i..].chars().next()
}

/// Whether a match `[start, end)` sits on word boundaries on both sides.
#[inline]
pub fn on_word_boundaries(text: &str, start: usize, end: usize) -> bool {
    !char_before(text, start).is_some_and(is_word_char)
        && !char_at(text, end).is_some_and(is_word_char)
}

/// Converts sorted byte offsets into code-point offsets in one forward pass.
/// `offsets` must be non-decreasing; each is replaced by its code-point offset.
pub fn byte_to_char_offsets(text: &str, offsets: &mut [usize]) {
    if text.is_ascii() {
        return;
    }
    let bytes = text.as_bytes();
    let mut pos = 0usize;
    let mut chars = 0usize;
    for offset in offsets.iter_mut() {
        let target = (*offset).min(bytes.len());
        chars += bytes[pos..target]
            .iter()
            .filter(|b| (**b & 0xC0) != 0x80)
            .count();
        pos = target;
        *offset = chars;
    }
}

/// Lower-cases a short ASCII or Unicode word into `buf` and returns it, or `None`
/// when it does not fit. Used for look-ups without allocating.
pub fn fold_into<'b>(word: &str, buf: &'b mut [u8]) -> Option<&'b str> {
    let mut n = 0;
    for c in word.chars() {
        if c.is_ascii() {
            if n >= buf.len() {
                return None;
            }
            buf[n] = c.to_ascii_lowercase() as u8;
            n += 1;
        } else {
            for l in c.to_lowercase() {
                let len = l.len_utf8();
                if n + len > buf.len() {
                    return None;
                }
                l.encode_utf8(&mut buf[n..n + len]);
                n += len;
            }
        }
    }
    std::str::from_utf8(&buf[..n]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_flags() {
        let mut toks = Vec::new();
        let all = tokenize("Hi Anna,\u{a0}mail me@x.io 42", &mut toks);
        let texts: Vec<&str> = toks
            .iter()
            .map(|t| t.text("Hi Anna,\u{a0}mail me@x.io 42"))
            .collect();
        assert_eq!(texts, ["Hi", "Anna,", "mail", "me@x.io", "42"]);
        assert!(toks[1].has(CAPITALIZED));
        assert!(!toks[2].has(CAPITALIZED));
        assert!(toks[3].has(AT) && toks[3].has(DOT));
        assert!(toks[4].has(DIGIT));
        assert!(all & AT != 0);
    }

    #[test]
    fn unicode_capitals() {
        let mut toks = Vec::new();
        tokenize("Øystein über", &mut toks);
        assert!(toks[0].has(CAPITALIZED));
        assert!(!toks[1].has(CAPITALIZED));
    }

    #[test]
    fn char_offsets() {
        let text = "é a 😀 b";
        let mut offsets = vec![0, 2, 3, 4, 5, 9, 10];
        byte_to_char_offsets(text, &mut offsets);
        assert_eq!(offsets, vec![0, 1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn folding() {
        let mut buf = [0u8; 16];
        assert_eq!(fold_into("MÜLLER", &mut buf), Some("müller"));
        assert_eq!(fold_into("averyveryverylongword", &mut buf), None);
    }
}
