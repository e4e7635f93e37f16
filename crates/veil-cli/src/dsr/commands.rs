//! `veil dsr submit | status | list | extend | certificate`.

use clap::{Args, ValueEnum};
use serde_json::json;
use veil_proto::common::v1::{Jurisdiction, PageRequest, RequestState, RequestType};
use veil_proto::retention::v1::{
    Correction, ExtendRequestRequest, GetDeletionCertificateRequest, GetRequestRequest,
    ListRequestsRequest, RequestChannel, SubmitRequestRequest,
};

use super::output::{certificate_json, request_json, request_line, request_text, time};
use super::{Context, Failure};

/// Request types, as the CLI spells them.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum TypeArg {
    Access,
    Portability,
    Erasure,
    Rectification,
    Restriction,
    Objection,
    OptOutSaleShare,
    LimitSensitive,
}

impl TypeArg {
    fn proto(self) -> RequestType {
        match self {
            TypeArg::Access => RequestType::Access,
            TypeArg::Portability => RequestType::Portability,
            TypeArg::Erasure => RequestType::Erasure,
            TypeArg::Rectification => RequestType::Rectification,
            TypeArg::Restriction => RequestType::Restriction,
            TypeArg::Objection => RequestType::Objection,
            TypeArg::OptOutSaleShare => RequestType::OptOutSaleShare,
            TypeArg::LimitSensitive => RequestType::LimitSensitive,
        }
    }
}

/// Jurisdictions, as the CLI spells them.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum JurisdictionArg {
    EuGdpr,
    UkGdpr,
    UsCaCcpa,
    BrLgpd,
    ChFadp,
    CaPipeda,
    Other,
}

impl JurisdictionArg {
    fn proto(self) -> Jurisdiction {
        match self {
            JurisdictionArg::EuGdpr => Jurisdiction::EuGdpr,
            JurisdictionArg::UkGdpr => Jurisdiction::UkGdpr,
            JurisdictionArg::UsCaCcpa => Jurisdiction::UsCaCcpa,
            JurisdictionArg::BrLgpd => Jurisdiction::BrLgpd,
            JurisdictionArg::ChFadp => Jurisdiction::ChFadp,
            JurisdictionArg::CaPipeda => Jurisdiction::CaPipeda,
            JurisdictionArg::Other => Jurisdiction::Other,
        }
    }
}

/// Channels, as the CLI spells them.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ChannelArg {
    Chat,
    WebForm,
    Email,
    Api,
    Phone,
    Postal,
}

impl ChannelArg {
    fn proto(self) -> RequestChannel {
        match self {
            ChannelArg::Chat => RequestChannel::Chat,
            ChannelArg::WebForm => RequestChannel::WebForm,
            ChannelArg::Email => RequestChannel::Email,
            ChannelArg::Api => RequestChannel::Api,
            ChannelArg::Phone => RequestChannel::Phone,
            ChannelArg::Postal => RequestChannel::Postal,
        }
    }
}

/// States, as the CLI spells them.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum StateArg {
    Received,
    Verified,
    InProgress,
    Completed,
    Rejected,
    Cancelled,
    OnHold,
    AwaitingInput,
    PartiallyCompleted,
}

impl StateArg {
    fn proto(self) -> RequestState {
        match self {
            StateArg::Received => RequestState::Received,
            StateArg::Verified => RequestState::Verified,
            StateArg::InProgress => RequestState::InProgress,
            StateArg::Completed => RequestState::Completed,
            StateArg::Rejected => RequestState::Rejected,
            StateArg::Cancelled => RequestState::Cancelled,
            StateArg::OnHold => RequestState::OnHold,
            StateArg::AwaitingInput => RequestState::AwaitingInput,
            StateArg::PartiallyCompleted => RequestState::PartiallyCompleted,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    /// The tenant's id of the data subject.
    #[arg(long)]
    subject: String,
    /// What the subject asks for.
    #[arg(long = "type", value_enum)]
    request_type: TypeArg,
    /// Legal regime; decides the due date.
    #[arg(long, value_enum, default_value = "eu-gdpr")]
    jurisdiction: JurisdictionArg,
    /// How the request arrived.
    #[arg(long, value_enum, default_value = "api")]
    channel: ChannelArg,
    /// BCP 47 locale for communication and the HTML export.
    #[arg(long, default_value = "")]
    locale: String,
    /// Purpose concerned (restriction, objection, opt-outs); repeat for several.
    #[arg(long = "purpose")]
    purposes: Vec<String>,
    /// A correction for a rectification, as FIELD=NEW_VALUE; repeat for several.
    #[arg(long = "correction")]
    corrections: Vec<String>,
    /// The subject's identity is already verified (privacy officers only).
    #[arg(long)]
    identity_verified: bool,
    /// A retried submit with the same key returns the first request.
    #[arg(long, default_value = "")]
    idempotency_key: String,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Request id.
    request_id: String,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only these states (repeat for several).
    #[arg(long = "state", value_enum)]
    states: Vec<StateArg>,
    /// Only these types (repeat for several).
    #[arg(long = "type", value_enum)]
    types: Vec<TypeArg>,
    /// Only requests past their due date.
    #[arg(long)]
    overdue: bool,
    /// At most this many requests.
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

#[derive(Debug, Args)]
pub(crate) struct ExtendArgs {
    /// Request id.
    request_id: String,
    /// Days to add to the due date.
    #[arg(long)]
    days: u32,
    /// Why; recorded and communicated to the subject (no personal data).
    #[arg(long)]
    reason: String,
}

#[derive(Debug, Args)]
pub(crate) struct CertificateArgs {
    /// Request id of a completed erasure.
    request_id: String,
}

/// Parses `FIELD=VALUE` corrections.
pub(crate) fn parse_corrections(items: &[String]) -> Result<Vec<Correction>, Failure> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item.split_once('=') {
            Some((field, value)) if !field.is_empty() => Ok(Correction {
                field: field.to_string(),
                new_value: value.to_string(),
            }),
            // Never echo the item: it holds the new value.
            _ => Err(Failure::Usage(format!(
                "--correction #{} must be FIELD=NEW_VALUE",
                i + 1
            ))),
        })
        .collect()
}

pub(crate) async fn submit(context: &mut Context, args: SubmitArgs) -> Result<(), Failure> {
    let message = SubmitRequestRequest {
        subject_id: args.subject,
        request_type: args.request_type.proto() as i32,
        channel: args.channel.proto() as i32,
        jurisdiction: args.jurisdiction.proto() as i32,
        locale: args.locale,
        purpose_keys: args.purposes,
        corrections: parse_corrections(&args.corrections)?,
        identity_verified: args.identity_verified,
        idempotency_key: args.idempotency_key,
    };
    let request = context.request(message)?;
    let response = context.client().submit_request(request).await?;
    let duplicate = response
        .metadata()
        .get("veil-duplicate")
        .is_some_and(|v| v.as_bytes() == b"true");
    let response = response.into_inner();
    let dsr = response.request.unwrap_or_default();
    let challenge = response.challenge;
    let mut json = request_json(&dsr);
    json["duplicate"] = json!(duplicate);
    if let Some(c) = &challenge {
        json["challenge"] = json!({
            "code": c.code,
            "expires_at": time(c.expires_at.as_ref()),
            "max_attempts": c.max_attempts,
        });
    }
    context.print(json, || {
        let mut text = request_line(&dsr);
        if duplicate {
            text.push_str("\n  an open request of this subject and type already existed");
        }
        if let Some(c) = &challenge {
            text.push_str(&format!(
                "\n  verification code {} (deliver it to the subject; valid until {}, {} attempts)",
                c.code,
                time(c.expires_at.as_ref()),
                c.max_attempts
            ));
        }
        text
    });
    Ok(())
}

pub(crate) async fn status(context: &mut Context, args: StatusArgs) -> Result<(), Failure> {
    let request = context.request(GetRequestRequest {
        request_id: args.request_id,
    })?;
    let dsr = context
        .client()
        .get_request(request)
        .await?
        .into_inner()
        .request
        .unwrap_or_default();
    context.print(request_json(&dsr), || request_text(&dsr));
    Ok(())
}

pub(crate) async fn list(context: &mut Context, args: ListArgs) -> Result<(), Failure> {
    let mut found = Vec::new();
    let mut page_token = String::new();
    loop {
        let want = args.limit.saturating_sub(found.len()).min(1000);
        if want == 0 {
            break;
        }
        let request = context.request(ListRequestsRequest {
            states: args.states.iter().map(|s| s.proto() as i32).collect(),
            request_types: args.types.iter().map(|t| t.proto() as i32).collect(),
            overdue_only: args.overdue,
            page: Some(PageRequest {
                page_size: i32::try_from(want).unwrap_or(1000),
                page_token: page_token.clone(),
            }),
            ..Default::default()
        })?;
        let response = context.client().list_requests(request).await?.into_inner();
        found.extend(response.requests);
        page_token = response.page.unwrap_or_default().next_page_token;
        if page_token.is_empty() {
            break;
        }
    }
    let json = json!(found.iter().map(request_json).collect::<Vec<_>>());
    context.print(json, || {
        if found.is_empty() {
            "no requests".into()
        } else {
            found
                .iter()
                .map(request_line)
                .collect::<Vec<_>>()
                .join("\n")
        }
    });
    Ok(())
}

pub(crate) async fn extend(context: &mut Context, args: ExtendArgs) -> Result<(), Failure> {
    if args.days == 0 {
        return Err(Failure::Usage("--days must be at least 1".into()));
    }
    let request = context.request(ExtendRequestRequest {
        request_id: args.request_id,
        extend_by: Some(prost_types::Duration {
            seconds: i64::from(args.days) * 86_400,
            nanos: 0,
        }),
        reason: args.reason,
    })?;
    let dsr = context
        .client()
        .extend_request(request)
        .await?
        .into_inner()
        .request
        .unwrap_or_default();
    context.print(request_json(&dsr), || request_text(&dsr));
    Ok(())
}

pub(crate) async fn certificate(
    context: &mut Context,
    args: CertificateArgs,
) -> Result<(), Failure> {
    let request = context.request(GetDeletionCertificateRequest {
        request_id: args.request_id,
    })?;
    let certificate = context
        .client()
        .get_deletion_certificate(request)
        .await?
        .into_inner()
        .certificate
        .unwrap_or_default();
    let json = certificate_json(&certificate);
    context.print(json.clone(), || {
        format!(
            "certificate {} for request {} issued {}\n  {}\n  anchored in the audit log: {} (leaf {})\n{}",
            certificate.certificate_id,
            certificate.request_id,
            time(certificate.issued_at.as_ref()),
            if certificate.anchored {
                "signature and inclusion proof attached"
            } else {
                "signature attached; audit anchor pending"
            },
            certificate.anchored,
            certificate.audit_leaf_index,
            serde_json::to_string_pretty(&json["certificate"]).unwrap_or_default()
        )
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrections_split_at_the_first_equals_and_never_echo_values() {
        let parsed = parse_corrections(&["contact.email=a=b@example.org".into()]).ok();
        let parsed = parsed.unwrap_or_default();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].field, "contact.email");
        assert_eq!(parsed[0].new_value, "a=b@example.org");
        match parse_corrections(&["secret-value".into()]) {
            Err(Failure::Usage(message)) => assert!(!message.contains("secret-value")),
            other => panic!("expected a usage error, got {other:?}"),
        }
        assert!(parse_corrections(&["=x".into()]).is_err());
    }
}
