//! The checks of a message's context, shared by `ProcessMessage` and `RedactStream`:
//! every field is bounded before it reaches a cache key, a consent check, a stored turn
//! or an event.

use veil_core::error::ServiceError;
use veil_core::subjects::validate_subject_id;
use veil_core::validate::{MAX_PURPOSES, validate_keys, validate_locale, validate_plain_id};
use veil_proto::gateway::v1::{MessageContext, MessageRole};

use super::validate_conversation_id;

/// The context of a message (`field` names it in errors, e.g. `context`), checked, with
/// its locale normalized (`de-at` -> `de-AT`, so spellings share cached notices), and
/// its role.
pub(super) fn checked(
    field: &str,
    context: Option<MessageContext>,
) -> Result<(MessageContext, MessageRole), ServiceError> {
    let mut context = context.ok_or_else(|| ServiceError::invalid(field, "is required"))?;
    let at = |name: &str| format!("{field}.{name}");
    validate_conversation_id(&at("conversation_id"), &context.conversation_id)?;
    validate_subject_id(&at("subject_id"), &context.subject_id)?;
    let role = MessageRole::try_from(context.role)
        .ok()
        .filter(|r| *r != MessageRole::Unspecified)
        .ok_or_else(|| ServiceError::invalid(at("role"), "is required"))?;
    // Purposes reach the consent check, the stored turn and its event.
    validate_keys(&at("purposes"), &context.purposes, MAX_PURPOSES)?;
    if !context.locale.is_empty() {
        context.locale = validate_locale(&context.locale)
            .map_err(|reason| ServiceError::invalid(at("locale"), reason))?;
    }
    for (name, value) in [
        ("channel", &context.channel),
        ("idempotency_key", &context.idempotency_key),
    ] {
        if !value.is_empty() {
            validate_plain_id(&at(name), value)?;
        }
    }
    Ok((context, role))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> MessageContext {
        MessageContext {
            conversation_id: "c-1".into(),
            subject_id: "user-1".into(),
            role: MessageRole::User as i32,
            purposes: vec!["support".into()],
            locale: "de-at".into(),
            ..Default::default()
        }
    }

    fn refused(change: impl FnOnce(&mut MessageContext)) -> String {
        let mut bad = context();
        change(&mut bad);
        match checked("context", Some(bad)) {
            Ok(_) => panic!("accepted"),
            Err(error @ ServiceError::InvalidArgument { .. }) => error.to_string(),
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn a_good_context_passes_with_its_locale_normalized() {
        let (context, role) = checked("context", Some(context())).expect("valid");
        assert_eq!(role, MessageRole::User);
        assert_eq!(context.locale, "de-AT");
    }

    #[test]
    fn every_field_is_bounded_and_named() {
        type Change = fn(&mut MessageContext);
        let cases: [(&str, Change); 7] = [
            ("context.purposes", |c| {
                c.purposes = (0..=MAX_PURPOSES).map(|i| format!("p{i}")).collect();
            }),
            ("context.purposes[1]", |c| {
                c.purposes = vec!["support".into(), "support".into()];
            }),
            ("context.purposes[0]", |c| {
                c.purposes = vec!["Anna Keller".into()];
            }),
            ("context.locale", |c| c.locale = "x".repeat(40)),
            ("context.channel", |c| c.channel = "a b".into()),
            ("context.idempotency_key", |c| {
                c.idempotency_key = "k".repeat(129);
            }),
            ("context.role", |c| c.role = 0),
        ];
        for (field, change) in cases {
            let message = refused(change);
            assert!(
                message.starts_with(&format!("invalid {field}:")),
                "{field}: {message}"
            );
            assert!(!message.contains("Anna"), "{message}");
        }
    }
}
