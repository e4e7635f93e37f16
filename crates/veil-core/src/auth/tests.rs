#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use serde_json::json;
use tonic::service::Interceptor as _;
use tonic::{Code, Request};

use super::*;
use crate::types::{RequestId, Role, TenantId};

const AUDIENCE: &str = "vault";

fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[11; 32])
}

fn issuer() -> TokenIssuer {
    TokenIssuer::new(signing_key(), "gw-1", "veil-gateway")
}

fn verifier() -> TokenVerifier {
    TokenVerifier::new(AUDIENCE).with_key("gw-1", signing_key().verifying_key())
}

fn principal(roles: &[Role]) -> Principal {
    Principal {
        tenant: Some(TenantId::generate()),
        principal_id: "key_123".parse().unwrap(),
        roles: roles.to_vec(),
        request_id: RequestId::generate(),
    }
}

fn claims_at(iat: SystemTime, ttl: u64) -> InternalClaims {
    let iat = iat
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let who = principal(&[Role::Bot]);
    InternalClaims {
        iss: "veil-gateway".into(),
        aud: AUDIENCE.into(),
        sub: who.principal_id,
        tenant: who.tenant,
        roles: who.roles,
        request_id: who.request_id,
        iat,
        exp: iat + ttl,
        jti: "j1".into(),
    }
}

#[test]
fn minted_token_verifies_and_carries_the_principal() {
    let who = principal(&[Role::PrivacyOfficer, Role::Agent]);
    let token = issuer().mint_for(AUDIENCE, &who).unwrap();
    let claims = verifier().verify(&token).unwrap();
    assert_eq!(claims.principal(), who);
    assert_eq!(claims.aud, AUDIENCE);
    assert_eq!(claims.iss, "veil-gateway");
    assert_eq!(claims.exp - claims.iat, DEFAULT_TTL.as_secs());
}

#[test]
fn platform_principal_has_no_tenant_claim() {
    let who = Principal {
        tenant: None,
        ..principal(&[Role::PlatformAdmin])
    };
    let token = issuer().mint_for(AUDIENCE, &who).unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert!(json.get("tenant").is_none());
    assert_eq!(verifier().verify(&token).unwrap().tenant, None);
}

#[test]
fn expired_and_future_tokens_are_rejected_with_leeway() {
    let now = SystemTime::now();
    let token = issuer().sign(&claims_at(now, 60)).unwrap();
    let verifier = verifier();
    assert!(
        verifier
            .verify_at(&token, now + Duration::from_secs(64))
            .is_ok()
    );
    assert_eq!(
        verifier.verify_at(&token, now + Duration::from_secs(66)),
        Err(AuthError::Expired)
    );
    assert_eq!(
        verifier.verify_at(&token, now - Duration::from_secs(10)),
        Err(AuthError::NotYetValid)
    );
    let long = issuer().sign(&claims_at(now, 3600)).unwrap();
    assert_eq!(verifier.verify_at(&long, now), Err(AuthError::Lifetime));
    let zero = issuer().sign(&claims_at(now, 0)).unwrap();
    assert_eq!(verifier.verify_at(&zero, now), Err(AuthError::Lifetime));
}

#[test]
fn wrong_audience_key_or_kid_is_rejected() {
    let token = issuer()
        .mint_for("consent", &principal(&[Role::Bot]))
        .unwrap();
    assert_eq!(verifier().verify(&token), Err(AuthError::Audience));

    let impostor = TokenIssuer::new(SigningKey::from_bytes(&[12; 32]), "gw-1", "veil-gateway");
    let token = impostor
        .mint_for(AUDIENCE, &principal(&[Role::Bot]))
        .unwrap();
    assert!(matches!(
        verifier().verify(&token),
        Err(AuthError::Token(_))
    ));

    let other_kid = TokenIssuer::new(signing_key(), "gw-2", "veil-gateway");
    let token = other_kid
        .mint_for(AUDIENCE, &principal(&[Role::Bot]))
        .unwrap();
    assert!(matches!(
        verifier().verify(&token),
        Err(AuthError::Token(_))
    ));
}

#[test]
fn tampered_payload_alg_none_and_garbage_are_rejected() {
    let token = issuer()
        .mint_for(AUDIENCE, &principal(&[Role::Agent]))
        .unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["roles"] = json!(["admin"]);
    let elevated = URL_SAFE_NO_PAD.encode(claims.to_string());
    let tampered = format!("{}.{elevated}.{}", parts[0], parts[2]);
    assert!(verifier().verify(&tampered).is_err());

    let none_header = URL_SAFE_NO_PAD
        .encode(json!({"alg": "none", "kid": "gw-1", "typ": INTERNAL_TOKEN_TYPE}).to_string());
    let unsigned = format!("{none_header}.{elevated}.");
    assert!(verifier().verify(&unsigned).is_err());

    for garbage in ["", "Bearer", "x.y.z", "....", "eyJ9.eyJ9.eyJ9"] {
        assert!(verifier().verify(garbage).is_err(), "{garbage:?}");
    }
}

#[test]
fn a_token_of_another_jws_type_is_rejected() {
    let receipt = crate::crypto::jws::sign(
        &signing_key(),
        "gw-1",
        "veil-consent-receipt+jws",
        &claims_at(SystemTime::now(), 60),
    )
    .unwrap();
    assert!(matches!(
        verifier().verify(&receipt),
        Err(AuthError::Token(_))
    ));
}

fn request_with(authorization: Option<&str>) -> Request<()> {
    let mut request = Request::new(());
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert(AUTHORIZATION_HEADER, value.parse().unwrap());
    }
    request
}

#[test]
fn interceptor_inserts_principal_or_rejects_opaquely() {
    let mut auth = InternalAuth::new(Arc::new(verifier()));
    let who = principal(&[Role::Auditor]);
    let token = issuer().mint_for(AUDIENCE, &who).unwrap();

    let request = auth
        .call(request_with(Some(&format!("Bearer {token}"))))
        .unwrap();
    assert_eq!(Principal::from_request(&request).unwrap(), &who);
    let request = auth
        .call(request_with(Some(&format!("bearer  {token}"))))
        .unwrap();
    assert_eq!(Principal::from_request(&request).unwrap(), &who);

    for header in [
        None,
        Some("Bearer"),
        Some("Basic abc"),
        Some(token.as_str()),
        Some("Bearer x.y.z"),
    ] {
        let status = auth.call(request_with(header)).unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(status.message(), "missing or invalid internal token");
    }
    let status = Principal::from_request(&Request::new(())).unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[test]
fn role_and_tenant_checks() {
    let who = principal(&[Role::Agent]);
    assert!(
        who.require_any(&[Role::Agent, Role::PrivacyOfficer])
            .is_ok()
    );
    let denied = who
        .require_any(&[Role::PrivacyOfficer, Role::Admin])
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(
        denied.message(),
        "requires one of the roles: privacy_officer, admin"
    );
    assert!(principal(&[]).require_any(&[Role::Bot]).is_err());
    assert!(who.require_any(&[]).is_err());
    assert_eq!(who.tenant().unwrap(), who.tenant.unwrap());
    let platform = Principal {
        tenant: None,
        ..principal(&[Role::PlatformAdmin])
    };
    assert_eq!(
        platform.tenant().unwrap_err().code(),
        Code::PermissionDenied
    );
}

#[test]
fn bearer_minter_attaches_a_token_the_server_accepts() {
    let issuer = Arc::new(issuer());
    let tenant = TenantId::generate();
    let base = BearerMinter::new(
        issuer,
        AUDIENCE,
        "retention".parse().unwrap(),
        None,
        vec![Role::Service],
    );
    let mut minter = base.for_tenant(tenant);
    let mut outgoing = Request::new(());
    outgoing
        .metadata_mut()
        .insert(REQUEST_ID_HEADER, "req-42".parse().unwrap());
    let outgoing = minter.call(outgoing).unwrap();
    assert!(bearer_token(outgoing.metadata()).is_some());

    let mut server = InternalAuth::new(Arc::new(verifier()));
    let incoming = server.call(outgoing).unwrap();
    let who = Principal::from_request(&incoming).unwrap();
    assert_eq!(who.tenant, Some(tenant));
    assert_eq!(who.roles, vec![Role::Service]);
    assert_eq!(who.request_id.as_str(), "req-42");
    assert_eq!(who.principal_id.as_str(), "retention");

    let mut generated = base.clone();
    let request = generated.call(Request::new(())).unwrap();
    let claims = verifier()
        .verify(bearer_token(request.metadata()).unwrap())
        .unwrap();
    assert!(claims.request_id.as_str().len() >= 32);
    assert_eq!(claims.tenant, None);
}

#[test]
fn token_for_reuses_a_token_per_audience_and_principal() {
    let issuer = issuer();
    let who = principal(&[Role::Bot]);
    let first = issuer.token_for(AUDIENCE, &who).unwrap();
    // A later request of the same principal gets the same token, whatever its id.
    let later = Principal {
        request_id: RequestId::generate(),
        ..who.clone()
    };
    assert_eq!(issuer.token_for(AUDIENCE, &later).unwrap(), first);
    assert_eq!(
        verifier().verify(&first).unwrap().principal(),
        who,
        "the token names the request that minted it"
    );

    let other_roles = Principal {
        roles: vec![Role::Bot, Role::Agent],
        ..who.clone()
    };
    let other_tenant = Principal {
        tenant: Some(TenantId::generate()),
        ..who.clone()
    };
    let other_id = Principal {
        principal_id: "key_456".parse().unwrap(),
        ..who.clone()
    };
    for other in [&other_roles, &other_tenant, &other_id] {
        let token = issuer.token_for(AUDIENCE, other).unwrap();
        assert_ne!(token, first);
        assert_eq!(verifier().verify(&token).unwrap().principal(), *other);
    }
    let consent = issuer.token_for("consent", &who).unwrap();
    assert_ne!(consent, first);
    assert_eq!(verifier().verify(&consent), Err(AuthError::Audience));
}

#[test]
fn token_for_mints_again_once_half_the_lifetime_is_over() {
    // A zero lifetime leaves no reuse window: every call mints.
    let issuer = issuer().with_ttl(Duration::ZERO);
    let who = principal(&[Role::Bot]);
    let first = issuer.token_for(AUDIENCE, &who).unwrap();
    assert_ne!(issuer.token_for(AUDIENCE, &who).unwrap(), first);
}

#[test]
fn token_reuse_is_bounded() {
    let reuse = super::reuse::TokenReuse::default();
    let mut minted = 0;
    for n in 0..10_000 {
        let id: crate::types::PrincipalId = format!("key_{n}").parse().unwrap();
        reuse
            .get_or_mint(AUDIENCE, &id, None, &[Role::Bot], DEFAULT_TTL, || {
                minted += 1;
                Ok::<_, AuthError>(format!("token-{n}"))
            })
            .unwrap();
    }
    assert_eq!(minted, 10_000);
    assert!(reuse.len() <= 8 * 512, "{} tokens held", reuse.len());
    // The most recent holder is still served from the cache.
    let id: crate::types::PrincipalId = "key_9999".parse().unwrap();
    let token = reuse
        .get_or_mint(AUDIENCE, &id, None, &[Role::Bot], DEFAULT_TTL, || {
            Err(AuthError::Clock)
        })
        .unwrap();
    assert_eq!(&*token, "token-9999");
}

fn metadata_with(token: &str, request_id: Option<&str>) -> tonic::metadata::MetadataMap {
    let mut metadata = tonic::metadata::MetadataMap::new();
    metadata.insert(
        AUTHORIZATION_HEADER,
        format!("Bearer {token}").parse().unwrap(),
    );
    if let Some(id) = request_id {
        metadata.insert(REQUEST_ID_HEADER, id.parse().unwrap());
    }
    metadata
}

#[test]
fn verified_tokens_are_cached_and_expiry_still_applies() {
    let auth = InternalAuth::new(Arc::new(verifier()));
    let now = SystemTime::now();
    let token = issuer().sign(&claims_at(now, 60)).unwrap();
    let metadata = metadata_with(&token, None);
    let first = auth.authenticate_at(&metadata, now).unwrap();
    assert_eq!(auth.cached_tokens(), 1);
    let again = auth
        .authenticate_at(&metadata, now + Duration::from_secs(30))
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(auth.cached_tokens(), 1, "the second call was a cache hit");

    // Past exp + leeway the cached entry no longer admits the token.
    let status = auth
        .authenticate_at(&metadata, now + Duration::from_secs(66))
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    // Nor before its issue time.
    assert!(
        auth.authenticate_at(&metadata, now - Duration::from_secs(10))
            .is_err()
    );
}

#[test]
fn a_cached_token_is_rejected_for_another_audience_or_an_untrusted_key() {
    let cache = super::verified::VerifiedTokens::with_capacity(64);
    let now = SystemTime::now();
    let token = issuer().sign(&claims_at(now, 60)).unwrap();
    assert!(cache.verify(&verifier(), &token, now).is_ok());
    assert_eq!(cache.len(), 1);

    let consent = TokenVerifier::new("consent").with_key("gw-1", signing_key().verifying_key());
    assert_eq!(
        cache.verify(&consent, &token, now).unwrap_err(),
        AuthError::Audience
    );

    // The key was dropped from the trust set, or the kid now names another key.
    let dropped = TokenVerifier::new(AUDIENCE);
    assert!(matches!(
        cache.verify(&dropped, &token, now),
        Err(AuthError::Token(_))
    ));
    let rotated = TokenVerifier::new(AUDIENCE)
        .with_key("gw-1", SigningKey::from_bytes(&[12; 32]).verifying_key());
    assert!(matches!(
        cache.verify(&rotated, &token, now),
        Err(AuthError::Token(_))
    ));
    // And the original verifier still accepts it.
    assert!(cache.verify(&verifier(), &token, now).is_ok());
}

#[test]
fn a_payload_swapped_under_a_cached_signature_is_rejected() {
    let auth = InternalAuth::new(Arc::new(verifier()));
    let token = issuer()
        .mint_for(AUDIENCE, &principal(&[Role::Agent]))
        .unwrap();
    assert!(auth.authenticate(&metadata_with(&token, None)).is_ok());
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["roles"] = json!(["admin"]);
    let elevated = URL_SAFE_NO_PAD.encode(claims.to_string());
    let tampered = format!("{}.{elevated}.{}", parts[0], parts[2]);
    let status = auth
        .authenticate(&metadata_with(&tampered, None))
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(auth.cached_tokens(), 1);
}

#[test]
fn cache_capacity_zero_caches_nothing_and_the_cache_is_bounded() {
    let off = InternalAuth::with_cache_capacity(Arc::new(verifier()), 0);
    let token = issuer()
        .mint_for(AUDIENCE, &principal(&[Role::Bot]))
        .unwrap();
    assert!(off.authenticate(&metadata_with(&token, None)).is_ok());
    assert_eq!(off.cached_tokens(), 0);

    let small = InternalAuth::with_cache_capacity(Arc::new(verifier()), 32);
    for _ in 0..200 {
        let token = issuer()
            .mint_for(AUDIENCE, &principal(&[Role::Bot]))
            .unwrap();
        assert!(small.authenticate(&metadata_with(&token, None)).is_ok());
    }
    // 16 shards of 2.
    assert!(small.cached_tokens() <= 32, "{}", small.cached_tokens());
}

#[test]
fn the_call_request_id_comes_from_metadata_when_it_is_plain() {
    let auth = InternalAuth::new(Arc::new(verifier()));
    let who = principal(&[Role::Bot]);
    let token = issuer().token_for(AUDIENCE, &who).unwrap();
    let from_header = auth
        .authenticate(&metadata_with(&token, Some("req-2")))
        .unwrap();
    assert_eq!(from_header.request_id.as_str(), "req-2");
    assert_eq!(from_header.principal_id, who.principal_id);
    // Missing or not a plain id (could be personal data): the signed one.
    for header in [None, Some("alice@example.com")] {
        let principal = auth.authenticate(&metadata_with(&token, header)).unwrap();
        assert_eq!(principal.request_id, who.request_id, "{header:?}");
    }
}

#[test]
fn bearer_minter_reuses_its_token_and_sends_each_request_id() {
    let issuer = Arc::new(issuer());
    let mut minter = BearerMinter::new(
        issuer,
        AUDIENCE,
        "retention".parse().unwrap(),
        None,
        vec![Role::Service],
    );
    let server = InternalAuth::new(Arc::new(verifier()));
    let mut seen = Vec::new();
    for _ in 0..3 {
        let request = minter.call(Request::new(())).unwrap();
        let who = server.authenticate(request.metadata()).unwrap();
        seen.push((
            bearer_token(request.metadata()).unwrap().to_string(),
            who.request_id,
        ));
    }
    assert!(seen.iter().all(|(token, _)| *token == seen[0].0));
    assert_ne!(seen[0].1, seen[1].1);
    assert_ne!(seen[1].1, seen[2].1);
}
