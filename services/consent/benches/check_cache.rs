//! CheckConsent from the in-process cache: the latency of one decision set, measured
//! call by call (so p99 is a real percentile, not an average).
//!
//! `cargo bench -p veil-consent --bench check_cache`
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use uuid::Uuid;
use veil_consent::CheckPath;
use veil_consent::cache::{DecisionCache, TenantPurposes, subject_key};
use veil_consent::domain::{CurrentRecord, PurposeDef, SubjectState};
use veil_core::types::SubjectRef;
use veil_proto::common::v1::{Jurisdiction, LegalBasis};
use veil_proto::consent::v1::ConsentState;

const SUBJECTS: usize = 50_000;
const CALLS_PER_THREAD: usize = 400_000;

fn purposes() -> Vec<PurposeDef> {
    let mut all = Vec::new();
    for (i, basis) in [
        LegalBasis::Contract,
        LegalBasis::Consent,
        LegalBasis::Consent,
        LegalBasis::LegitimateInterests,
        LegalBasis::Consent,
        LegalBasis::Consent,
    ]
    .into_iter()
    .enumerate()
    {
        all.push(PurposeDef {
            key: format!("purpose_{i}"),
            legal_basis: basis as i32,
            consent_required: basis == LegalBasis::Consent,
            ..PurposeDef::builtin_model_training()
        });
    }
    all
}

fn state(n: usize) -> SubjectState {
    let now = OffsetDateTime::now_utc();
    SubjectState {
        records: (0..4)
            .map(|i| CurrentRecord {
                record_id: Uuid::now_v7(),
                purpose_key: format!("purpose_{i}"),
                state: if (n + i).is_multiple_of(3) {
                    ConsentState::Withdrawn
                } else {
                    ConsentState::Granted
                } as i32,
                event_time: now,
                expires_at: None,
                notice_version: 1,
            })
            .collect(),
        signals: Vec::new(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// For scale: what checking one internal token costs in full (Ed25519 signature and
/// claims) and from the interceptor's verified-token cache (callers reuse a token, so
/// this is what nearly every call pays).
fn token_verification() {
    use veil_core::auth::{
        AUTHORIZATION_HEADER, InternalAuth, Principal, TokenIssuer, TokenVerifier,
        generate_signing_key,
    };
    use veil_core::types::{RequestId, Role, TenantId};
    let key = generate_signing_key();
    let verifier = Arc::new(TokenVerifier::new("consent").with_key("k", key.verifying_key()));
    let issuer = TokenIssuer::new(key, "k", "veil-gateway");
    let principal = Principal {
        tenant: Some(TenantId::generate()),
        principal_id: "gateway:key".parse().unwrap(),
        roles: vec![Role::Bot],
        request_id: RequestId::generate(),
    };
    let token = issuer.token_for("consent", &principal).unwrap();
    let rounds = 20_000;
    let started = Instant::now();
    for _ in 0..rounds {
        assert!(verifier.verify(&token).is_ok());
    }
    let full = started.elapsed() / rounds;
    let header = |token: &str| {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert(
            AUTHORIZATION_HEADER,
            format!("Bearer {token}").parse().unwrap(),
        );
        metadata
    };
    // Every call with its own token (callers that do not reuse): a miss, a full
    // verification and an insert into the bounded cache each time.
    let auth = InternalAuth::new(verifier);
    let fresh: Vec<_> = (0..20_000)
        .map(|_| header(&issuer.mint_for("consent", &principal).unwrap()))
        .collect();
    let started = Instant::now();
    for metadata in &fresh {
        assert!(auth.authenticate(metadata).is_ok());
    }
    let missed = started.elapsed() / fresh.len() as u32;
    let metadata = header(&token);
    let rounds = 200_000;
    let started = Instant::now();
    for _ in 0..rounds {
        assert!(auth.authenticate(&metadata).is_ok());
    }
    let cached = started.elapsed() / rounds;
    println!(
        "for scale, one internal-token check (veil-core interceptor): {full:?} in full \
         (signature), {missed:?} through the interceptor with a new token every call, \
         {cached:?} from the verified-token cache (a reused token)"
    );
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    let cache = Arc::new(DecisionCache::new(SUBJECTS * 2, Duration::from_secs(3600)));
    cache.serve_until(Instant::now() + Duration::from_secs(3600));
    let tenant = Uuid::now_v7();
    let generation = cache.generation();
    cache.put_tenant(
        tenant,
        Arc::new(TenantPurposes::new(purposes(), Default::default())),
        generation,
    );
    let refs: Vec<SubjectRef> = (0..SUBJECTS)
        .map(|n| {
            let mut digest = [0u8; 32];
            digest[..8].copy_from_slice(&(n as u64).to_be_bytes());
            SubjectRef::from_digest(&digest)
        })
        .collect();
    for (n, subject) in refs.iter().enumerate() {
        let key = subject_key(tenant, subject.as_str()).unwrap();
        cache.put_subject(key, Arc::new(state(n)), cache.generation());
    }
    // The real hot path of the handler, over a pool that is never used on a hit.
    let pool = sqlx::PgPool::connect_lazy("postgres://unused@127.0.0.1:1/none").unwrap();
    let path = Arc::new(CheckPath::new(pool, cache));
    let keys: Vec<String> = ["purpose_0", "purpose_1", "purpose_4", "model_training"]
        .iter()
        .map(|k| k.to_string())
        .collect();
    let eu = Jurisdiction::EuGdpr as i32;
    println!(
        "consent check from the in-process cache: {SUBJECTS} subjects, {} purposes per check",
        keys.len()
    );
    token_verification();
    for threads in [1usize, 2] {
        let started = Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let path = path.clone();
                let refs = refs.clone();
                let keys = keys.clone();
                std::thread::spawn(move || {
                    let mut samples = Vec::with_capacity(CALLS_PER_THREAD);
                    let now = OffsetDateTime::now_utc();
                    for i in 0..CALLS_PER_THREAD {
                        let subject = &refs[(i * 7919 + t * 104_729) % refs.len()];
                        let start = Instant::now();
                        let decided = path.decide_cached(tenant, subject, &keys, eu, now);
                        samples.push(start.elapsed());
                        assert!(matches!(decided, Some(Ok(ref d)) if d.len() == 4));
                    }
                    samples
                })
            })
            .collect();
        let mut samples: Vec<Duration> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let wall = started.elapsed();
        samples.sort();
        println!(
            "threads={threads} calls={} p50={:?} p99={:?} p99.9={:?} max={:?} rate={:.0}/s",
            samples.len(),
            percentile(&samples, 0.50),
            percentile(&samples, 0.99),
            percentile(&samples, 0.999),
            samples.last().unwrap(),
            samples.len() as f64 / wall.as_secs_f64()
        );
    }
}
