//! French phrases (accents fold away: "données" is matched as "donnees").

use super::CommandKind::{
    Access, Erase, Export, LimitSensitive, Object, OptOutAiTraining, OptOutSale, Rectify, Restrict,
    WithdrawConsent,
};
use super::rules::{Cues, Language, fixed, rule};

/// French rules.
pub(crate) const LANGUAGE: Language = Language {
    code: "fr",
    fragments: &[
        (
            "DATA",
            "(?:mes|toutes mes|l'ensemble de mes|nos|toutes nos) (?:donnees|informations|infos|coordonnees)(?: (?:personnelles|perso|a caractere personnel|privees|stockees))?",
        ),
        (
            "ME",
            "(?:sur moi|me concernant|a mon sujet|de moi|a mon propos|sur nous|nous concernant)",
        ),
        (
            "ABOUT",
            "(?:les |des |toutes les |l'ensemble des )?(?:donnees|informations|infos)(?: personnelles)?~5 {ME}",
        ),
        ("ERASE", "(?:supprim|effac|elimin|detrui|retir)[a-z]*"),
        (
            "ACCOUNT",
            "(?:mon|notre) (?:compte|profil)(?: (?:utilisateur|client))?",
        ),
        (
            "CONTENT",
            "(?:donnees|conversations?|messages?|echanges|discussions?|chats?|contenus?|textes?|informations|questions)",
        ),
        (
            "TRAIN",
            "(?:l'|d')?(?:entrain[a-z]*|apprentissage|(?:former|formation) (?:de |d')?(?:votre |vos |l'|les |des )?(?:ia|modeles?|intelligence))",
        ),
        (
            "AD",
            "(?:d'|l')?(?:newsletters?|lettres? d'information|publicit[a-z]*|pubs?|offres|prospection|promotions?|e-?mails? (?:marketing|promotionnels|publicitaires|commerciaux)|messages (?:publicitaires|promotionnels|commerciaux)|marketing|spams?|sollicitations)",
        ),
        (
            "USE",
            "(?:d'utiliser|de traiter|d'exploiter|d'analyser|de stocker|de collecter|de conserver|de partager|utiliser|traiter|exploiter|analyser)",
        ),
    ],
    rules: &[
        rule(Erase, 0.9, "{ERASE}~2 (?:{DATA}|{ABOUT})"),
        rule(
            Erase,
            0.8,
            "(?:supprim|effac|detrui)[a-z]*(?: (?:completement|definitivement|entierement|totalement))? {ACCOUNT}",
        ),
        rule(
            Erase,
            0.88,
            "{ERASE}~3 tout ce que (?:vous|tu) (?:avez|savez|possedez|stockez|as|sais) {ME}",
        ),
        rule(
            Erase,
            0.9,
            "oubliez(?:-| )moi|oublie(?:-| )moi|m'oubli[a-z]*",
        ),
        rule(
            Erase,
            0.95,
            "droit a l'oubli|droit a l'effacement|droit a la suppression|droit d'effacement",
        ),
        rule(
            Erase,
            0.9,
            "demande (?:de |d')(?:suppression|effacement)|(?:suppression|effacement) (?:de |des )?(?:toutes )?(?:mes|nos) (?:donnees|informations)|(?:suppression|effacement) (?:de )?{ACCOUNT}",
        ),
        rule(
            Erase,
            0.86,
            "(?:mes|nos) (?:donnees|informations)~4 (?:supprimees|effacees|detruites)",
        ),
        rule(
            Access,
            0.9,
            "quel(?:le)?s? (?:[a-z]+ )?(?:donnees|informations|infos)~5 {ME}",
        ),
        rule(
            Access,
            0.8,
            "(?:qu'est-ce que|que) (?:vous savez|savez-vous|tu sais|sais-tu|vous avez|avez-vous)~1 (?:de|sur) (?:moi|nous)|ce que (?:vous savez|vous avez) (?:de|sur) moi",
        ),
        rule(
            Access,
            0.85,
            "(?:acceder|acces) (?:a |aux )?(?:{DATA}|{ABOUT})",
        ),
        rule(
            Access,
            0.85,
            "(?:voir|consulter|montrez(?:-| )moi|montre(?:-| )moi|afficher|visualiser)~2 (?:{DATA}|{ABOUT})",
        ),
        rule(
            Access,
            0.92,
            "droit d'acces|demande d'acces~3 (?:donnees|rgpd|article)",
        ),
        rule(
            Access,
            0.7,
            "(?:avez-vous|conservez-vous|stockez-vous|detenez-vous|gardez-vous|traitez-vous)~2 (?:donnees|informations)~2 {ME}",
        ),
        rule(
            Export,
            0.86,
            "(?:export|telecharg|envoy|transmet|transfer|recuper|obten|recevoir|envoie)[a-z]*(?:-moi| moi| nous)?~3 {DATA}",
        ),
        rule(
            Export,
            0.86,
            "cop(?:ie|ies)~2 (?:de |des |d')?(?:{DATA}|{ABOUT})",
        ),
        rule(Export, 0.92, "portabilite|droit a la portabilite"),
        rule(
            Rectify,
            0.85,
            "(?:corrig|rectifi|modifi|actualis)[a-z]*~2 {DATA}|mett[a-z]* a jour~2 {DATA}|{DATA}~3 (?:corrigees|rectifiees|mises a jour)",
        ),
        fixed(
            Rectify,
            0.85,
            "(?:mon|ma|mes) (?:nom|prenom|adresse(?: e-?mail| mail| postale)?|e-?mail|date de naissance|numero de telephone|numero|donnees|informations|coordonnees)~3 (?:n')?(?:est|sont) (?:fausse?s?|incorrecte?s?|erronee?s?|inexacte?s?|mal orthographiee?s?|pas (?:correcte?s?|a jour|bonne?s?|exacte?s?)|obsolete?s?|perimee?s?)",
        ),
        rule(
            Rectify,
            0.85,
            "(?:vous avez|tu as) mal (?:ecrit|orthographie|enregistre|saisi) (?:mon|ma|mes)",
        ),
        rule(
            Rectify,
            0.95,
            "droit de rectification|(?:rectification|correction) de (?:mes|toutes mes) (?:donnees|informations)",
        ),
        rule(
            WithdrawConsent,
            0.95,
            "(?:retir|revoqu|annul|reprend|retract)[a-z]*~2 (?:mon|mes|le|ma) (?:consentement|accord|autorisation)s?|retrait (?:de |du )?(?:mon )?consentement",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "ne (?:veux|souhaite|desire|voulons) plus (?:de |d'|recevoir )?(?:votre |vos |la |les |ces |cette )?{AD}|je ne (?:consens|donne) plus|je ne suis plus d'accord|je ne (?:consens|donne) pas (?:mon )?(?:consentement|accord)",
        ),
        fixed(
            WithdrawConsent,
            0.88,
            "(?:arretez|arrete|cessez|cesse|stop|arreter)~2 {USE}~2 {DATA}",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "(?:n'utilisez|n'utilise|ne traitez|n'exploitez|ne partagez|n'analysez)(?: plus| pas| jamais)? {DATA}~3 (?:pour|a des fins|dans|a)",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "(?:ne (?:veux|souhaite|desire|voulons|souhaitons) plus|ne plus) recevoir~3 {AD}|(?:plus de|assez de|stop aux?) {AD}",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "(?:desabonn|desinscri|desinscriv|retir)[a-z]*(?:-moi| moi| nous)?~4 (?:de la |de |des |du |de votre |de vos )?(?:{AD}|liste de diffusion|mailing|listes?)",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "(?:arretez|cessez|arrete|cesse)~2 (?:de )?m'envoyer~3 (?:{AD}|e-?mails?|messages|sms)",
        ),
        fixed(
            OptOutAiTraining,
            0.92,
            "(?:ne|n'[a-z]+|pas|jamais|plus|refuse|exclu[a-z]*)~6 {CONTENT}~5 {TRAIN}",
        ),
        fixed(
            OptOutAiTraining,
            0.92,
            "(?:exclu|retir|soustrai)[a-z]*~6 (?:de l'|de |des |du |a l')?{TRAIN}",
        ),
        fixed(
            OptOutAiTraining,
            0.93,
            "(?:opposer?|m'oppose|nous opposons|refuse)~6 {TRAIN}",
        ),
        rule(
            Object,
            0.9,
            "(?:je m'oppose|nous nous opposons|je m'opposes)~3 (?:au traitement|a l'utilisation|au profilage|a la prospection|a l'exploitation|a la collecte|au marketing|a l'analyse)|droit d'opposition",
        ),
        rule(
            Restrict,
            0.9,
            "limit[a-z]*~2 (?:du |le )?traitement~2 (?:de |des )?(?:mes|nos) donnees|droit a la limitation|limitation du traitement",
        ),
        fixed(
            OptOutSale,
            0.9,
            "(?:ne (?:vendez|vends|partagez|partage|cedez|transmettez|revendez)|ne pas (?:vendre|partager|ceder|transmettre|revendre))~1 {DATA}|(?:refuse|oppose|interdis)[a-z]*~3 (?:la vente|la revente|le partage|la cession)~2 (?:de )?(?:mes|nos) donnees",
        ),
        fixed(
            LimitSensitive,
            0.92,
            "limit[a-z]*~3 (?:de )?(?:mes )?donnees sensibles",
        ),
    ],
    cues: Cues {
        negation: "ne|n'|pas|jamais|aucun[a-z]*",
        neutral: &[
            "sais",
            "sait",
            "savons",
            "comprends",
            "trouve",
            "arrive",
            "parviens",
            "reussis",
            "peux",
            "pouvez",
            "sur",
            "vois",
        ],
        question: "comment|est-il possible|est-ce possible|est-ce qu'on peut|ou (?:puis-je|peut-on)|qu'est-ce que (?:le|la|l')|c'est quoi|que signifie",
        trailing_negation: "",
        subjects: &[
            "vous", "tu", "ils", "elles", "on", "il", "elle", "nous", "qui",
        ],
        past_auxiliaries: &[
            "ai", "as", "avons", "avez", "ont", "j'ai", "deja", "ete", "avais", "avait",
        ],
        blocked_after: &["mobiles", "cellulaires"],
        stopwords: &[
            "rgpd", "je", "et", "les", "mes", "vous", "de", "est", "pas", "moi", "des", "le", "la",
            "mon", "selon", "une", "pour", "donnees", "sur", "du", "au",
        ],
    },
};
