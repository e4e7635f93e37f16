//! Entity types: the built-in ones under Presidio's names, plus tenant-defined names.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::Arc;

macro_rules! builtins {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// A built-in entity type. Names follow Microsoft Presidio so that tools and tests line up.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum BuiltIn {
            $(#[doc = $doc] $variant,)*
        }

        impl BuiltIn {
            /// Every built-in type, in declaration order.
            pub const ALL: &'static [BuiltIn] = &[$(BuiltIn::$variant,)*];

            /// The Presidio-compatible name, e.g. `EMAIL_ADDRESS`.
            pub const fn name(self) -> &'static str {
                match self { $(BuiltIn::$variant => $name,)* }
            }

            /// Looks a built-in type up by its name (exact, upper case).
            pub fn from_name(name: &str) -> Option<BuiltIn> {
                match name { $($name => Some(BuiltIn::$variant),)* _ => None }
            }
        }
    };
}

builtins! {
    Person => "PERSON", "A person's name.";
    EmailAddress => "EMAIL_ADDRESS", "An e-mail address.";
    PhoneNumber => "PHONE_NUMBER", "A phone number, validated per region.";
    CreditCard => "CREDIT_CARD", "A payment card number (Luhn and issuer ranges).";
    IbanCode => "IBAN_CODE", "An IBAN (mod-97 and per-country format).";
    UsSsn => "US_SSN", "A US social security number.";
    IpAddress => "IP_ADDRESS", "An IPv4 or IPv6 address.";
    Url => "URL", "A URL or a bare domain name.";
    Crypto => "CRYPTO", "A cryptocurrency wallet address (BTC, ETH).";
    MacAddress => "MAC_ADDRESS", "A MAC address.";
    DateOfBirth => "DATE_OF_BIRTH", "A date with birth context.";
    StreetAddress => "STREET_ADDRESS", "A street address (street name and house number).";
    UsPassport => "US_PASSPORT", "A US passport number.";
    UsDriverLicense => "US_DRIVER_LICENSE", "A US driver licence number.";
    UsItin => "US_ITIN", "A US individual taxpayer identification number.";
    AbaRoutingNumber => "ABA_ROUTING_NUMBER", "A US bank routing number (ABA checksum).";
    UsNpi => "US_NPI", "A US national provider identifier (Luhn with prefix 80840).";
    UkNhs => "UK_NHS", "A UK NHS number (mod 11).";
    UkNino => "UK_NINO", "A UK national insurance number.";
    UkPostcode => "UK_POSTCODE", "A UK postcode.";
    DeTaxId => "DE_TAX_ID", "A German tax identification number (Steuer-IdNr, ISO 7064).";
    DePlz => "DE_PLZ", "A German postcode (Postleitzahl).";
    FrNir => "FR_NIR", "A French social security number (NIR, key mod 97).";
    EsNif => "ES_NIF", "A Spanish NIF/DNI (mod 23 letter).";
    EsNie => "ES_NIE", "A Spanish foreigner identity number (NIE, mod 23 letter).";
    NlBsn => "NL_BSN", "A Dutch citizen service number (BSN, 11-test).";
    ItFiscalCode => "IT_FISCAL_CODE", "An Italian fiscal code (codice fiscale).";
}

impl BuiltIn {
    /// Position in [`BuiltIn::ALL`], used for bit sets.
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// The type of a finding: a built-in type or a tenant-defined one.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityType {
    /// One of Veil's own recognizers.
    BuiltIn(BuiltIn),
    /// A name from a tenant's custom recognizer (upper case, `[A-Z0-9_]`).
    Custom(Arc<str>),
}

impl EntityType {
    /// The type's name as it appears in placeholders and APIs.
    pub fn name(&self) -> &str {
        match self {
            EntityType::BuiltIn(b) => b.name(),
            EntityType::Custom(name) => name,
        }
    }

    /// Parses a name: a built-in name, otherwise a custom one if it is well-formed.
    pub fn parse(name: &str) -> Option<EntityType> {
        if let Some(b) = BuiltIn::from_name(name) {
            return Some(EntityType::BuiltIn(b));
        }
        is_valid_custom_name(name).then(|| EntityType::Custom(Arc::from(name)))
    }

    /// The built-in type, if this is one.
    pub fn builtin(&self) -> Option<BuiltIn> {
        match self {
            EntityType::BuiltIn(b) => Some(*b),
            EntityType::Custom(_) => None,
        }
    }
}

/// Custom names must fit into placeholders and never be mistaken for markup.
pub(crate) fn is_valid_custom_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 48
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && name.as_bytes()[0].is_ascii_uppercase()
}

impl From<BuiltIn> for EntityType {
    fn from(b: BuiltIn) -> Self {
        EntityType::BuiltIn(b)
    }
}

impl fmt::Display for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for BuiltIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for EntityType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for EntityType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        EntityType::parse(&name)
            .ok_or_else(|| serde::de::Error::custom("entity type names are upper case [A-Z0-9_]"))
    }
}

/// A set of built-in types as a bit set (cheap to copy and test).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BuiltInSet(u64);

impl BuiltInSet {
    /// Every built-in type.
    pub fn all() -> Self {
        let mut set = BuiltInSet(0);
        for b in BuiltIn::ALL {
            set.insert(*b);
        }
        set
    }

    /// No type.
    pub const fn empty() -> Self {
        BuiltInSet(0)
    }

    /// Adds a type.
    pub fn insert(&mut self, b: BuiltIn) {
        self.0 |= 1 << b.index();
    }

    /// Whether the set holds a type.
    pub const fn contains(self, b: BuiltIn) -> bool {
        self.0 & (1 << b.index()) != 0
    }

    /// Whether the set holds any of the given types.
    pub fn contains_any(self, types: &[BuiltIn]) -> bool {
        types.iter().any(|b| self.contains(*b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for b in BuiltIn::ALL {
            assert_eq!(BuiltIn::from_name(b.name()), Some(*b));
        }
        assert!(BuiltIn::ALL.len() >= 20 && BuiltIn::ALL.len() < 64);
    }

    #[test]
    fn custom_names_are_checked() {
        assert_eq!(
            EntityType::parse("EMPLOYEE_ID").map(|e| e.name().to_owned()),
            Some("EMPLOYEE_ID".to_owned())
        );
        assert!(EntityType::parse("employee id").is_none());
        assert!(EntityType::parse("").is_none());
        assert!(EntityType::parse("1ABC").is_none());
    }
}
