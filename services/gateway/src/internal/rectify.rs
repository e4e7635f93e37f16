//! `RectifySubject` (GDPR Art. 16): the subject's pseudonym map rows are pointed from the
//! vault token of a wrong value to the token of the corrected one, so restoring the old
//! placeholders yields the corrected value and a later turn that mentions the corrected
//! value gets the same placeholder back.
//!
//! A conversation keeps one row per token. Where the conversation already maps the new
//! token (the corrected value was mentioned there too), the old row cannot be re-pointed
//! without a duplicate; it is removed instead, so the wrong value is no longer restored
//! there and the corrected value keeps its own placeholder. Those rows are not counted
//! as updated.

use sqlx::PgPool;
use uuid::Uuid;
use veil_core::error::ServiceError;
use veil_proto::gateway::v1::TokenReplacement;

/// Replacements accepted in one call.
const MAX_REPLACEMENTS: usize = 1_000;
/// Longest token accepted (vault tokens are far shorter).
const MAX_TOKEN_LEN: usize = 256;

/// Old and new tokens as parallel arrays, checked.
pub struct Replacements {
    old: Vec<String>,
    new: Vec<String>,
}

fn check_token(field: String, token: &str) -> Result<(), ServiceError> {
    let ok = !token.is_empty()
        && token.len() <= MAX_TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            field,
            "must be a vault token (1 to 256 characters of [A-Za-z0-9_:.-])",
        ))
    }
}

/// Non-empty, bounded, well-formed, no token replaced twice or by itself, no token the
/// target of two replacements.
pub fn validate(replacements: &[TokenReplacement]) -> Result<Replacements, ServiceError> {
    if replacements.is_empty() {
        return Err(ServiceError::invalid("replacements", "must not be empty"));
    }
    if replacements.len() > MAX_REPLACEMENTS {
        return Err(ServiceError::invalid(
            "replacements",
            format!("at most {MAX_REPLACEMENTS} items"),
        ));
    }
    let mut old = Vec::with_capacity(replacements.len());
    let mut new = Vec::with_capacity(replacements.len());
    for (i, replacement) in replacements.iter().enumerate() {
        check_token(
            format!("replacements[{i}].old_token"),
            &replacement.old_token,
        )?;
        check_token(
            format!("replacements[{i}].new_token"),
            &replacement.new_token,
        )?;
        if replacement.old_token == replacement.new_token {
            return Err(ServiceError::invalid(
                format!("replacements[{i}].new_token"),
                "must differ from old_token",
            ));
        }
        if old.contains(&replacement.old_token) {
            return Err(ServiceError::invalid(
                format!("replacements[{i}].old_token"),
                "is a duplicate",
            ));
        }
        // Two rows of one conversation pointed to one token would collide on its key.
        if new.contains(&replacement.new_token) {
            return Err(ServiceError::invalid(
                format!("replacements[{i}].new_token"),
                "is a duplicate",
            ));
        }
        old.push(replacement.old_token.clone());
        new.push(replacement.new_token.clone());
    }
    Ok(Replacements { old, new })
}

/// Re-points the subject's rows in one transaction of two set-based statements; returns
/// the rows re-pointed.
pub async fn repoint(
    pool: &PgPool,
    tenant: Uuid,
    subject_ref: &str,
    replacements: &Replacements,
) -> Result<i64, ServiceError> {
    let mut tx = veil_core::db::begin(pool).await?;
    // First the rows whose conversation already maps the new token (see the module doc).
    sqlx::query(
        "DELETE FROM conversation_pseudonyms p
         USING UNNEST($3::text[], $4::text[]) AS r(old_token, new_token)
         WHERE p.tenant_id = $1 AND p.subject_ref = $2 AND p.token = r.old_token
           AND EXISTS (SELECT 1 FROM conversation_pseudonyms q
                       WHERE q.tenant_id = $1 AND q.conversation_id = p.conversation_id
                         AND q.token = r.new_token)",
    )
    .bind(tenant)
    .bind(subject_ref)
    .bind(&replacements.old)
    .bind(&replacements.new)
    .execute(&mut *tx)
    .await?;
    let updated = sqlx::query(
        "UPDATE conversation_pseudonyms p SET token = r.new_token
         FROM UNNEST($3::text[], $4::text[]) AS r(old_token, new_token)
         WHERE p.tenant_id = $1 AND p.subject_ref = $2 AND p.token = r.old_token",
    )
    .bind(tenant)
    .bind(subject_ref)
    .bind(&replacements.old)
    .bind(&replacements.new)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(i64::try_from(updated).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(old: &str, new: &str) -> TokenReplacement {
        TokenReplacement {
            old_token: old.into(),
            new_token: new.into(),
        }
    }

    #[test]
    fn replacements_are_checked_naming_the_field() {
        assert!(validate(&[pair("tok_a", "tok_b")]).is_ok());
        let cases = [
            (vec![], "replacements"),
            (vec![pair("", "tok_b")], "replacements[0].old_token"),
            (vec![pair("tok_a", "a b")], "replacements[0].new_token"),
            (vec![pair("tok_a", "tok_a")], "replacements[0].new_token"),
            (
                vec![pair("tok_a", "tok_b"), pair("tok_a", "tok_c")],
                "replacements[1].old_token",
            ),
        ];
        for (input, field) in cases {
            match validate(&input) {
                Err(ServiceError::InvalidArgument { field: named, .. }) => {
                    assert_eq!(named, field)
                }
                _ => panic!("{field} should be refused"),
            }
        }
    }
}
