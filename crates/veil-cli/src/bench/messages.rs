//! Realistic chat turns of about 75 characters with a mix of personal data (names,
//! e-mail addresses, phone numbers, IBANs) and some turns with none.

use rand::Rng;
use rand::seq::SliceRandom;

const FIRST: &[&str] = &[
    "Anna", "Ben", "Chloé", "David", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas",
];
const LAST: &[&str] = &[
    "Keller",
    "Smith",
    "Dupont",
    "Novak",
    "Yilmaz",
    "Haddad",
    "Lindqvist",
    "Moreau",
    "García",
    "Becker",
];
const PHONES: &[&str] = &[
    "+49 30 12345678",
    "+44 20 7946 0958",
    "+1 415 555 2671",
    "+33 1 42 68 53 00",
    "+31 20 794 6088",
];
const IBANS: &[&str] = &[
    "DE89 3704 0044 0532 0130 00",
    "GB82 WEST 1234 5698 7654 32",
    "FR14 2004 1010 0505 0001 3M02 606",
    "NL91 ABNA 0417 1643 00",
];
const PLAIN: &[&str] = &[
    "My order hasn't arrived yet, could you please check the delivery status?",
    "Wie lange dauert die Rückerstattung normalerweise, wenn ich online zahle?",
    "The app keeps logging me out after a few minutes, is that a known problem?",
];

/// One chat turn; the personal data varies so the vault sees new values.
pub fn chat_message(rng: &mut impl Rng) -> String {
    let first = FIRST.choose(rng).copied().unwrap_or("Anna");
    let last = LAST.choose(rng).copied().unwrap_or("Keller");
    let phone = PHONES.choose(rng).copied().unwrap_or("+49 30 12345678");
    let iban = IBANS
        .choose(rng)
        .copied()
        .unwrap_or("DE89 3704 0044 0532 0130 00");
    let email = format!(
        "{}.{}{}@example.org",
        first.to_lowercase(),
        last.to_lowercase(),
        rng.gen_range(1..1000)
    );
    match rng.gen_range(0..6) {
        0 => format!("Hi, I'm {first} {last}, my email is {email}, please call back."),
        1 => format!("Meine Nummer ist {phone}, bitte überweisen Sie auf {iban}."),
        2 => format!("Please update my contact: {email} or {phone} any time."),
        3 => format!("Refund to IBAN {iban} please, thanks a lot {first}!"),
        4 => format!("Je suis {first} {last}, écrivez-moi à {email} s'il vous plaît."),
        _ => PLAIN.choose(rng).copied().unwrap_or(PLAIN[0]).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_chat_sized_and_mostly_carry_personal_data() {
        let mut rng = rand::thread_rng();
        let messages: Vec<String> = (0..600).map(|_| chat_message(&mut rng)).collect();
        let mean = messages.iter().map(|m| m.chars().count()).sum::<usize>() / messages.len();
        assert!((55..=95).contains(&mean), "mean length {mean}");
        let with_pii = messages
            .iter()
            .filter(|m| {
                m.contains('@') || m.contains('+') || m.contains("IBAN") || m.contains(" 0")
            })
            .count();
        assert!(
            with_pii > messages.len() / 2,
            "{with_pii} of {}",
            messages.len()
        );
    }
}
