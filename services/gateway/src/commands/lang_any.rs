//! Language-neutral references to the GDPR articles that grant each right.

use super::CommandKind::{Access, Erase, Export, Object, Rectify, Restrict, WithdrawConsent};
use super::rules::{Spec, rule};

/// "Art. 17", "Artikel 15 DSGVO", "article 20 RGPD", "artículo 16": the article alone
/// names the right; the language comes from the hint or the message's other words.
const ARTICLE: &str = r"(?:art|artikel|article|articulo|artigo|articolo)\.?\s*";

/// Rules whose language is resolved per message.
pub(crate) const RULES: &[Spec] = &[
    rule(Access, 0.9, "{ART}15"),
    rule(Rectify, 0.9, "{ART}16"),
    rule(Erase, 0.9, "{ART}17"),
    rule(Restrict, 0.9, "{ART}18"),
    rule(Export, 0.9, "{ART}20"),
    rule(Object, 0.9, "{ART}21"),
    rule(
        WithdrawConsent,
        0.9,
        r"{ART}7\s*(?:\(\s*3|abs\.?\s*3|para(?:graph)?\.?\s*3|lid\s*3|apartado\s*3|paragraphe\s*3)",
    ),
];

/// The fragments the neutral rules use.
pub(crate) const FRAGMENTS: &[(&str, &str)] = &[("ART", ARTICLE)];
