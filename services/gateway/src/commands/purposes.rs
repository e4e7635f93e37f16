//! Which purposes a withdrawal or objection names ("stop using my data for marketing").
//!
//! The keys are the conventional purpose keys of the consent service; a tenant whose
//! purposes use other keys maps them when it applies the command.

use regex::bytes::{RegexSet, RegexSetBuilder};

/// Purpose keys and the words (folded, all languages) that name them.
const PURPOSES: &[(&str, &str)] = &[
    (
        "marketing",
        r"\b(?:marketing|newsletter|nieuwsbrie|advertis|adverts?\b|ads\b|promo|spam|werbung|werbe|reklame|publicit|pubs?\b|prospection|publicidad|reclame|mailing|offers\b|angebote\b|offres\b|ofertas\b|aanbiedingen|unsubscrib|desabonn|abbestell|boletin|direktwerbung|commercial|comercial)",
    ),
    (
        "model_training",
        r"\b(?:train|entrain|entren|fine-?tun|machine learning|apprentissage automatique|aprendizaje automatico|kunstliche intelligenz|kuenstliche intelligenz|intelligence artificielle|inteligencia artificial|kunstmatige intelligentie|ki-|ai-)|(?:^|[\s(,])(?:ai|ki|ia|llm)\b",
    ),
    (
        "analytics",
        r"\b(?:analy|statisti|estadistic|tracking|track\b|auswert|metriek|mesure d'audience)",
    ),
    (
        "personalization",
        r"\b(?:personali[sz]|personnalis|recommendation|empfehlung|recommandation|recomendacion|aanbeveling)",
    ),
    (
        "profiling",
        r"\b(?:profiling|profilierung|profilage|perfilado|perfiles|profilering|profilbildung)",
    ),
    (
        "third_party_sharing",
        r"\b(?:third[- ]part|dritte|tiers\b|terceros|derden|partner|weitergabe|weitergeben|partage|compart|share with|sharing with|delen met)",
    ),
];

/// Finds purpose keys in a sentence.
pub(crate) struct PurposeFinder {
    set: RegexSet,
}

impl PurposeFinder {
    /// Compiles the lexicon.
    pub fn new() -> Result<Self, regex::Error> {
        let set = RegexSetBuilder::new(PURPOSES.iter().map(|(_, pattern)| *pattern))
            .unicode(false)
            .build()?;
        Ok(Self { set })
    }

    /// Purpose keys named in `sentence`, in the lexicon's order.
    pub fn find(&self, sentence: &[u8]) -> Vec<String> {
        self.set
            .matches(sentence)
            .iter()
            .filter_map(|index| PURPOSES.get(index))
            .map(|(key, _)| (*key).to_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::PurposeFinder;

    #[test]
    fn finds_purposes_in_any_language() {
        let finder = PurposeFinder::new().expect("lexicon compiles");
        assert_eq!(
            finder.find(b"stop using my data for marketing"),
            ["marketing"]
        );
        assert_eq!(
            finder.find(b"keine werbung und kein ki-training"),
            ["marketing", "model_training"]
        );
        assert_eq!(finder.find(b"j'ai une question"), Vec::<String>::new());
        assert_eq!(
            finder.find(b"pour l'analyse et le profilage"),
            ["analytics", "profiling"]
        );
    }
}
