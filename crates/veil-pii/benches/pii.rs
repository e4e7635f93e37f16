//! Throughput of the engine on one core: short chat messages (~75 characters,
//! mixed personal data) and long texts. `cargo bench -p veil-pii`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use veil_pii::{Analyzer, Anonymizer, Keys, Operator, Policy, PolicySpec, PseudonymMap};

/// Short messages of the kind a chatbot sees; about 75 characters on average.
pub const MESSAGES: &[&str] = &[
    "Hi, I'm Anna Schmidt, you can reach me at anna.schmidt@example.com thanks",
    "My card 4111 1111 1111 1111 was charged twice, please refund it asap!",
    "Call me back on +44 20 7946 0958 after 5pm, ask for Tom or Sarah please.",
    "Ich heiße Hans Müller und wohne in der Hauptstraße 5, 10115 Berlin.",
    "Mijn IBAN is NL91ABNA0417164300, t.n.v. Jan de Vries. Graag terugstorten.",
    "Can you check order 88231 for me? It was shipped to 221B Baker Street.",
    "Je m'appelle Marie Dubois, née le 12/03/1985, mon numéro est 06 12 34 56 78",
    "The server at 192.168.10.24 keeps dropping my session, see logs attached",
    "Me llamo Carlos García y mi DNI es 12345678Z, necesito cambiar la cita.",
    "Thanks Peter! I sent the report to the team yesterday, let me know ok?",
    "my ssn is 078-05-1123 and I was born on March 3, 1985 in Springfield",
    "Please update my email to j.doe+shop@mail.example.org and keep the rest",
    "What are your opening hours on Sunday? I would like to visit next week.",
    "I can't log in since the update, the app just shows a blank screen :(",
    "BTC refund to 16Yeky6GMjeNkAiNcBY7ZhrLoMSgg1BoyZ please, not to my card",
    "Grace period ends tomorrow? Will the fee be waived if I pay on Monday?",
];

fn corpus_long() -> String {
    // Prose with personal data every few hundred bytes, repeated to ~1 MB.
    let paragraph = "The customer wrote again about the delayed delivery and asked whether the \
        parcel could be redirected to another address. According to the notes, the first attempt \
        failed because nobody was at home, and the second one was scheduled for the following \
        week. She mentioned that her neighbour could accept it. Please contact Maria Lopez at \
        maria.lopez@example.net or on 030 1234567 before Friday. The account ends with \
        DE89 3704 0044 0532 0130 00 and the ticket was opened from 10.0.0.42 last night. \
        Nothing else seems to be missing from the request, and the refund policy applies as usual. ";
    let mut text = String::with_capacity(1 << 20);
    while text.len() < 1 << 20 {
        text.push_str(paragraph);
        text.push('\n');
    }
    text
}

fn bench(c: &mut Criterion) {
    let analyzer = Analyzer::new();
    let policy = Policy::default();
    let total: usize = MESSAGES.iter().map(|m| m.chars().count()).sum();
    eprintln!(
        "short messages: {} of {:.0} characters on average",
        MESSAGES.len(),
        total as f64 / MESSAGES.len() as f64
    );

    let mut group = c.benchmark_group("analyze");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(30);
    group.throughput(Throughput::Elements(MESSAGES.len() as u64));
    group.bench_function(BenchmarkId::new("short_messages", MESSAGES.len()), |b| {
        b.iter(|| {
            for m in MESSAGES {
                black_box(analyzer.analyze(black_box(m), &policy));
            }
        })
    });
    let long = corpus_long();
    group.throughput(Throughput::Bytes(long.len() as u64));
    group.sample_size(10);
    group.bench_function(BenchmarkId::new("long_text", long.len()), |b| {
        b.iter(|| black_box(analyzer.analyze(black_box(&long), &policy)))
    });
    group.finish();

    let pseudo = Policy::new(PolicySpec {
        default_operator: Operator::Pseudonymize,
        ..PolicySpec::default()
    })
    .expect("valid policy");
    let anonymizer = Anonymizer::new(Keys::none());
    let mut group = c.benchmark_group("redact");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(30);
    group.throughput(Throughput::Elements(MESSAGES.len() as u64));
    group.bench_function(
        BenchmarkId::new("short_messages_pseudonymize", MESSAGES.len()),
        |b| {
            b.iter(|| {
                let mut map = PseudonymMap::new();
                for m in MESSAGES {
                    let findings = analyzer.analyze(m, &pseudo);
                    black_box(anonymizer.anonymize(m, &findings, &pseudo, &mut map).ok());
                }
            })
        },
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
