//! German phrases (umlauts fold to plain vowels; "ae/oe/ue" spellings are accepted too).

use super::CommandKind::{
    Access, Erase, Export, LimitSensitive, Object, OptOutAiTraining, OptOutSale, Rectify, Restrict,
    WithdrawConsent,
};
use super::rules::{Cues, Language, fixed, rule};

/// German rules.
pub(crate) const LANGUAGE: Language = Language {
    code: "de",
    fragments: &[
        (
            "MY",
            "(?:meine|meiner|unsere|unserer|alle meine|all meine|aller meiner|samtliche|saemtliche|samtlicher|saemtlicher)",
        ),
        (
            "ADJ",
            "(?:(?:personlichen|persoenlichen|personenbezogenen|gespeicherten|privaten|ganzen) )?",
        ),
        (
            "DATA",
            "{MY} {ADJ}(?:daten|informationen|angaben|infos|datensatze|datensaetze|personendaten|kundendaten)",
        ),
        (
            "MINE",
            "(?:meine|meiner|unsere|alle meine|samtliche|saemtliche) {ADJ}(?:daten|informationen|angaben|infos|datensatze|datensaetze|personendaten|kundendaten)",
        ),
        (
            "ACCOUNT",
            "(?:mein|meinen|unser|unseren) (?:konto|account|profil|benutzerkonto|kundenkonto|nutzerkonto|benutzerprofil)",
        ),
        (
            "ERASE",
            "(?:losch|loesch|entfern|vernicht|tilg|radier)[a-z]*",
        ),
        ("ME", "(?:uber|ueber|von|zu) (?:mich|mir|uns)"),
        (
            "CONTENT",
            "(?:meine|meiner|unsere|diese|dieses|die|den|meinen) (?:[a-z]+ )?(?:daten|chats?|gesprache|gespraeche|gesprach|gespraech|unterhaltung[a-z]*|konversation[a-z]*|nachrichten|eingaben|texte|inhalte|informationen|prompts)",
        ),
        (
            "TRAIN",
            "(?:ki-|ai-|modell-)?(?:train[a-z]*|trainier[a-z]*)",
        ),
        (
            "USE",
            "(?:nutz|verwend|verarbeit|benutz|speicher|analysier|auswert)[a-z]*",
        ),
        (
            "AD",
            "(?:werbung|werbe[a-z]*|newsletter[a-z]*|marketing[a-z]*|reklame|angebote|spam|direktwerbung)",
        ),
    ],
    rules: &[
        rule(Erase, 0.9, "{ERASE}~3 {DATA}"),
        rule(
            Erase,
            0.88,
            "{MINE}~4 (?:loschen|loeschen|losche|loesche|loscht|loescht|entfernen|entfernt|vernichten|vernichtet|tilgen)|{MINE}~4 (?:geloscht|geloescht|entfernt|vernichtet|getilgt) (?:werden|wird)",
        ),
        rule(
            Erase,
            0.8,
            "{ERASE}~3 {ACCOUNT}|{ACCOUNT}~3 (?:loschen|loeschen|loscht|loescht|entfernen|schliessen und loschen)|{ACCOUNT}~3 (?:geloscht|geloescht|entfernt) (?:werden|wird)",
        ),
        rule(
            Erase,
            0.88,
            "{ERASE}~2 alles,? (?:was (?:ihr|sie|du) )?{ME}|alles {ME}~3 {ERASE}",
        ),
        rule(
            Erase,
            0.88,
            "(?:alle |die |samtliche |saemtliche |jegliche )?(?:daten|informationen|infos|angaben),? (?:die )?(?:ihr|sie|du) {ME}~3 (?:ge)?{ERASE}",
        ),
        rule(
            Erase,
            0.88,
            "{ERASE}~3 (?:alle |die |samtliche |saemtliche |jegliche )?(?:daten|informationen|infos|angaben) {ME}",
        ),
        rule(
            Erase,
            0.9,
            "(?:alle |die |samtliche |saemtliche |jegliche )?(?:daten|informationen|infos|angaben) {ME}~3 (?:loschen|loeschen|loscht|loescht|entfernen|entfernt|vernichten)",
        ),
        rule(
            Erase,
            0.9,
            "vergiss mich|vergesst mich|vergessen sie mich|(?:mich|alles uber mich|alles ueber mich) vergessen",
        ),
        rule(
            Erase,
            0.95,
            "recht auf (?:vergessen(?:werden| werden)?|loschung|loeschung)",
        ),
        rule(
            Erase,
            0.9,
            "(?:loschantrag|loeschantrag|loschungsantrag|loeschungsantrag|antrag auf (?:loschung|loeschung)|(?:loschung|loeschung) (?:meiner|aller meiner|unserer) (?:[a-z]+ )?(?:daten|informationen|angaben)|(?:loschung|loeschung) (?:meines|des) (?:kontos|accounts|profils))",
        ),
        rule(
            Access,
            0.9,
            "(?:welche|was fur|was fuer) (?:[a-z]+ )?(?:daten|informationen|infos|angaben)~4 {ME}",
        ),
        rule(
            Access,
            0.8,
            "was (?:wisst|wissen|weisst|weiss|speichert|speichern|habt|haben) (?:ihr|sie|du)~2 (?:uber|ueber|von) (?:mich|mir|uns)",
        ),
        rule(
            Access,
            0.92,
            "(?:dsgvo|datenschutz)(?:-| )?auskunft|auskunftsersuchen|auskunftsanfrage|auskunftsantrag|auskunftsrecht|recht auf auskunft|datenauskunft|selbstauskunft",
        ),
        rule(
            Access,
            0.95,
            "auskunft~3 (?:nach|gemass|gemaess|gem\\.?|laut) (?:(?:art|artikel)\\.?\\s*15|dsgvo|art|artikel)",
        ),
        rule(
            Access,
            0.9,
            "auskunft~2 (?:uber|ueber|zu)~5 (?:daten|informationen|angaben)",
        ),
        rule(
            Access,
            0.85,
            "(?:zeig|zeigt|zeigen sie)(?: mir| uns)?~2 {MINE}|{MINE}~3 (?:sehen|einsehen|anzeigen|ansehen|abfragen)|einsicht in {MINE}",
        ),
        rule(
            Access,
            0.7,
            "(?:speichert|habt|haben|verarbeitet|verarbeiten|sammelt|sammeln|hast|speichern) (?:ihr|sie|du) (?:daten|informationen|infos)~2 {ME}",
        ),
        rule(
            Export,
            0.9,
            "{MINE}~3 (?:exportier|herunter(?:zu)?lad|runter(?:zu)?lad|download|zusend|zuschick|ubertrag|uebertrag|ubermittel|uebermittel)[a-z]*",
        ),
        rule(
            Export,
            0.85,
            "(?:exportier[a-z]*|schick[a-z]*|send[a-z]*|ubermittel[a-z]*|uebermittel[a-z]*|gib|gebt|geben sie)(?: mir| uns)?~2 {MINE}",
        ),
        rule(Export, 0.88, "kopie~3 {DATA}"),
        rule(
            Export,
            0.92,
            "datenubertragbarkeit|datenuebertragbarkeit|recht auf (?:daten)?(?:ubertragbarkeit|uebertragbarkeit)|datenexport|datenkopie",
        ),
        rule(
            Rectify,
            0.85,
            "(?:korrigier|berichtig|aktualisier|andern|aendern|richtigstell|verbesser)[a-z]*~3 {MINE}|{MINE}~3 (?:korrigieren|korrigiert werden|berichtigen|berichtigt werden|aktualisieren|aktualisiert werden|andern|aendern|geandert werden|geaendert werden|richtigstellen|richtig stellen|verbessern)",
        ),
        fixed(
            Rectify,
            0.85,
            "(?:mein|meine) (?:name|nachname|vorname|e-mail(?:-adresse)?|email(?:-adresse)?|mailadresse|adresse|anschrift|geburtsdatum|telefonnummer|handynummer|daten|angaben)~3 (?:ist|sind) (?:falsch|nicht korrekt|nicht richtig|fehlerhaft|veraltet|inkorrekt|unrichtig|falsch geschrieben|nicht aktuell)|(?:mein|meine) (?:name|nachname|vorname|e-mail(?:-adresse)?|email(?:-adresse)?|mailadresse|adresse|anschrift|geburtsdatum|telefonnummer|handynummer|daten|angaben)~2 (?:stimmt|stimmen) nicht|(?:ihr habt|sie haben|du hast) (?:meinen|meine|mein) (?:namen|nachnamen|vornamen|adresse|e-mail-adresse|email-adresse|e-mail|geburtsdatum|telefonnummer|daten)~2 falsch",
        ),
        rule(
            Rectify,
            0.95,
            "(?:berichtigung|korrektur) (?:meiner|der|aller) (?:[a-z]+ )?(?:daten|angaben)|recht auf berichtigung",
        ),
        rule(
            WithdrawConsent,
            0.95,
            "(?:widerruf[a-z]*|zieh[a-z]*|entzieh[a-z]*|nehm[a-z]*)~3 (?:meine |die |meiner |der |unsere )?(?:einwilligung|zustimmung|einverstandniserklarung|einverstaendniserklaerung|erlaubnis|einverstandnis)(?:se)?(?: [a-z]+){0,4} (?:zuruck|zurueck)|(?:widerruf[a-z]*|entzieh[a-z]*|zuruckzieh[a-z]*|zurueckzieh[a-z]*)~3 (?:meine |die |meiner |der |unsere )?(?:einwilligung|zustimmung|einverstandniserklarung|einverstaendniserklaerung|erlaubnis)",
        ),
        rule(
            WithdrawConsent,
            0.95,
            "(?:einwilligung|zustimmung|erlaubnis)~3 (?:widerruf|zuruckzieh|zurueckzieh|zuruckgezog|zurueckgezog|entzieh)[a-z]*|widerruf (?:meiner|der) (?:einwilligung|zustimmung)",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "{MINE}~4 (?:nicht mehr|nie mehr|nicht langer|nicht laenger|nicht) (?:fur|fuer|zu|zur|zum) ~3{USE}|{MINE}~4 (?:nicht mehr|nicht langer|nicht laenger) {USE}",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "(?:nutzt|verwendet|verarbeitet|benutzt|nutzen sie|verwenden sie|verarbeiten sie)~1 {MINE}~4 nicht mehr",
        ),
        fixed(
            WithdrawConsent,
            0.88,
            "(?:hort|hoert|horen sie|hoeren sie|hor) auf~3 {MINE}~3 (?:zu )?{USE}|(?:nicht mehr|nicht langer|nicht laenger),? dass (?:ihr|sie|du) {MINE}~4 {USE}",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "(?:will|mochte|moechte|wollen|mochten|moechten|bitte|wunsche|wuensche)~2 (?:keine|keinen) {AD}|(?:keine|keinen) {AD} mehr",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "(?:abmelden|abbestellen|austragen|kundig[a-z]*|kuendig[a-z]*|meld[a-z]* (?:mich|uns))~3 (?:vom|von|aus dem|aus der|von der) {AD}|{AD}~2 (?:abmelden|abbestellen|austragen)|(?:bestelle|bestellt|melde|meldet|trag|tragt|tragen sie)~3 {AD}~2 (?:ab|aus)",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "(?:hort|hoert|horen sie|hoeren sie) auf~3 {AD}",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "(?:euren |ihren |den |eure |ihre |die |diesen |diese )?{AD}~2 (?:nicht mehr|nicht langer|nicht laenger) (?:bekommen|erhalten|empfangen|haben|zugeschickt|zuschicken|schicken)",
        ),
        fixed(
            OptOutAiTraining,
            0.9,
            "nichts,? was (?:ich|wir)~4 (?:schreibe|schreiben|sage|sagen|eingebe|tippe|schicke|sende)~5 {TRAIN}",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "(?:ich bin|wir sind) (?:nicht mehr|nicht langer|nicht laenger) (?:damit )?einverstanden",
        ),
        fixed(
            OptOutAiTraining,
            0.92,
            "{CONTENT}~6 (?:nicht|nie|niemals|keinesfalls)~5 {TRAIN}",
        ),
        fixed(
            OptOutAiTraining,
            0.92,
            "(?:nicht|nie|niemals|keinesfalls|kein|keine)~4 {CONTENT}~5 {TRAIN}",
        ),
        fixed(
            OptOutAiTraining,
            0.93,
            "(?:widersprech|widerspruch|widerspreche)[a-z]*~5 {TRAIN}",
        ),
        fixed(
            OptOutAiTraining,
            0.92,
            "(?:schliesst|schliessen sie|nehmt|nehmen sie|schliess)~4 (?:vom|aus dem|von dem) {TRAIN}~1 (?:aus|heraus|raus)|{TRAIN}~2 (?:ausschliessen|deaktivieren|abschalten|ausschalten|abmelden|widersprechen)",
        ),
        fixed(
            OptOutAiTraining,
            0.9,
            "(?:kein|keine|keinen) {TRAIN}~3 (?:mit|auf|uber|ueber) {CONTENT}",
        ),
        rule(
            Object,
            0.9,
            "(?:ich|wir) (?:widerspreche|widersprechen)~4 (?:der |die |dem )?(?:[a-z]+ )?(?:verarbeitung|nutzung|verwendung|profil[a-z]*|werbung|direktwerbung|datenverarbeitung|speicherung|auswertung)",
        ),
        rule(
            Object,
            0.9,
            "widerspruch (?:gegen|zur|nach)~4 (?:verarbeitung|nutzung|art|profiling|werbung|direktwerbung|datenverarbeitung|verwendung)|widerspruchsrecht|lege[a-z]* widerspruch ein",
        ),
        rule(
            Restrict,
            0.9,
            "(?:schrankt|schraenkt|schranken sie|schraenken sie)~3 (?:verarbeitung|nutzung)~4 ein|(?:sperrt|sperren sie|sperre|sperr) {MINE}",
        ),
        rule(
            Restrict,
            0.9,
            "(?:einschrankung|einschraenkung) (?:der )?(?:verarbeitung|datenverarbeitung)|verarbeitung~4 (?:einschranken|einschraenken)|sperrung {MINE}|{MINE}~2 sperren|recht auf (?:einschrankung|einschraenkung)",
        ),
        fixed(
            OptOutSale,
            0.9,
            "(?:verkauft|verkaufen sie|verkauf|teilt|teilen sie|gebt|geben sie)~1 {MINE}~3 (?:nicht|niemals|nie)|{MINE}~4 (?:nicht|niemals|nie)~3 (?:verkauf|weitergeb|weitergegeben|teilen|geteilt|weiterverkauf)[a-z]*|(?:kein|keinen) (?:verkauf|weiterverkauf|weitergabe) {MINE}",
        ),
        fixed(
            LimitSensitive,
            0.92,
            "(?:nutzung|verwendung|verarbeitung) (?:meiner |der )?(?:sensiblen|sensibler)~2 (?:daten|informationen)~3 (?:einschranken|einschraenken|begrenzen)",
        ),
    ],
    cues: Cues {
        negation: "nicht|kein|keine|keinen|niemals|nie|auf keinen fall",
        neutral: &[
            "weiss",
            "weis",
            "wei",
            "verstehe",
            "finde",
            "kann",
            "kannst",
            "konnen",
            "koennen",
            "klappt",
            "funktioniert",
            "sicher",
            "schaffe",
            "gelingt",
            "geht",
        ],
        question: "warum|wieso|weshalb|wie (?:kann|konnen|koennen|kann man|lasst|laesst|funktioniert|geht|mache|losche|loesche|exportiere|andere|aendere|widerrufe|melde)|ist es (?:moglich|moeglich)|gibt es (?:eine|einen) (?:moglichkeit|moeglichkeit|weg)|wo (?:kann|finde)|was (?:ist|bedeutet)|erklar|erklaer",
        trailing_negation: "nicht|nie|niemals",
        subjects: &[],
        past_auxiliaries: &[],
        blocked_after: &["volumen", "verbindung", "tarif"],
        stopwords: &[
            "dsgvo", "ich", "und", "die", "der", "meine", "bitte", "nicht", "ist", "mir", "mich",
            "sie", "ihr", "das", "nach", "daten", "eine", "zu", "mit", "gemass", "habe",
        ],
    },
};
