//! Dutch phrases.

use super::CommandKind::{
    Access, Erase, Export, LimitSensitive, Object, OptOutAiTraining, OptOutSale, Rectify, Restrict,
    WithdrawConsent,
};
use super::rules::{Cues, Language, fixed, rule};

/// Dutch rules.
pub(crate) const LANGUAGE: Language = Language {
    code: "nl",
    fragments: &[
        (
            "DATA",
            "(?:mijn|al mijn|onze|al onze)(?: (?:persoonlijke|persoonsgebonden|opgeslagen|prive|eigen))? (?:gegevens|data|informatie|persoonsgegevens|info|klantgegevens)",
        ),
        ("ME", "(?:over mij|van mij|over ons|van ons|over me)"),
        (
            "ABOUT",
            "(?:de |alle |welke )?(?:gegevens|informatie|data|persoonsgegevens)(?: die)?~4 {ME}",
        ),
        (
            "ERASE",
            "(?:verwijder[a-z]*|wis|wist|wissen|vernietig[a-z]*|schrap[a-z]*)",
        ),
        (
            "ERASED",
            "(?:verwijderen|verwijderd|wissen|gewist|vernietigen|vernietigd|schrappen|geschrapt)",
        ),
        (
            "ACCOUNT",
            "(?:mijn|ons) (?:account|profiel|gebruikersaccount|klantaccount|gebruikersprofiel)",
        ),
        (
            "CONTENT",
            "(?:gegevens|data|chats?|gesprekken|berichten|informatie|conversaties|inhoud|teksten|vragen)",
        ),
        ("TRAIN", "(?:ai-?)?(?:train[a-z]*)"),
        (
            "AD",
            "(?:reclame[a-z]*|nieuwsbrie[a-z]*|marketing[a-z]*|aanbiedingen|promotie[a-z]*|spam|mailings?|commerciele (?:e-?mails|berichten))",
        ),
        (
            "USE",
            "(?:gebruiken|verwerken|gebruik|verwerking|analyseren|delen|opslaan|bewaren)",
        ),
    ],
    rules: &[
        rule(Erase, 0.9, "{ERASE}~3 (?:{DATA}|{ABOUT})"),
        rule(Erase, 0.86, "(?:{DATA}|{ABOUT})~4 {ERASED}"),
        rule(
            Erase,
            0.8,
            "{ERASE}(?: (?:volledig|definitief|helemaal))? {ACCOUNT}|{ACCOUNT}~3 {ERASED}",
        ),
        rule(
            Erase,
            0.88,
            "{ERASE}~2 alles (?:wat (?:jullie|u|je) )?(?:over mij|van mij)|alles (?:over mij|van mij)~3 {ERASED}",
        ),
        rule(Erase, 0.9, "vergeet (?:me|mij)|(?:me|mij) (?:te )?vergeten"),
        rule(
            Erase,
            0.95,
            "recht op (?:vergetelheid|verwijdering|gegevenswissing|wissing|om vergeten te worden)",
        ),
        rule(
            Erase,
            0.9,
            "verwijderverzoek|verwijderingsverzoek|verzoek (?:tot|om) (?:verwijdering|gegevensverwijdering)|verwijdering van {DATA}",
        ),
        rule(
            Access,
            0.9,
            "welke (?:[a-z]+ )?(?:gegevens|data|informatie|persoonsgegevens)~5 {ME}",
        ),
        rule(
            Access,
            0.8,
            "wat (?:weten|weet|hebben|heeft|bewaren|bewaart) (?:jullie|u|je)~2 (?:over|van) (?:mij|ons)",
        ),
        rule(
            Access,
            0.88,
            "(?:inzage|inzicht)~3 (?:in )?(?:{DATA}|{ABOUT})|inzageverzoek|recht (?:op|van) inzage",
        ),
        rule(
            Access,
            0.85,
            "{DATA}~3 (?:inzien|bekijken|zien|opvragen|inkijken)|laat (?:me|mij|ons)~1 {DATA}~1 zien|(?:toon|bekijk) (?:me |mij )?{DATA}",
        ),
        rule(
            Access,
            0.7,
            "(?:hebben|bewaren|verwerken|verzamelen|heeft|bewaart) (?:jullie|u|je) (?:gegevens|data|informatie)~2 {ME}",
        ),
        rule(
            Export,
            0.86,
            "(?:exporteer|download|stuur|verstuur|mail|stuurt|zend|geef)[a-z]*(?: me| mij| ons)?~3 {DATA}",
        ),
        rule(
            Export,
            0.86,
            "{DATA}~3 (?:exporteren|downloaden|opsturen|toesturen|sturen|ontvangen|overdragen|meenemen|overzetten|krijgen)",
        ),
        rule(Export, 0.86, "kopie (?:van )?(?:{DATA}|{ABOUT})"),
        rule(
            Export,
            0.92,
            "(?:data|gegevens)?overdraagbaarheid|recht op overdraagbaarheid",
        ),
        rule(
            Rectify,
            0.85,
            "(?:corrigeer|verbeter|wijzig|pas|update|actualiseer|rectificeer)[a-z]*~2 {DATA}(?: aan)?|{DATA}~3 (?:corrigeren|verbeteren|wijzigen|aanpassen|bijwerken|rectificeren)|{DATA}~3 (?:aangepast|gecorrigeerd|verbeterd|bijgewerkt) (?:worden|wordt)",
        ),
        fixed(
            Rectify,
            0.85,
            "mijn (?:naam|achternaam|voornaam|adres|e-?mailadres|e-?mail|geboortedatum|telefoonnummer|gegevens)~3 (?:is|zijn|staat|staan) (?:fout|verkeerd|onjuist|incorrect|niet juist|niet correct|verouderd|verkeerd gespeld|niet goed)|mijn (?:naam|achternaam|voornaam|adres|e-?mailadres|e-?mail|geboortedatum|telefoonnummer|gegevens)~2 (?:klopt|kloppen) niet",
        ),
        rule(
            Rectify,
            0.95,
            "recht op (?:rectificatie|correctie|verbetering)",
        ),
        rule(
            WithdrawConsent,
            0.95,
            "(?:trek|trekken|herroep|herroepen)~3 (?:mijn |de |onze )?(?:toestemming|akkoord|instemming)~4 (?:in|terug)|(?:toestemming|instemming)~3 (?:intrekken|terugtrekken|ingetrokken|herroepen|terugnemen)|intrekking (?:van )?(?:mijn )?toestemming",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "(?:ik|wij) (?:geef|geven) (?:geen|niet langer|niet meer) toestemming|(?:ik ga|ga ik) niet (?:meer )?akkoord",
        ),
        fixed(
            WithdrawConsent,
            0.88,
            "(?:stop|stopt|stoppen) (?:met )?(?:het )?{USE}~1 (?:van )?{DATA}",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "(?:gebruik|verwerk|gebruikt|verwerkt|deel|deelt)~1 {DATA}~4 (?:niet meer|nooit meer|niet langer|niet) (?:voor|om|met)",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "(?:afmelden|uitschrijven|schrijf (?:me|mij) uit|meld (?:me|mij) af|afmelding)~4 {AD}|{AD}~3 (?:afmelden|uitschrijven|opzeggen)|(?:meld|schrijf) (?:me|mij)~3 {AD}~1 (?:af|uit)",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "(?:wil|wens|hoef|willen)~2 geen {AD}|geen {AD}(?: meer)? (?:meer|ontvangen|sturen)|(?:stop|stopt|stoppen) (?:met )?(?:het )?(?:sturen|mailen|versturen)~2 {AD}",
        ),
        fixed(
            OptOutAiTraining,
            0.92,
            "{CONTENT}~6 (?:niet|nooit|geen)~5 {TRAIN}",
        ),
        fixed(
            OptOutAiTraining,
            0.92,
            "(?:niet|nooit|geen)~5 {CONTENT}~5 {TRAIN}",
        ),
        fixed(
            OptOutAiTraining,
            0.92,
            "(?:sluit|uitsluiten|uitgesloten|haal)~5 (?:van|voor|uit)~2 {TRAIN}",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "{AD}~2 (?:niet meer|niet langer|nooit meer) (?:ontvangen|krijgen|hebben|sturen|toesturen)",
        ),
        fixed(OptOutAiTraining, 0.93, "bezwaar~5 {TRAIN}"),
        fixed(
            OptOutAiTraining,
            0.92,
            "train[a-z]*~3 (?:niet|nooit)~2 (?:met|op) {DATA}",
        ),
        rule(
            Object,
            0.9,
            "(?:maak|maken|teken|tekenen) bezwaar~4 (?:verwerking|gebruik|profilering|marketing|reclame|opslag)|recht (?:van|op) bezwaar|bezwaar (?:tegen|op) (?:de |het )?(?:verwerking|profilering|gebruik)",
        ),
        rule(
            Restrict,
            0.9,
            "(?:beperk|beperking|beperken)[a-z]*~3 (?:van )?(?:de )?verwerking|recht op beperking",
        ),
        fixed(
            OptOutSale,
            0.9,
            "(?:verkoop|verkoopt|verkopen|deel|deelt|delen)~1 {DATA}~2 (?:niet|nooit)|{DATA}~3 (?:niet|nooit)~2 (?:verkopen|verkocht|doorverkopen|doorverkocht|verkoopt)|(?:niet|nooit)~2 {DATA}~2 (?:verkopen|doorverkopen)",
        ),
        fixed(
            LimitSensitive,
            0.92,
            "beperk[a-z]*~3 (?:van )?(?:mijn )?gevoelige (?:gegevens|data|informatie)",
        ),
    ],
    cues: Cues {
        negation: "niet|nooit|geen",
        neutral: &[
            "weet", "weten", "snap", "begrijp", "vind", "kan", "kunnen", "lukt", "zeker", "werkt",
        ],
        question: "hoe|is het mogelijk|waar kan|wat (?:is|betekent)",
        trailing_negation: "niet|nooit",
        subjects: &["jullie", "u", "ze", "zij", "hij", "het", "wij", "we"],
        past_auxiliaries: &["heb", "hebt", "heeft", "hebben", "had"],
        blocked_after: &["bundel", "verbruik", "limiet", "abonnement", "verbinding"],
        stopwords: &[
            "avg",
            "ik",
            "en",
            "de",
            "het",
            "mijn",
            "van",
            "niet",
            "jullie",
            "een",
            "is",
            "mij",
            "wil",
            "gegevens",
            "volgens",
            "graag",
            "u",
            "op",
            "dat",
            "te",
            "alstublieft",
        ],
    },
};
