//! Veil's AES-256-GCM envelope against raw `aes-gcm` with the same key, in the same run.
//!
//! Target: the envelope (fresh random nonce, AAD binding, one output allocation) keeps
//! at least 0.8x the throughput of a bare `Aes256Gcm::encrypt`/`decrypt` for 1 KiB and
//! 16 KiB values. Criterion reports absolute figures; afterwards an interleaved A/B run
//! (veil and raw alternating, median of rounds) prints the ratio, which is robust to
//! other load on the machine drifting during the criterion groups.
//!
//! Run: `cargo bench -p veil-core --bench crypto`

use std::hint::black_box;
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead as _, Payload};
use aes_gcm::{Aes256Gcm, KeyInit as _, Nonce};
use criterion::{Criterion, Throughput};
use veil_core::crypto::{Aad, DataCipher, KeyBytes, seal};
use veil_core::types::{SubjectRef, TenantId};

const SIZES: [usize; 2] = [1024, 16 * 1024];
const TARGET_RATIO: f64 = 0.8;

struct Fixture {
    key: KeyBytes,
    veil: DataCipher,
    raw: Aes256Gcm,
    aad: Aad,
    nonce: [u8; 12],
}

impl Fixture {
    fn new() -> Self {
        let key = KeyBytes::generate();
        let tenant = TenantId::generate();
        let subject = SubjectRef::from_digest(&[0xab; 32]);
        Self {
            veil: DataCipher::new(&key),
            raw: Aes256Gcm::new(key.expose().into()),
            aad: Aad::record(
                &tenant,
                &subject,
                "0190c7a8-6c1e-7b3a-9f00-000000000001",
                "email",
            ),
            nonce: [7; 12],
            key,
        }
    }

    fn veil_seal(&self, plaintext: &[u8]) -> Vec<u8> {
        self.veil.seal(&self.aad, plaintext).expect("seal")
    }

    fn veil_open(&self, sealed: &[u8]) -> Vec<u8> {
        self.veil.open(&self.aad, sealed).expect("open")
    }

    fn raw_seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let payload = Payload {
            msg: plaintext,
            aad: self.aad.as_bytes(),
        };
        self.raw
            .encrypt(Nonce::from_slice(&self.nonce), payload)
            .expect("encrypt")
    }

    fn raw_open(&self, ciphertext: &[u8]) -> Vec<u8> {
        let payload = Payload {
            msg: ciphertext,
            aad: self.aad.as_bytes(),
        };
        self.raw
            .decrypt(Nonce::from_slice(&self.nonce), payload)
            .expect("decrypt")
    }
}

fn criterion_groups(criterion: &mut Criterion, fixture: &Fixture) {
    for size in SIZES {
        let plaintext = vec![0x5a; size];
        let sealed = fixture.veil_seal(&plaintext);
        let raw_sealed = fixture.raw_seal(&plaintext);

        let mut group = criterion.benchmark_group(format!("seal_{}KiB", size / 1024));
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function("veil", |b| {
            b.iter(|| fixture.veil_seal(black_box(&plaintext)))
        });
        group.bench_function("veil_with_key_setup", |b| {
            b.iter(|| seal(&fixture.key, &fixture.aad, black_box(&plaintext)))
        });
        group.bench_function("raw_aes_gcm", |b| {
            b.iter(|| fixture.raw_seal(black_box(&plaintext)))
        });
        group.finish();

        let mut group = criterion.benchmark_group(format!("open_{}KiB", size / 1024));
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function("veil", |b| b.iter(|| fixture.veil_open(black_box(&sealed))));
        group.bench_function("raw_aes_gcm", |b| {
            b.iter(|| fixture.raw_open(black_box(&raw_sealed)))
        });
        group.finish();
    }
}

/// Median over `rounds` of (raw time / veil time) for `iterations` calls each, the two
/// alternating so both see the same machine conditions. Above 1.0 means veil is faster.
fn interleaved_ratio(rounds: usize, iterations: usize, veil: impl Fn(), raw: impl Fn()) -> f64 {
    let time = |work: &dyn Fn()| {
        let start = Instant::now();
        for _ in 0..iterations {
            work();
        }
        start.elapsed()
    };
    let mut ratios: Vec<f64> = (0..rounds)
        .map(|round| {
            let (veil_time, raw_time) = if round % 2 == 0 {
                let v = time(&veil);
                (v, time(&raw))
            } else {
                let r = time(&raw);
                (time(&veil), r)
            };
            raw_time.as_secs_f64() / veil_time.as_secs_f64().max(f64::MIN_POSITIVE)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

fn print_ratios(fixture: &Fixture, quick: bool) {
    let (rounds, budget) = if quick { (3, 1 << 16) } else { (41, 1 << 25) };
    println!(
        "\nveil envelope throughput relative to raw aes-gcm (interleaved, median of {rounds} rounds; target >= {TARGET_RATIO}):"
    );
    for size in SIZES {
        let iterations = (budget / size).max(1);
        let plaintext = vec![0x5a; size];
        let sealed = fixture.veil_seal(&plaintext);
        let raw_sealed = fixture.raw_seal(&plaintext);
        let seal_ratio = interleaved_ratio(
            rounds,
            iterations,
            || drop(black_box(fixture.veil_seal(black_box(&plaintext)))),
            || drop(black_box(fixture.raw_seal(black_box(&plaintext)))),
        );
        let open_ratio = interleaved_ratio(
            rounds,
            iterations,
            || drop(black_box(fixture.veil_open(black_box(&sealed)))),
            || drop(black_box(fixture.raw_open(black_box(&raw_sealed)))),
        );
        for (operation, ratio) in [("seal", seal_ratio), ("open", open_ratio)] {
            let verdict = if ratio >= TARGET_RATIO {
                "ok"
            } else {
                "BELOW TARGET"
            };
            println!(
                "  {operation} {:>2} KiB: {ratio:.3}x  {verdict}",
                size / 1024
            );
        }
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not and only smoke-tests.
    let benchmarking = std::env::args().any(|arg| arg == "--bench");
    let output = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/criterion");
    let mut criterion = Criterion::default()
        .output_directory(std::path::Path::new(output))
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let fixture = Fixture::new();
    criterion_groups(&mut criterion, &fixture);
    criterion.final_summary();
    print_ratios(&fixture, !benchmarking);
}
