//! Admin API: tenants and API keys, their roles, tenant isolation, revocation and expiry.

#![allow(clippy::unwrap_used)]

mod admin_support;

use admin_support::{BOOTSTRAP, Gateway, bearer, code};
use tonic::Code;
use veil_proto::common::v1::{PageRequest, Role as ProtoRole};
use veil_proto::gateway::v1::{
    CreateApiKeyRequest, GetTenantRequest, ListApiKeysRequest, ListTenantsRequest,
    RevokeApiKeyRequest, TenantState,
};

#[tokio::test(flavor = "multi_thread")]
async fn tenants_are_read_by_their_admin_and_listed_by_the_platform() -> anyhow::Result<()> {
    let gw = Gateway::start().await?;
    let mut ids = Vec::new();
    for slug in ["list-a", "list-b", "list-c", "other-d"] {
        ids.push(gw.tenant(slug).await?);
    }
    let (a_id, a_admin) = ids[0].clone();
    let mut admin = gw.admin();

    // Own tenant, by default and by id.
    let own = admin
        .get_tenant(bearer(GetTenantRequest::default(), &a_admin))
        .await?
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(own.tenant_id, a_id);
    assert_eq!(own.slug, "list-a");
    assert_eq!(own.state, TenantState::Active as i32);
    let by_id = GetTenantRequest {
        tenant_id: a_id.clone(),
    };
    assert_eq!(
        code(admin.get_tenant(bearer(by_id.clone(), &a_admin)).await),
        Code::Ok
    );
    assert_eq!(
        code(admin.get_tenant(bearer(by_id, BOOTSTRAP)).await),
        Code::Ok
    );

    // Another tenant's id looks exactly like an unknown one.
    let other = GetTenantRequest {
        tenant_id: ids[1].0.clone(),
    };
    let unknown = GetTenantRequest {
        tenant_id: uuid::Uuid::now_v7().to_string(),
    };
    assert_eq!(
        code(admin.get_tenant(bearer(other, &a_admin)).await),
        Code::NotFound
    );
    assert_eq!(
        code(admin.get_tenant(bearer(unknown.clone(), &a_admin)).await),
        Code::NotFound
    );
    assert_eq!(
        code(admin.get_tenant(bearer(unknown, BOOTSTRAP)).await),
        Code::NotFound
    );
    let malformed = GetTenantRequest {
        tenant_id: "nope".into(),
    };
    assert_eq!(
        code(admin.get_tenant(bearer(malformed, BOOTSTRAP)).await),
        Code::InvalidArgument
    );
    // The platform key has no tenant of its own.
    assert_eq!(
        code(
            admin
                .get_tenant(bearer(GetTenantRequest::default(), BOOTSTRAP))
                .await
        ),
        Code::InvalidArgument
    );
    // A bot may not read tenants.
    let (bot_id, bot) = gw.key(&a_admin, &[ProtoRole::Bot]).await?;
    let as_bot = bearer(GetTenantRequest::default(), &bot);
    assert_eq!(code(admin.get_tenant(as_bot).await), Code::PermissionDenied);
    // The refusal is recorded for audit's abuse rules.
    let denied = gw.events("auth_failed").await?;
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].tenant_id, a_id);
    match denied[0].payload.as_ref().unwrap() {
        veil_proto::events::v1::event::Payload::GatewayAuthFailed(e) => {
            assert_eq!(e.method, "/veil.gateway.v1.AdminService/GetTenant");
            assert_eq!(e.key_prefix, format!("veil_{bot_id}"));
            assert_eq!(
                e.reason,
                veil_proto::events::v1::AuthFailureReason::PermissionDenied as i32
            );
        }
        other => panic!("unexpected payload {other:?}"),
    }

    // The platform pages through every tenant matching a prefix.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = admin
            .list_tenants(bearer(
                ListTenantsRequest {
                    page: Some(PageRequest {
                        page_size: 2,
                        page_token: token.clone(),
                    }),
                    slug_prefix: "list-".into(),
                    include_suspended: false,
                },
                BOOTSTRAP,
            ))
            .await?
            .into_inner();
        assert!(page.tenants.len() <= 2);
        seen.extend(page.tenants.into_iter().map(|t| t.slug));
        token = page.page.unwrap().next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen, ["list-a", "list-b", "list-c"]);

    // A tenant admin sees only its own tenant.
    let listed = admin
        .list_tenants(bearer(ListTenantsRequest::default(), &a_admin))
        .await?
        .into_inner();
    let slugs: Vec<_> = listed.tenants.iter().map(|t| t.slug.as_str()).collect();
    assert_eq!(slugs, ["list-a"]);
    let bad_page = ListTenantsRequest {
        page: Some(PageRequest {
            page_size: 10,
            page_token: "!!".into(),
        }),
        ..Default::default()
    };
    assert_eq!(
        code(admin.list_tenants(bearer(bad_page, BOOTSTRAP)).await),
        Code::InvalidArgument
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_listed_paged_and_revoked_at_once() -> anyhow::Result<()> {
    let gw = Gateway::start().await?;
    let (tenant, admin_key) = gw.tenant("keys").await?;
    let mut admin = gw.admin();
    let mut created = Vec::new();
    for _ in 0..3 {
        created.push(gw.key(&admin_key, &[ProtoRole::Bot]).await?);
    }
    let (victim_id, victim_secret) = gw.key(&admin_key, &[ProtoRole::Admin]).await?;
    let list = |include_revoked: bool, token: String, size: i32| ListApiKeysRequest {
        tenant_id: String::new(),
        page: Some(PageRequest {
            page_size: size,
            page_token: token,
        }),
        include_revoked,
    };

    // Paged, in creation order, never with a secret.
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let page = admin
            .list_api_keys(bearer(list(false, token.clone(), 2), &admin_key))
            .await?
            .into_inner();
        for key in &page.api_keys {
            assert_eq!(key.tenant_id, tenant);
            assert_eq!(key.prefix, format!("veil_{}", key.key_id));
        }
        ids.extend(page.api_keys.into_iter().map(|k| k.key_id));
        token = page.page.unwrap().next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(
        ids.len(),
        5,
        "the tenant's admin key, three bots and the victim"
    );
    assert_eq!(
        &ids[1..4],
        created.iter().map(|c| c.0.clone()).collect::<Vec<_>>()
    );

    // The victim works, is revoked, and stops working on the very next call.
    let whoami = || bearer(GetTenantRequest::default(), &victim_secret);
    assert_eq!(code(admin.get_tenant(whoami()).await), Code::Ok);
    let revoke = RevokeApiKeyRequest {
        tenant_id: String::new(),
        key_id: victim_id.clone(),
        reason: "rotated".into(),
    };
    let revoked = admin
        .revoke_api_key(bearer(revoke.clone(), &admin_key))
        .await?
        .into_inner()
        .api_key
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(
        code(admin.get_tenant(whoami()).await),
        Code::Unauthenticated
    );
    // Revoking again is a no-op without a second event.
    assert_eq!(
        code(admin.revoke_api_key(bearer(revoke, &admin_key)).await),
        Code::Ok
    );
    let events = gw.events("api_key_revoked").await?;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].tenant_id, tenant);
    match events[0].payload.as_ref().unwrap() {
        veil_proto::events::v1::event::Payload::GatewayApiKeyRevoked(e) => {
            assert_eq!(e.key_id, victim_id);
            assert_eq!(e.reason, "rotated");
        }
        other => panic!("unexpected payload {other:?}"),
    }

    // Revoked keys are listed only on request.
    let active = admin
        .list_api_keys(bearer(list(false, String::new(), 0), &admin_key))
        .await?
        .into_inner();
    assert_eq!(active.api_keys.len(), 4);
    let all = admin
        .list_api_keys(bearer(list(true, String::new(), 0), &admin_key))
        .await?
        .into_inner();
    assert_eq!(all.api_keys.len(), 5);

    // Bad input and other people's keys.
    let bad = |key_id: &str| RevokeApiKeyRequest {
        key_id: key_id.into(),
        ..Default::default()
    };
    assert_eq!(
        code(admin.revoke_api_key(bearer(bad(""), &admin_key)).await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(
            admin
                .revoke_api_key(bearer(bad("zzzzzzzzzzzz"), &admin_key))
                .await
        ),
        Code::NotFound
    );
    let (_, other_admin) = gw.tenant("keys-other").await?;
    assert_eq!(
        code(
            admin
                .revoke_api_key(bearer(bad(&created[0].0), &other_admin))
                .await
        ),
        Code::NotFound,
        "a key of another tenant is invisible"
    );
    let foreign = ListApiKeysRequest {
        tenant_id: tenant.clone(),
        ..Default::default()
    };
    assert_eq!(
        code(
            admin
                .list_api_keys(bearer(foreign.clone(), &other_admin))
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(admin.list_api_keys(bearer(foreign, BOOTSTRAP)).await),
        Code::Ok
    );
    let bot = &created[0].1;
    assert_eq!(
        code(
            admin
                .list_api_keys(bearer(list(false, String::new(), 0), bot))
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            admin
                .list_api_keys(bearer(list(false, "x".into(), 0), &admin_key))
                .await
        ),
        Code::InvalidArgument
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_keys_stop_working() -> anyhow::Result<()> {
    let gw = Gateway::start().await?;
    let (_, admin_key) = gw.tenant("expiry").await?;
    let mut admin = gw.admin();
    let soon = veil_core::convert::timestamp(
        time::OffsetDateTime::now_utc() + time::Duration::seconds(60),
    );
    let created = admin
        .create_api_key(bearer(
            CreateApiKeyRequest {
                name: "short-lived".into(),
                roles: vec![ProtoRole::Admin as i32],
                expires_at: Some(soon),
                ..Default::default()
            },
            &admin_key,
        ))
        .await?
        .into_inner()
        .created
        .unwrap();
    let call = || bearer(GetTenantRequest::default(), &created.secret);
    assert_eq!(code(admin.get_tenant(call()).await), Code::Ok);
    // Move the expiry into the past instead of waiting for it.
    let pool = gw.env.db.pool("gateway").await?;
    sqlx::query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE key_id = $1")
        .bind(&created.api_key.unwrap().key_id)
        .execute(&pool)
        .await?;
    // A key edited behind the API's back is re-read when its cache entry expires (5 s).
    veil_testkit::eventually(std::time::Duration::from_secs(7), || {
        let mut admin = admin.clone();
        async move { (code(admin.get_tenant(call()).await) == Code::Unauthenticated).then_some(()) }
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_keys_are_refused_naming_the_field() -> anyhow::Result<()> {
    let gw = Gateway::start().await?;
    let (_, admin_key) = gw.tenant("bad-keys").await?;
    let mut admin = gw.admin();
    let key = |roles: Vec<ProtoRole>, expires_at| CreateApiKeyRequest {
        name: "k".into(),
        roles: roles.into_iter().map(|r| r as i32).collect(),
        expires_at,
        ..Default::default()
    };
    // The last second the calendar holds, plus a whole second of nanos: once a panic.
    let beyond = prost_types::Timestamp {
        seconds: 253_402_300_799,
        nanos: 1_000_000_000,
    };
    for (request, field) in [
        (key(vec![], None), "roles"),
        (key(vec![ProtoRole::Bot, ProtoRole::Bot], None), "roles[1]"),
        (key(vec![ProtoRole::PlatformAdmin], None), "roles[0]"),
        (key(vec![ProtoRole::Bot], Some(beyond)), "expires_at"),
    ] {
        let status = admin
            .create_api_key(bearer(request, &admin_key))
            .await
            .expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        assert!(
            status.message().starts_with(&format!("invalid {field}:")),
            "{field}: {}",
            status.message()
        );
    }
    Ok(())
}
