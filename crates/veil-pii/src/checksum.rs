//! Check-digit algorithms. Each takes the value's significant characters only
//! (separators already removed) and answers whether the check passes.

/// Digit values of an ASCII digit string, or `None` when a byte is not a digit.
#[inline]
fn digit(b: u8) -> Option<u32> {
    b.is_ascii_digit().then(|| u32::from(b - b'0'))
}

/// Luhn (ISO/IEC 7812): payment cards, NPI, SIN.
pub fn luhn(digits: &[u8]) -> bool {
    if digits.is_empty() {
        return false;
    }
    let mut sum = 0u32;
    for (i, b) in digits.iter().rev().enumerate() {
        let Some(mut d) = digit(*b) else { return false };
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// ISO 7064 MOD 11,10: the German tax id (Steuer-IdNr) check digit.
pub fn iso7064_mod11_10(digits: &[u8]) -> bool {
    let Some((last, body)) = digits.split_last() else {
        return false;
    };
    let mut product = 10u32;
    for b in body {
        let Some(d) = digit(*b) else { return false };
        let mut sum = (d + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (sum * 2) % 11;
    }
    let check = (11 - product) % 10;
    digit(*last) == Some(check)
}

/// UK NHS number: weights 10..2, check = 11 - (sum mod 11), 11 -> 0, 10 invalid.
pub fn nhs(digits: &[u8]) -> bool {
    if digits.len() != 10 {
        return false;
    }
    let mut sum = 0u32;
    for (i, b) in digits[..9].iter().enumerate() {
        let Some(d) = digit(*b) else { return false };
        sum += d * (10 - i as u32);
    }
    let check = match 11 - (sum % 11) {
        11 => 0,
        10 => return false,
        c => c,
    };
    digit(digits[9]) == Some(check)
}

/// Dutch BSN "elfproef": weights 9..2 and -1 on the last digit, sum divisible by 11.
pub fn elfproef(digits: &[u8]) -> bool {
    if digits.len() != 9 {
        return false;
    }
    let mut sum = 0i64;
    for (i, b) in digits.iter().enumerate() {
        let Some(d) = digit(*b) else { return false };
        let weight = if i == 8 { -1 } else { 9 - i as i64 };
        sum += i64::from(d) * weight;
    }
    sum != 0 && sum % 11 == 0
}

/// ABA routing number: weights 3, 7, 1 repeated, sum divisible by 10.
pub fn aba(digits: &[u8]) -> bool {
    if digits.len() != 9 {
        return false;
    }
    let weights = [3u32, 7, 1, 3, 7, 1, 3, 7, 1];
    let mut sum = 0u32;
    for (b, w) in digits.iter().zip(weights) {
        let Some(d) = digit(*b) else { return false };
        sum += d * w;
    }
    sum.is_multiple_of(10) && sum != 0
}

/// The letter of a Spanish DNI/NIF/NIE for its number.
pub fn es_control_letter(number: u32) -> u8 {
    const LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    LETTERS[(number % 23) as usize]
}

/// Remainder of a decimal digit string modulo `m` (for long numbers such as the NIR).
pub fn mod_of_digits(digits: &[u8], m: u64) -> Option<u64> {
    let mut rem = 0u64;
    for b in digits {
        rem = (rem * 10 + u64::from(digit(*b)?)) % m;
    }
    Some(rem)
}

/// Italian codice fiscale check character over the first 15 characters (upper case).
pub fn it_fiscal_check(code: &[u8]) -> Option<u8> {
    const ODD: [u32; 26] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24,
        23,
    ];
    if code.len() < 15 {
        return None;
    }
    let mut sum = 0u32;
    for (i, b) in code[..15].iter().enumerate() {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A'),
            _ => return None,
        };
        // Positions are 1-based in the specification: odd positions use the table.
        sum += if i % 2 == 0 { ODD[v as usize] } else { v };
    }
    Some(b'A' + (sum % 26) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_known_values() {
        assert!(luhn(b"4111111111111111"));
        assert!(luhn(b"4012888888881881"));
        assert!(!luhn(b"4012888888881882"));
        assert!(!luhn(b""));
    }

    #[test]
    fn de_tax_id() {
        assert!(iso7064_mod11_10(b"12345678903"));
        assert!(iso7064_mod11_10(b"98765432106"));
        assert!(!iso7064_mod11_10(b"12345678901"));
    }

    #[test]
    fn nhs_numbers() {
        assert!(nhs(b"4010232137"));
        assert!(!nhs(b"4010232138"));
    }

    #[test]
    fn bsn() {
        assert!(elfproef(b"111222333"));
        assert!(elfproef(b"123456782"));
        assert!(!elfproef(b"123456789"));
    }

    #[test]
    fn aba_routing() {
        assert!(aba(b"121000358"));
        assert!(!aba(b"421042111"));
    }

    #[test]
    fn spanish_letters() {
        assert_eq!(es_control_letter(12345678), b'Z');
        assert_eq!(es_control_letter(55555555), b'K');
    }

    #[test]
    fn italian_fiscal_code() {
        // A well-known valid example (public specimen).
        assert_eq!(it_fiscal_check(b"RSSMRA85T10A562"), Some(b'S'));
    }
}
