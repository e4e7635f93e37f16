//! What the assistant tells the subject once a command is recognised.

use super::CommandKind;

/// A short reply in the subject's language saying what happens next; English for a
/// language without translations.
pub fn suggested_reply(kind: CommandKind, language: &str) -> &'static str {
    in_language(replies(kind), language)
}

/// What the bot adds when the request waits for the subject's one-time code: the bot
/// delivers the code over a channel that proves identity and takes it back in the chat.
pub fn verification_reply(language: &str) -> &'static str {
    in_language(
        [
            "To confirm it's you, we'll send a one-time code to your account's e-mail address or phone; please give it to me here.",
            "Um zu bestätigen, dass Sie es sind, senden wir einen Einmalcode an die E-Mail-Adresse oder Telefonnummer Ihres Kontos; bitte nennen Sie ihn mir hier.",
            "Pour confirmer votre identité, nous enverrons un code à usage unique à l'adresse e-mail ou au téléphone de votre compte ; merci de me l'indiquer ici.",
            "Para confirmar que eres tú, enviaremos un código de un solo uso al correo electrónico o al teléfono de tu cuenta; por favor, indícamelo aquí.",
            "Om te bevestigen dat u het bent, sturen we een eenmalige code naar het e-mailadres of telefoonnummer van uw account; geef die hier aan mij door.",
        ],
        language,
    )
}

/// One of five texts in en, de, fr, es, nl order; English for any other language.
fn in_language([en, de, fr, es, nl]: [&'static str; 5], language: &str) -> &'static str {
    match language {
        "de" => de,
        "fr" => fr,
        "es" => es,
        "nl" => nl,
        _ => en,
    }
}

/// Replies in en, de, fr, es, nl order. Requests promise the GDPR's one-month answer;
/// withdrawals and opt-outs take effect at once.
fn replies(kind: CommandKind) -> [&'static str; 5] {
    match kind {
        CommandKind::Erase => [
            "I've forwarded your request to delete your data. You'll get a confirmation within one month.",
            "Ich habe Ihre Anfrage zur Löschung Ihrer Daten weitergeleitet. Sie erhalten innerhalb eines Monats eine Bestätigung.",
            "J'ai transmis votre demande de suppression de vos données. Vous recevrez une confirmation dans un délai d'un mois.",
            "He enviado tu solicitud de supresión de tus datos. Recibirás una confirmación en el plazo de un mes.",
            "Ik heb uw verzoek om uw gegevens te verwijderen doorgestuurd. U ontvangt binnen een maand een bevestiging.",
        ],
        CommandKind::Access => [
            "I've forwarded your request to see the data we hold about you. You'll receive it within one month.",
            "Ich habe Ihre Auskunftsanfrage weitergeleitet. Sie erhalten die Auskunft über Ihre Daten innerhalb eines Monats.",
            "J'ai transmis votre demande d'accès à vos données. Vous recevrez une réponse dans un délai d'un mois.",
            "He enviado tu solicitud de acceso a tus datos. Recibirás la respuesta en el plazo de un mes.",
            "Ik heb uw verzoek om inzage in uw gegevens doorgestuurd. U ontvangt het antwoord binnen een maand.",
        ],
        CommandKind::Export => [
            "I've forwarded your request for a copy of your data. You'll receive it in a portable format within one month.",
            "Ich habe Ihre Anfrage nach einer Kopie Ihrer Daten weitergeleitet. Sie erhalten sie innerhalb eines Monats in einem übertragbaren Format.",
            "J'ai transmis votre demande de copie de vos données. Vous la recevrez dans un format portable dans un délai d'un mois.",
            "He enviado tu solicitud de una copia de tus datos. La recibirás en un formato portable en el plazo de un mes.",
            "Ik heb uw verzoek om een kopie van uw gegevens doorgestuurd. U ontvangt die binnen een maand in een overdraagbaar formaat.",
        ],
        CommandKind::Rectify => [
            "I've forwarded your request to correct your data. You'll get a confirmation within one month.",
            "Ich habe Ihre Anfrage zur Berichtigung Ihrer Daten weitergeleitet. Sie erhalten innerhalb eines Monats eine Bestätigung.",
            "J'ai transmis votre demande de rectification de vos données. Vous recevrez une confirmation dans un délai d'un mois.",
            "He enviado tu solicitud de rectificación de tus datos. Recibirás una confirmación en el plazo de un mes.",
            "Ik heb uw verzoek om uw gegevens te corrigeren doorgestuurd. U ontvangt binnen een maand een bevestiging.",
        ],
        CommandKind::WithdrawConsent => [
            "Done: I've recorded that you withdraw your consent. It takes effect immediately.",
            "Erledigt: Ich habe den Widerruf Ihrer Einwilligung erfasst. Er gilt ab sofort.",
            "C'est fait : j'ai enregistré le retrait de votre consentement. Il prend effet immédiatement.",
            "Hecho: he registrado la retirada de tu consentimiento. Tiene efecto inmediato.",
            "Gedaan: ik heb de intrekking van uw toestemming vastgelegd. Die gaat direct in.",
        ],
        CommandKind::OptOutAiTraining => [
            "Done: your conversations will no longer be used to train AI models.",
            "Erledigt: Ihre Unterhaltungen werden nicht mehr zum Training von KI-Modellen verwendet.",
            "C'est fait : vos conversations ne seront plus utilisées pour entraîner des modèles d'IA.",
            "Hecho: tus conversaciones ya no se usarán para entrenar modelos de IA.",
            "Gedaan: uw gesprekken worden niet meer gebruikt om AI-modellen te trainen.",
        ],
        CommandKind::Object => [
            "I've forwarded your objection to the processing of your data. You'll get an answer within one month.",
            "Ich habe Ihren Widerspruch gegen die Verarbeitung Ihrer Daten weitergeleitet. Sie erhalten innerhalb eines Monats eine Antwort.",
            "J'ai transmis votre opposition au traitement de vos données. Vous recevrez une réponse dans un délai d'un mois.",
            "He enviado tu oposición al tratamiento de tus datos. Recibirás una respuesta en el plazo de un mes.",
            "Ik heb uw bezwaar tegen de verwerking van uw gegevens doorgestuurd. U ontvangt binnen een maand een antwoord.",
        ],
        CommandKind::Restrict => [
            "I've forwarded your request to restrict the processing of your data. You'll get a confirmation within one month.",
            "Ich habe Ihre Anfrage zur Einschränkung der Verarbeitung Ihrer Daten weitergeleitet. Sie erhalten innerhalb eines Monats eine Bestätigung.",
            "J'ai transmis votre demande de limitation du traitement de vos données. Vous recevrez une confirmation dans un délai d'un mois.",
            "He enviado tu solicitud de limitación del tratamiento de tus datos. Recibirás una confirmación en el plazo de un mes.",
            "Ik heb uw verzoek om beperking van de verwerking van uw gegevens doorgestuurd. U ontvangt binnen een maand een bevestiging.",
        ],
        CommandKind::OptOutSale => [
            "Done: we will not sell or share your personal information.",
            "Erledigt: Wir werden Ihre personenbezogenen Daten weder verkaufen noch weitergeben.",
            "C'est fait : nous ne vendrons ni ne partagerons vos données personnelles.",
            "Hecho: no venderemos ni compartiremos tus datos personales.",
            "Gedaan: wij zullen uw persoonsgegevens niet verkopen of delen.",
        ],
        CommandKind::LimitSensitive => [
            "Done: we will only use your sensitive personal information where it is needed to provide the service.",
            "Erledigt: Wir verwenden Ihre sensiblen Daten nur noch, soweit es für den Dienst nötig ist.",
            "C'est fait : nous n'utiliserons vos données sensibles que lorsque c'est nécessaire au service.",
            "Hecho: solo usaremos tus datos sensibles cuando sea necesario para prestar el servicio.",
            "Gedaan: wij gebruiken uw gevoelige gegevens alleen nog als dat nodig is voor de dienst.",
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::{suggested_reply, verification_reply};
    use crate::commands::CommandKind;

    #[test]
    fn every_kind_has_a_distinct_reply_per_language() {
        for kind in CommandKind::ALL {
            let replies: std::collections::HashSet<_> = ["en", "de", "fr", "es", "nl"]
                .iter()
                .map(|language| suggested_reply(kind, language))
                .collect();
            assert_eq!(replies.len(), 5, "{kind:?}");
        }
        assert_eq!(
            suggested_reply(CommandKind::Erase, "pt"),
            suggested_reply(CommandKind::Erase, "en")
        );
        let verification: std::collections::HashSet<_> = ["en", "de", "fr", "es", "nl"]
            .iter()
            .map(|language| verification_reply(language))
            .collect();
        assert_eq!(verification.len(), 5);
    }
}
