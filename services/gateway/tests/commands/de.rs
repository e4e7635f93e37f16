//! German cases.

use super::Case;
use veil_gateway::commands::CommandKind::*;

pub const CASES: &[Case] = &[
    ("Bitte löscht meine Daten.", Some(Erase)),
    ("Vergiss mich!", Some(Erase)),
    (
        "Ich möchte, dass Sie alle meine persönlichen Daten löschen",
        Some(Erase),
    ),
    (
        "Ich mache von meinem Recht auf Vergessenwerden Gebrauch",
        Some(Erase),
    ),
    ("Löschen Sie bitte mein Konto", Some(Erase)),
    ("Meine Daten sollen gelöscht werden", Some(Erase)),
    (
        "Löscht alles, was ihr über mich gespeichert habt",
        Some(Erase),
    ),
    ("Wie kann ich mein Konto löschen?", Some(Erase)),
    ("Löschung meiner Daten gemäß Art. 17 DSGVO", Some(Erase)),
    ("Welche Daten habt ihr über mich?", Some(Access)),
    ("DSGVO Auskunft bitte", Some(Access)),
    ("Ich verlange Auskunft nach Art. 15 DSGVO", Some(Access)),
    ("Was wisst ihr über mich?", Some(Access)),
    (
        "Ich möchte meine gespeicherten Daten einsehen",
        Some(Access),
    ),
    (
        "Auskunft über meine gespeicherten Daten, bitte",
        Some(Access),
    ),
    ("Bitte schickt mir eine Kopie meiner Daten", Some(Export)),
    ("Ich möchte meine Daten exportieren", Some(Export)),
    (
        "Ich will mein Recht auf Datenübertragbarkeit nutzen",
        Some(Export),
    ),
    ("Mein Nachname ist falsch geschrieben", Some(Rectify)),
    (
        "Bitte korrigiert meine Daten, die Adresse ist veraltet",
        Some(Rectify),
    ),
    ("Ich widerrufe meine Einwilligung", Some(WithdrawConsent)),
    (
        "Ich ziehe meine Zustimmung zur Datenverarbeitung zurück",
        Some(WithdrawConsent),
    ),
    (
        "Hört auf, meine Daten für Werbung zu nutzen",
        Some(WithdrawConsent),
    ),
    (
        "Ich will keine Werbung mehr bekommen",
        Some(WithdrawConsent),
    ),
    ("Bitte meldet mich vom Newsletter ab", Some(WithdrawConsent)),
    (
        "Verwendet meine Chats nicht zum Trainieren eurer KI",
        Some(OptOutAiTraining),
    ),
    (
        "Ich möchte nicht, dass meine Gespräche für das KI-Training verwendet werden",
        Some(OptOutAiTraining),
    ),
    (
        "Ich widerspreche der Verarbeitung meiner Daten",
        Some(Object),
    ),
    (
        "Bitte schränkt die Verarbeitung meiner Daten ein",
        Some(Restrict),
    ),
    ("Verkauft meine Daten nicht an Dritte", Some(OptOutSale)),
    ("Ich will meine Daten NICHT löschen", None),
    ("Wie lösche ich eine Nachricht?", None),
    ("Könnt ihr meine Rechnung als PDF exportieren?", None),
    (
        "Ich möchte die Lieferadresse meiner Bestellung ändern",
        None,
    ),
    ("Löscht meine Daten bitte nicht", None),
    ("Wie lösche ich ein Foto aus meinem Profil?", None),
    ("Ich habe mein Passwort vergessen", None),
    ("Vergiss mich nicht!", None),
    ("Welche Versandarten bietet ihr an?", None),
    ("Meine Bestellung ist falsch", None),
    ("Kann ich meine Bestellung stornieren?", None),
    ("Schickt mir bitte die Rechnung per E-Mail", None),
    ("Die Daten in der Tabelle sind falsch", None),
    ("Ich brauche eine Kopie der Rechnung", None),
    ("Wie funktioniert das Training für neue Mitarbeiter?", None),
    ("Habt ihr meine Nachricht bekommen?", None),
    ("Ich möchte mein Abo kündigen", None),
    ("Bitte aktualisiert die App", None),
    ("Ich widerspreche Ihnen, das stimmt nicht", None),
    ("Die KI hat mir falsche Informationen gegeben", None),
    ("Ich will meine Daten behalten", None),
    ("Warum wurden meine Daten gelöscht?", None),
    ("Ich weiß nicht, wo meine Bestellung ist", None),
    ("Habt ihr auch vegane Produkte?", None),
    ("Bitte trainiert mich im Umgang mit dem Tool", None),
    ("Ich bin mit der Lieferung nicht einverstanden", None),
];
