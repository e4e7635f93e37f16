//! Purposes, recipients and controller settings.

use std::time::Instant;

use veil_core::convert::timestamp;
use veil_core::error::{ServiceError, ServiceResult};
use veil_proto::common::v1::{Jurisdiction, LegalBasis, PageResponse, PreferenceSignalType};
use veil_proto::consent::v1::*;
use veil_proto::events::v1::ConsentPurposeChanged;
use veil_proto::events::v1::event::Payload;

use super::convert::{self, duration, seconds};
use super::{Caller, ConsentApi, page_cursor, page_size, page_token};
use crate::domain::{
    MODEL_TRAINING, PurposeDef, requires_opt_in, validate_key, validate_keys, validate_locale,
    validate_text, validate_url,
};
use crate::invalidation::Scope;
use crate::store::purposes::{self as store, Bounded, ControllerRow, RecipientRow, Upserted};

/// Shown to subjects when a consent-based purpose names no withdrawal method.
const DEFAULT_WITHDRAWAL: &str = "You can withdraw at any time, as easily as you gave consent: \
     say \"stop using my data\" in the chat or use the privacy settings.";

/// The proto form of a purpose.
pub fn purpose_to_proto(p: &PurposeDef) -> Purpose {
    Purpose {
        key: p.key.clone(),
        name: p.name.clone(),
        description: p.description.clone(),
        legal_basis: p.legal_basis,
        data_categories: p.data_categories.clone(),
        retention_period: duration(p.retention_secs),
        consent_required: p.consent_required,
        defaults: p
            .defaults
            .iter()
            .map(|(jurisdiction, consent_default)| JurisdictionDefault {
                jurisdiction: *jurisdiction,
                consent_default: *consent_default,
            })
            .collect(),
        withdrawal_method: p.withdrawal_method.clone(),
        recipient_keys: p.recipient_keys.clone(),
        opted_out_by: p.opted_out_by.clone(),
        consent_validity: duration(p.consent_validity_secs),
        archived: p.archived,
        version: p.version,
        created_at: Some(timestamp(p.created_at)),
        updated_at: Some(timestamp(p.updated_at)),
    }
}

/// Validates a purpose from a request into its stored form.
fn purpose_from_proto(p: Purpose) -> ServiceResult<PurposeDef> {
    validate_key("purpose.key", &p.key)?;
    if p.name.trim().is_empty() {
        return Err(ServiceError::invalid("purpose.name", "must not be empty"));
    }
    validate_text("purpose.name", &p.name, 200)?;
    validate_text("purpose.description", &p.description, 4000)?;
    validate_text("purpose.withdrawal_method", &p.withdrawal_method, 1000)?;
    let basis = LegalBasis::try_from(p.legal_basis)
        .ok()
        .filter(|b| *b != LegalBasis::Unspecified)
        .ok_or_else(|| ServiceError::invalid("purpose.legal_basis", "is required"))?;
    let on_consent = basis == LegalBasis::Consent;
    if p.consent_required && !on_consent {
        return Err(ServiceError::invalid(
            "purpose.consent_required",
            "only purposes based on consent can require it",
        ));
    }
    validate_keys("purpose.data_categories", &p.data_categories, 64)?;
    validate_keys("purpose.recipient_keys", &p.recipient_keys, 64)?;
    let mut defaults = Vec::with_capacity(p.defaults.len());
    for (i, d) in p.defaults.iter().enumerate() {
        let field = format!("purpose.defaults[{i}]");
        let jurisdiction = Jurisdiction::try_from(d.jurisdiction)
            .ok()
            .filter(|j| *j != Jurisdiction::Unspecified)
            .ok_or_else(|| ServiceError::invalid(&field, "names no jurisdiction"))?;
        let value = ConsentDefault::try_from(d.consent_default)
            .ok()
            .filter(|v| *v != ConsentDefault::Unspecified)
            .ok_or_else(|| ServiceError::invalid(&field, "names no default"))?;
        if !on_consent {
            return Err(ServiceError::invalid(
                &field,
                "defaults apply only to purposes based on consent",
            ));
        }
        if defaults.iter().any(|(j, _)| *j == jurisdiction as i32) {
            return Err(ServiceError::invalid(&field, "repeats a jurisdiction"));
        }
        if value == ConsentDefault::OptOut
            && (requires_opt_in(jurisdiction as i32) || p.key == MODEL_TRAINING)
        {
            return Err(ServiceError::invalid(
                &field,
                "opt-out is not allowed here: consent must be opted into",
            ));
        }
        defaults.push((jurisdiction as i32, value as i32));
    }
    let mut opted_out_by = Vec::with_capacity(p.opted_out_by.len());
    for (i, signal) in p.opted_out_by.iter().enumerate() {
        let field = format!("purpose.opted_out_by[{i}]");
        PreferenceSignalType::try_from(*signal)
            .ok()
            .filter(|s| *s != PreferenceSignalType::Unspecified)
            .ok_or_else(|| ServiceError::invalid(&field, "is not a preference signal"))?;
        if opted_out_by.contains(signal) {
            return Err(ServiceError::invalid(&field, "is a duplicate"));
        }
        opted_out_by.push(*signal);
    }
    let required_by_law = matches!(
        basis,
        LegalBasis::Contract | LegalBasis::LegalObligation | LegalBasis::VitalInterests
    );
    if required_by_law && !opted_out_by.is_empty() {
        return Err(ServiceError::invalid(
            "purpose.opted_out_by",
            "a signal cannot opt out of processing needed for a contract or by law",
        ));
    }
    if p.key == MODEL_TRAINING && !on_consent {
        return Err(ServiceError::invalid(
            "purpose.legal_basis",
            "model_training must rest on consent",
        ));
    }
    let withdrawal_method = if p.withdrawal_method.trim().is_empty() && on_consent {
        DEFAULT_WITHDRAWAL.to_string()
    } else {
        p.withdrawal_method
    };
    Ok(PurposeDef {
        key: p.key,
        name: p.name,
        description: p.description,
        legal_basis: basis as i32,
        data_categories: p.data_categories,
        retention_secs: seconds(p.retention_period.as_ref(), "purpose.retention_period")?,
        consent_required: on_consent,
        defaults,
        withdrawal_method,
        recipient_keys: p.recipient_keys,
        opted_out_by,
        consent_validity_secs: seconds(p.consent_validity.as_ref(), "purpose.consent_validity")?,
        archived: p.archived,
        version: 0,
        created_at: time::OffsetDateTime::UNIX_EPOCH,
        updated_at: time::OffsetDateTime::UNIX_EPOCH,
    })
}

/// Purposes one tenant may define.
pub const MAX_PURPOSES_PER_TENANT: i64 = 1_000;

/// Recipients one tenant may name: a register of processors and third parties is a short
/// list, and the bound keeps a caller from growing it without end.
pub const MAX_RECIPIENTS_PER_TENANT: i64 = 1_000;

/// Refuses a new `key` of `kind` once the tenant has as many as it may.
async fn ensure_fits(
    db: impl sqlx::PgExecutor<'_>,
    kind: Bounded,
    tenant: uuid::Uuid,
    key: &str,
) -> ServiceResult<()> {
    let (limit, what) = match kind {
        Bounded::Purposes => (MAX_PURPOSES_PER_TENANT, "purposes (archived ones included)"),
        Bounded::Recipients => (MAX_RECIPIENTS_PER_TENANT, "recipients"),
    };
    if store::fits(db, kind, tenant, key, limit).await? {
        Ok(())
    } else {
        Err(ServiceError::FailedPrecondition(format!(
            "a tenant may have at most {limit} {what}"
        )))
    }
}

impl ConsentApi {
    pub(super) async fn upsert_purpose_impl(
        &self,
        caller: &Caller,
        request: UpsertPurposeRequest,
    ) -> ServiceResult<UpsertPurposeResponse> {
        let purpose = request
            .purpose
            .ok_or_else(|| ServiceError::invalid("purpose", "is required"))?;
        let purpose = purpose_from_proto(purpose)?;
        let tenant = caller.tenant.as_uuid();
        let mut tx = veil_core::db::begin(&self.pool).await?;
        let missing = store::missing_recipients(&mut *tx, tenant, &purpose.recipient_keys).await?;
        if let Some(key) = missing.first() {
            return Err(ServiceError::NotFound(format!("recipient {key}")));
        }
        if purpose.key == MODEL_TRAINING {
            // The built-in version is the tenant's version 1; an override comes after it.
            store::ensure_builtin(&mut *tx, tenant).await?;
        }
        // Every consent check of the tenant holds all its purposes in the cache, and
        // ListPurposes reads them all: their number is bounded.
        ensure_fits(&mut *tx, Bounded::Purposes, tenant, &purpose.key).await?;
        let (stored, outcome) = store::upsert_purpose(&mut tx, tenant, &purpose).await?;
        if outcome != Upserted::Unchanged {
            let event = ConsentPurposeChanged {
                purpose_key: stored.key.clone(),
                version: stored.version,
                legal_basis: stored.legal_basis,
                consent_required: stored.consent_required,
                archived: stored.archived,
            };
            self.emit(
                &mut tx,
                &caller.context(None),
                Payload::ConsentPurposeChanged(event),
            )
            .await?;
        }
        tx.commit().await?;
        let committed = Instant::now();
        self.relay.notify();
        if outcome != Upserted::Unchanged {
            self.invalidator
                .after_commit(Scope::Tenant(tenant), committed)
                .await;
        }
        Ok(UpsertPurposeResponse {
            purpose: Some(purpose_to_proto(&stored)),
            created: outcome == Upserted::Created,
        })
    }

    pub(super) async fn list_purposes_impl(
        &self,
        caller: &Caller,
        request: ListPurposesRequest,
    ) -> ServiceResult<ListPurposesResponse> {
        let limit = usize::try_from(page_size(request.page.as_ref())?).unwrap_or(50);
        let after = page_cursor(request.page.as_ref())?.unwrap_or_default();
        let stored = store::all_purposes(&self.pool, caller.tenant.as_uuid()).await?;
        let mut all = crate::cache::TenantPurposes::new(stored, ControllerRow::default())
            .by_key
            .into_values()
            .filter(|p| request.include_archived || !p.archived)
            .filter(|p| p.key.as_str() > after.as_str())
            .collect::<Vec<_>>();
        all.sort_by(|a, b| a.key.cmp(&b.key));
        let more = all.len() > limit;
        all.truncate(limit);
        let next = if more {
            all.last().map(|p| page_token(&p.key)).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListPurposesResponse {
            purposes: all.iter().map(purpose_to_proto).collect(),
            page: Some(PageResponse {
                next_page_token: next,
            }),
        })
    }

    pub(super) async fn upsert_recipient_impl(
        &self,
        caller: &Caller,
        request: UpsertRecipientRequest,
    ) -> ServiceResult<UpsertRecipientResponse> {
        let r = request
            .recipient
            .ok_or_else(|| ServiceError::invalid("recipient", "is required"))?;
        validate_key("recipient.key", &r.key)?;
        if r.name.trim().is_empty() {
            return Err(ServiceError::invalid("recipient.name", "must not be empty"));
        }
        validate_text("recipient.name", &r.name, 200)?;
        validate_text("recipient.description", &r.description, 4000)?;
        validate_text("recipient.transfer_mechanism", &r.transfer_mechanism, 200)?;
        validate_text("recipient.data_sharing_terms", &r.data_sharing_terms, 4000)?;
        validate_url("recipient.url", &r.url)?;
        RecipientKind::try_from(r.kind)
            .ok()
            .filter(|k| *k != RecipientKind::Unspecified)
            .ok_or_else(|| ServiceError::invalid("recipient.kind", "is required"))?;
        let country = r.country.to_ascii_uppercase();
        if !(country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(ServiceError::invalid(
                "recipient.country",
                "must be an ISO 3166-1 alpha-2 code",
            ));
        }
        let row = RecipientRow {
            key: r.key,
            name: r.name,
            kind: r.kind,
            country,
            transfer_mechanism: r.transfer_mechanism,
            description: r.description,
            url: r.url,
            data_sharing_terms: r.data_sharing_terms,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
            purpose_keys: Vec::new(),
        };
        let tenant = caller.tenant.as_uuid();
        ensure_fits(&self.pool, Bounded::Recipients, tenant, &row.key).await?;
        let created = store::upsert_recipient(&self.pool, tenant, &row).await?;
        let stored = store::list_recipients(
            &self.pool,
            tenant,
            Some(std::slice::from_ref(&row.key)),
            "",
            1,
        )
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("recipient vanished")))?;
        Ok(UpsertRecipientResponse {
            recipient: Some(recipient_to_proto(&stored)),
            created,
        })
    }

    pub(super) async fn list_recipients_impl(
        &self,
        caller: &Caller,
        request: ListRecipientsRequest,
    ) -> ServiceResult<ListRecipientsResponse> {
        let limit = page_size(request.page.as_ref())?;
        let after = page_cursor(request.page.as_ref())?.unwrap_or_default();
        let mut rows =
            store::list_recipients(&self.pool, caller.tenant.as_uuid(), None, &after, limit + 1)
                .await?;
        let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next = if more {
            rows.last().map(|r| page_token(&r.key)).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListRecipientsResponse {
            recipients: rows.iter().map(recipient_to_proto).collect(),
            page: Some(PageResponse {
                next_page_token: next,
            }),
        })
    }

    pub(super) async fn set_controller_impl(
        &self,
        caller: &Caller,
        request: SetControllerRequest,
    ) -> ServiceResult<SetControllerResponse> {
        let c = request
            .controller
            .ok_or_else(|| ServiceError::invalid("controller", "is required"))?;
        if !c.tenant_id.is_empty() && c.tenant_id != caller.tenant.to_string() {
            return Err(ServiceError::PermissionDenied(
                "controller.tenant_id names another tenant".into(),
            ));
        }
        validate_text("controller.name", &c.name, 200)?;
        validate_text("controller.contact", &c.contact, 500)?;
        let default_locale = if c.default_locale.is_empty() {
            String::new()
        } else {
            validate_locale(&c.default_locale)
                .map_err(|reason| ServiceError::invalid("controller.default_locale", reason))?
        };
        Jurisdiction::try_from(c.default_jurisdiction).map_err(|_| {
            ServiceError::invalid("controller.default_jurisdiction", "is not a jurisdiction")
        })?;
        let row = ControllerRow {
            name: c.name,
            contact: c.contact,
            default_locale,
            default_jurisdiction: c.default_jurisdiction,
        };
        let tenant = caller.tenant.as_uuid();
        store::set_controller(&self.pool, tenant, &row).await?;
        self.invalidator
            .after_commit(Scope::Tenant(tenant), Instant::now())
            .await;
        Ok(SetControllerResponse {
            controller: Some(convert::controller(
                &row,
                &caller.tenant.to_string(),
                &self.default_locale,
            )),
        })
    }

    pub(super) async fn get_controller_impl(
        &self,
        caller: &Caller,
    ) -> ServiceResult<GetControllerResponse> {
        let row = store::controller(&self.pool, caller.tenant.as_uuid()).await?;
        Ok(GetControllerResponse {
            controller: Some(convert::controller(
                &row,
                &caller.tenant.to_string(),
                &self.default_locale,
            )),
        })
    }
}

/// The proto form of a recipient.
pub fn recipient_to_proto(r: &RecipientRow) -> Recipient {
    Recipient {
        key: r.key.clone(),
        name: r.name.clone(),
        kind: r.kind,
        country: r.country.clone(),
        transfer_mechanism: r.transfer_mechanism.clone(),
        description: r.description.clone(),
        url: r.url.clone(),
        updated_at: Some(timestamp(r.updated_at)),
        data_sharing_terms: r.data_sharing_terms.clone(),
        purpose_keys: r.purpose_keys.clone(),
    }
}
