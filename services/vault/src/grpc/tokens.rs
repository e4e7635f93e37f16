//! `Tokenize` and `Detokenize`.

use std::collections::{HashMap, HashSet};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;
use tonic::Request;
use veil_core::crypto::{Aad, DataCipher, SEAL_OVERHEAD, TOKEN_PREFIX, token_for};
use veil_core::db::retry_if_lost;
use veil_core::error::ServiceError;
use veil_core::types::{Role, SubjectRef, TenantId};
use veil_proto::events::v1::event::Payload;
use veil_proto::events::v1::{RevealKind, VaultRevealed};
use veil_proto::vault::v1::{
    DetokenizeRequest, DetokenizeResponse, DetokenizeResult, TokenResult, TokenizeRequest,
    TokenizeResponse,
};

use super::validate as check;
use crate::error::{VaultError, VaultResult, invalid};
use crate::state::{Vault, event_context};
use crate::store::keys::{self as key_sql, SubjectKeyRow};
use crate::store::tokens::{self as sql, TokenRows};

const TOKEN_VALUE_DOMAIN: &str = "veil.token_value.v1";

/// The 16 MAC bytes of a token (`tok_` + base64url), as stored.
pub fn token_bytes(token: &str) -> Option<Vec<u8>> {
    let raw = URL_SAFE_NO_PAD
        .decode(token.strip_prefix(TOKEN_PREFIX)?)
        .ok()?;
    (raw.len() == 16).then_some(raw)
}

/// The token of stored MAC bytes.
pub fn token_string(raw: &[u8]) -> String {
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw))
}

/// The associated data of a token's stored original: tenant | subject | token | type.
pub fn token_aad(tenant: &TenantId, subject: &str, token: &str, entity_type: &str) -> Aad {
    Aad::new(TOKEN_VALUE_DOMAIN)
        .part(tenant.as_bytes())
        .part(subject)
        .part(token)
        .part(entity_type)
}

/// Data keys of `subjects`, creating the missing ones, key-share locked in `tx`; refused
/// when a subject was shredded after `since` (its key then counts as missing, and the
/// creation is refused).
async fn subject_keys(
    vault: &Vault,
    tx: &mut sqlx::PgConnection,
    tenant: TenantId,
    subjects: &[SubjectRef],
    since: OffsetDateTime,
) -> VaultResult<Vec<SubjectKeyRow>> {
    let refs: Vec<String> = subjects.iter().map(|s| s.as_str().to_string()).collect();
    let mut rows = key_sql::subject_keys_locked(tx, tenant.as_uuid(), &refs, since).await?;
    if rows.len() < refs.len() {
        let have: HashSet<&str> = rows.iter().map(|r| r.subject_ref.as_str()).collect();
        let missing: Vec<&SubjectRef> = subjects
            .iter()
            .filter(|s| !have.contains(s.as_str()))
            .collect();
        let created = vault
            .keys
            .create_subject_keys(tx, tenant, &missing, 0, since)
            .await?;
        let raced: Vec<String> = missing
            .iter()
            .map(|s| s.as_str().to_string())
            .filter(|s| !created.iter().any(|row| &row.subject_ref == s))
            .collect();
        rows.extend(created);
        // Subjects that got a key from a concurrent call: read theirs.
        if !raced.is_empty() {
            rows.extend(key_sql::subject_keys_locked(tx, tenant.as_uuid(), &raced, since).await?);
        }
    }
    Ok(rows)
}

/// Deterministic tokens for a batch; originals stored sealed when asked. All or nothing.
pub async fn tokenize(
    vault: &Vault,
    request: Request<TokenizeRequest>,
) -> VaultResult<TokenizeResponse> {
    let (_, tenant) = check::tenant_caller(&request, &[Role::Service, Role::PrivacyOfficer])?;
    let request = request.into_inner();
    check::batch_size("items", request.items.len(), vault.settings.max_batch)?;
    let mut subjects = Vec::with_capacity(request.items.len());
    // Batches usually hold one conversation's subject: derive each subject ref once.
    let mut refs: HashMap<&str, SubjectRef> = HashMap::new();
    for (i, item) in request.items.iter().enumerate() {
        let subject = match refs.get(item.subject_id.as_str()) {
            Some(subject) => subject.clone(),
            None => {
                let subject = check::subject_from_id(
                    &vault.subjects,
                    &tenant,
                    &format!("items[{i}].subject_id"),
                    &item.subject_id,
                )?;
                refs.insert(&item.subject_id, subject.clone());
                subject
            }
        };
        subjects.push(subject);
        check::entity_type(&format!("items[{i}].entity_type"), &item.entity_type)?;
        check::value_size(
            &format!("items[{i}].value"),
            item.value.len(),
            vault.settings.max_token_value_bytes,
        )?;
    }
    let token_key = vault.keys.token_key(&vault.pool, tenant).await?;
    let tokens: Vec<String> = request
        .items
        .iter()
        .map(|item| token_for(&token_key, &item.entity_type, item.value.as_bytes()))
        .collect();
    let mut distinct: Vec<SubjectRef> = subjects.clone();
    distinct.sort();
    distinct.dedup();
    let since = started(&request)? - vault.settings.clock_skew();

    if let Some((is_first, created)) = tokenize_with_cached_keys(
        vault, tenant, &request, &tokens, &subjects, &distinct, since,
    )
    .await?
    {
        return Ok(response(tokens, subjects, is_first, &created));
    }

    let mut tx = veil_core::db::begin(&vault.pool).await?;
    let keys = subject_keys(vault, &mut tx, tenant, &distinct, since).await?;
    let mut ciphers: HashMap<&str, DataCipher> = HashMap::with_capacity(keys.len());
    for row in &keys {
        vault
            .keys
            .remember_subject_key(tenant, &row.subject_ref, row.key_id);
        if request.store_value {
            let key = vault.keys.data_key(tenant, row).await?;
            ciphers.insert(row.subject_ref.as_str(), DataCipher::new(&key));
        }
    }
    let (rows, is_first) = token_rows(tenant, &request, &tokens, &subjects, &ciphers)?;
    let created = sql::insert_tokens(&mut tx, tenant.as_uuid(), &rows).await?;
    tx.commit().await?;
    Ok(response(tokens, subjects, is_first, &created))
}

/// When the call's work began: its `started_at`, or now.
fn started(request: &TokenizeRequest) -> VaultResult<OffsetDateTime> {
    match &request.started_at {
        None => Ok(OffsetDateTime::now_utc()),
        Some(at) => veil_core::convert::from_timestamp(at)
            .ok_or_else(|| invalid("started_at", "must be a valid timestamp")),
    }
}

/// The one-statement path of Tokenize, taken when this replica has every subject's key
/// cached (the steady state of a conversation). `None` when a key is not cached or no
/// longer the subject's key; the caller then takes the transactional path, which reads
/// (or creates) the keys and refreshes the cache.
async fn tokenize_with_cached_keys(
    vault: &Vault,
    tenant: TenantId,
    request: &TokenizeRequest,
    tokens: &[String],
    subjects: &[SubjectRef],
    distinct: &[SubjectRef],
    since: OffsetDateTime,
) -> VaultResult<Option<(Vec<bool>, CreatedTokens)>> {
    let mut key_ids = Vec::with_capacity(distinct.len());
    let mut ciphers: HashMap<&str, DataCipher> = HashMap::with_capacity(distinct.len());
    for subject in distinct {
        let Some((key_id, key)) = vault.keys.cached_subject_key(tenant, subject.as_str()) else {
            return Ok(None);
        };
        if request.store_value {
            let Some(key) = key else {
                return Ok(None);
            };
            ciphers.insert(subject.as_str(), DataCipher::new(&key));
        }
        key_ids.push(key_id);
    }
    let (rows, is_first) = token_rows(tenant, request, tokens, subjects, &ciphers)?;
    let refs: Vec<&str> = distinct.iter().map(SubjectRef::as_str).collect();
    let created = retry_if_lost(|| {
        sql::insert_tokens_under_keys(&vault.pool, tenant.as_uuid(), &rows, &refs, &key_ids, since)
    })
    .await?;
    Ok(created.map(|created| (is_first, created)))
}

/// `(token, subject_ref)` byte pairs a batch stored for the first time.
type CreatedTokens = HashSet<(Vec<u8>, Vec<u8>)>;

/// The rows a batch stores, values sealed with `ciphers` (by subject ref) when asked,
/// and per item whether it is the first of its value in the batch. A value repeated
/// within the batch is stored once; later copies report created = false, as a repeat
/// in a later call would.
fn token_rows(
    tenant: TenantId,
    request: &TokenizeRequest,
    tokens: &[String],
    subjects: &[SubjectRef],
    ciphers: &HashMap<&str, DataCipher>,
) -> VaultResult<(TokenRows, Vec<bool>)> {
    let mut first = HashSet::with_capacity(tokens.len());
    let mut rows = TokenRows::default();
    let mut is_first = Vec::with_capacity(tokens.len());
    for ((item, token), subject) in request.items.iter().zip(tokens).zip(subjects) {
        let new = first.insert((token.as_str(), subject.as_str()));
        is_first.push(new);
        if !new {
            continue;
        }
        let sealed = if request.store_value {
            let cipher = ciphers.get(subject.as_str()).ok_or_else(|| {
                ServiceError::internal(anyhow::anyhow!("subject key missing in batch"))
            })?;
            let aad = token_aad(&tenant, subject.as_str(), token, &item.entity_type);
            Some(
                cipher
                    .seal(&aad, item.value.as_bytes())
                    .map_err(ServiceError::internal)?,
            )
        } else {
            None
        };
        rows.tokens.push(token_bytes(token).ok_or_else(|| {
            ServiceError::internal(anyhow::anyhow!("token_for made an unparsable token"))
        })?);
        rows.subject_refs.push(sql::subject_bytes(subject.as_str()));
        rows.entity_types.push(item.entity_type.clone());
        rows.sealed_values.push(sealed);
    }
    Ok((rows, is_first))
}

/// The answer: each item's token, created when its first copy in the batch was new.
fn response(
    tokens: Vec<String>,
    subjects: Vec<SubjectRef>,
    is_first: Vec<bool>,
    created: &CreatedTokens,
) -> TokenizeResponse {
    let tokens = tokens
        .into_iter()
        .zip(subjects)
        .zip(is_first)
        .map(|((token, subject), first)| {
            let key = (
                token_bytes(&token).unwrap_or_default(),
                sql::subject_bytes(subject.as_str()),
            );
            let created = first && created.contains(&key);
            TokenResult { token, created }
        })
        .collect();
    TokenizeResponse { tokens }
}

/// Originals of a batch of tokens for a stated purpose; audited with counts only.
pub async fn detokenize(
    vault: &Vault,
    request: Request<DetokenizeRequest>,
) -> VaultResult<DetokenizeResponse> {
    let (principal, tenant) =
        check::tenant_caller(&request, &[Role::PrivacyOfficer, Role::Service, Role::Bot])?;
    let request = request.into_inner();
    check::batch_size("tokens", request.tokens.len(), vault.settings.max_batch)?;
    // Each token once: every repeat would copy its original into the response again.
    let mut seen = std::collections::HashSet::with_capacity(request.tokens.len());
    for (i, token) in request.tokens.iter().enumerate() {
        check::token(&format!("tokens[{i}]"), token)?;
        if !seen.insert(token.as_str()) {
            return Err(invalid(format!("tokens[{i}]"), "is a duplicate"));
        }
    }
    check::purpose("purpose", &request.purpose)?;
    let subject = match &request.subject {
        Some(selector) if selector.subject.is_some() => Some(check::subject_ref(
            &vault.subjects,
            &tenant,
            "subject",
            Some(selector),
        )?),
        // A bot (or the gateway on its behalf) only restores its own subject's values.
        _ if !principal.has_role(Role::PrivacyOfficer) => {
            return Err(invalid(
                "subject",
                "is required unless the caller is a privacy officer",
            ));
        }
        _ => None,
    };
    let mut wanted: Vec<Vec<u8>> = request
        .tokens
        .iter()
        .filter_map(|t| token_bytes(t))
        .collect();
    wanted.sort();
    wanted.dedup();
    let subject_bytes = subject.as_ref().map(|s| sql::subject_bytes(s.as_str()));
    let entries = sql::lookup(
        &vault.pool,
        tenant.as_uuid(),
        &wanted,
        subject_bytes.as_deref(),
    )
    .await?;
    // One original per token: equal tokens mean equal values, whichever subject holds it.
    let mut originals: HashMap<Vec<u8>, (String, String)> = HashMap::with_capacity(entries.len());
    for entry in entries {
        if originals.contains_key(&entry.token) {
            continue;
        }
        let Some(sealed) = entry.sealed_value.as_deref() else {
            continue;
        };
        if sealed.len() < SEAL_OVERHEAD {
            return Err(VaultError::Corrupt {
                what: "token value",
            });
        }
        let key_row = SubjectKeyRow {
            subject_ref: entry.subject_ref.clone(),
            key_id: entry.key_id,
            kek_version: entry.kek_version,
            wrapped: entry.wrapped.clone(),
            kek_master_version: entry.kek_master_version,
            kek_wrapped: entry.kek_wrapped.clone(),
        };
        let key = vault.keys.data_key(tenant, &key_row).await?;
        let aad = token_aad(
            &tenant,
            &entry.subject_ref,
            &token_string(&entry.token),
            &entry.entity_type,
        );
        let plain = DataCipher::new(&key)
            .open(&aad, sealed)
            .map_err(|e| VaultError::from_crypto("token value", e))?;
        let value = String::from_utf8(plain).map_err(|_| VaultError::Corrupt {
            what: "token value",
        })?;
        originals.insert(entry.token, (value, entry.entity_type));
    }
    let mut counts: HashMap<String, i64> = HashMap::new();
    let mut not_found = 0;
    let results: Vec<DetokenizeResult> = request
        .tokens
        .into_iter()
        .map(
            |token| match token_bytes(&token).and_then(|raw| originals.get(&raw)) {
                Some((value, entity_type)) => {
                    *counts.entry(entity_type.clone()).or_default() += 1;
                    DetokenizeResult {
                        token,
                        found: true,
                        value: value.clone(),
                        entity_type: entity_type.clone(),
                    }
                }
                None => {
                    not_found += 1;
                    DetokenizeResult {
                        token,
                        found: false,
                        value: String::new(),
                        entity_type: String::new(),
                    }
                }
            },
        )
        .collect();
    let context = event_context(&principal, Some(tenant), subject.as_ref());
    let payload = Payload::VaultRevealed(VaultRevealed {
        kind: RevealKind::Detokenize as i32,
        purpose: request.purpose,
        counts,
        record_ids: Vec::new(),
        not_found,
    });
    vault.emit_alone(&context, payload).await?;
    Ok(DetokenizeResponse { results })
}
