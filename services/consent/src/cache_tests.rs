use super::*;
use crate::domain::CurrentRecord;
use veil_proto::common::v1::{ConsentDecision, DecisionReason};
use veil_proto::consent::v1::ConsentState;

fn serving_cache(capacity: usize, ttl: Duration) -> DecisionCache {
    let cache = DecisionCache::new(capacity, ttl);
    cache.serve_until(Instant::now() + Duration::from_secs(60));
    cache
}

fn key(n: u8) -> SubjectKey {
    (Uuid::nil(), [n; 32])
}

fn granted(purpose: &str) -> SubjectState {
    SubjectState {
        records: vec![CurrentRecord {
            record_id: Uuid::now_v7(),
            purpose_key: purpose.into(),
            state: ConsentState::Granted as i32,
            event_time: OffsetDateTime::now_utc(),
            expires_at: None,
            notice_version: 1,
        }],
        signals: vec![],
    }
}

#[test]
fn serves_only_while_fenced_open() {
    let cache = DecisionCache::new(10, Duration::from_secs(5));
    cache.put_subject(
        key(1),
        Arc::new(SubjectState::default()),
        cache.generation(),
    );
    assert!(
        cache.subject(&key(1)).is_none(),
        "not serving before serve_until"
    );
    cache.serve_until(Instant::now() + Duration::from_secs(5));
    cache.put_subject(
        key(1),
        Arc::new(SubjectState::default()),
        cache.generation(),
    );
    assert!(cache.subject(&key(1)).is_some());
    cache.stop_serving();
    assert!(cache.subject(&key(1)).is_none());
}

#[test]
fn entries_expire_after_the_ttl() {
    let cache = serving_cache(10, Duration::from_millis(30));
    cache.put_subject(
        key(1),
        Arc::new(SubjectState::default()),
        cache.generation(),
    );
    assert!(cache.subject(&key(1)).is_some());
    std::thread::sleep(Duration::from_millis(40));
    assert!(cache.subject(&key(1)).is_none());
}

#[test]
fn a_load_that_overlapped_an_invalidation_is_not_cached() {
    let cache = serving_cache(10, Duration::from_secs(5));
    let generation = cache.generation();
    cache.invalidate_subject(&key(2));
    cache.put_subject(key(1), Arc::new(SubjectState::default()), generation);
    assert!(cache.subject(&key(1)).is_none());
}

#[test]
fn invalidation_is_per_subject_and_per_tenant() {
    let cache = serving_cache(10, Duration::from_secs(5));
    let other_tenant = (Uuid::now_v7(), [1; 32]);
    for k in [key(1), key(2), other_tenant] {
        cache.put_subject(k, Arc::new(SubjectState::default()), cache.generation());
    }
    cache.invalidate_subject(&key(1));
    assert!(cache.subject(&key(1)).is_none());
    assert!(cache.subject(&key(2)).is_some());
    cache.invalidate_tenant(Uuid::nil());
    assert!(cache.subject(&key(2)).is_none());
    assert!(cache.subject(&other_tenant).is_some());
}

#[test]
fn size_stays_bounded() {
    let cache = serving_cache(50, Duration::from_secs(5));
    for n in 0..=200u8 {
        cache.put_subject(
            key(n),
            Arc::new(SubjectState::default()),
            cache.generation(),
        );
        assert!(cache.len() <= 50);
    }
    assert!(
        cache.subject(&key(200)).is_some(),
        "the newest entry is kept"
    );
}

#[test]
fn a_zero_capacity_cache_is_off() {
    let cache = serving_cache(0, Duration::from_secs(5));
    cache.put_subject(
        key(1),
        Arc::new(SubjectState::default()),
        cache.generation(),
    );
    assert!(!cache.serving());
    assert!(cache.is_empty());
}

#[test]
fn tenant_purposes_include_model_training_and_decide_in_order() {
    let purposes = TenantPurposes::new(vec![], ControllerRow::default());
    let now = OffsetDateTime::now_utc();
    let keys = vec!["model_training".to_string()];
    let none = purposes
        .decide_all(&SubjectState::default(), &keys, 0, now)
        .expect("known");
    assert_eq!(none[0].reason, DecisionReason::NoRecordOptIn as i32);
    let yes = purposes
        .decide_all(&granted("model_training"), &keys, 0, now)
        .expect("known");
    assert_eq!(yes[0].decision, ConsentDecision::Allowed as i32);
    let unknown = purposes.decide_all(&SubjectState::default(), &["nope".into()], 0, now);
    assert_eq!(unknown, Err("nope".to_string()));
}

#[test]
fn subject_keys_need_hex() {
    assert!(subject_key(Uuid::nil(), &"ab".repeat(32)).is_some());
    assert!(subject_key(Uuid::nil(), "zz").is_none());
}
