//! `veil bench`: ProcessMessage end to end through all five services, in-process, on a
//! throwaway database and NATS stream. Measures throughput (closed loop), latency at a
//! fixed rate (open loop) and, as the yardstick, raw single-row Postgres INSERTs on the
//! same server in the same run.

mod baseline;
mod drain;
mod load;
mod messages;
mod progress;
mod scratch;
mod setup;
mod stats;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use veil_cli::stack::Stack;

use self::baseline::Baseline;
use self::load::Load;
use self::progress::Progress;
use self::scratch::Scratch;
use self::stats::{Summary, round};

/// The raw arguments of `veil bench`, parsed here so a bad flag is one line and exit 2.
#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct RawArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    args: Vec<String>,
}

/// Measure ProcessMessage throughput and latency on a throwaway in-process stack.
#[derive(Parser, Debug)]
#[command(name = "veil bench")]
struct BenchArgs {
    /// Messages of the throughput run.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,
    /// Concurrent clients of the throughput run: enough to keep the stack busy (with 64
    /// the run measured the clients' wait, not the stack: docs/benchmarks.md, gateway).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u16).range(1..=4096))]
    concurrency: u16,
    /// HTTP/2 connections the clients share.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    channels: u16,
    /// Messages per second of the latency run (0 skips it).
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    rate: u32,
    /// Seconds of the latency run.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    rate_seconds: u64,
    /// Messages sent before measuring (connections, caches, JIT of the database plans).
    #[arg(long, default_value_t = 1_000)]
    warmup: u64,
    /// Seconds of the Postgres INSERT baseline (0 skips it).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=600))]
    baseline_seconds: u64,
    /// Connections of the INSERT baseline.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=64))]
    baseline_connections: u16,
    /// Send each message as a RedactStream of chunks of this many bytes (0: ProcessMessage).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=65_535))]
    stream_chunk: u16,
    /// After each message, restore a bot reply naming its placeholders (RestoreText), as a
    /// chatbot does with its LLM's answer; latency covers both calls.
    #[arg(long)]
    restore: bool,
    /// Send every message with its own idempotency key (each is claimed and its answer
    /// kept, as for a bot that retries).
    #[arg(long)]
    idempotency_keys: bool,
    /// Ask for a purpose on every message (adds a consent check per message).
    #[arg(long)]
    purposes: bool,
    /// Postgres server (a database `veil_bench_<random>` is created and dropped on it).
    /// The services reach it over loopback, so the default asks for no TLS, as the compose
    /// stack's Postgres offers none; leave `sslmode` out to measure with TLS where the
    /// server offers it.
    #[arg(
        long,
        env = "VEIL_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
    )]
    database_url: String,
    /// NATS server (a stream `BENCH_<random>` is created and deleted on it).
    #[arg(
        long,
        env = "VEIL_BENCH_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    nats_url: String,
    /// Print the results as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Everything one run measured.
struct Report {
    baseline: Option<Baseline>,
    at_rate: Option<Summary>,
    throughput: Summary,
    /// How long after the throughput run the audit log held every event, or why not.
    drain: Result<Duration, String>,
    load_before: String,
}

/// How long the audit log may take to catch up before the run says it did not.
const DRAIN_DEADLINE: Duration = Duration::from_secs(120);

impl Report {
    /// Messages per second over the throughput run and its audit `drain` together.
    fn sustained(&self, drain: Duration) -> f64 {
        self.throughput.ok as f64 / (self.throughput.seconds + drain.as_secs_f64())
    }
}

/// Runs `veil bench`: exit 0 when every message succeeded and reached the audit log, 1 on
/// failures, 2 on bad flags.
pub fn main(raw: RawArgs) -> ExitCode {
    let argv = std::iter::once("veil bench".to_owned()).chain(raw.args);
    let args = match BenchArgs::try_parse_from(argv) {
        Ok(args) => args,
        Err(error) => return veil_cli::usage::refused("veil bench", &error),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("veil bench: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The services' warnings go to stderr beside the progress (stdout holds the report):
    // a stuck relay or consumer says so.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_max_level(tracing::Level::WARN)
        .compact()
        .try_init();
    runtime.block_on(async move {
        match run(&args).await {
            Ok(report) => {
                print_report(&args, &report);
                let failed = report.throughput.errors > 0
                    || report.at_rate.as_ref().is_some_and(|r| r.errors > 0)
                    || report.drain.is_err();
                if failed {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(error) => {
                eprintln!("veil bench: {error:#}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Sets up the scratch environment, measures, and always removes it again.
async fn run(args: &BenchArgs) -> anyhow::Result<Report> {
    let load_before = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let scratch = Scratch::create(&args.database_url, &args.nats_url).await?;
    let result = tokio::select! {
        result = measure(args, &scratch) => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    for problem in scratch.remove().await {
        eprintln!("veil bench: cleanup: {problem}");
    }
    let (baseline, (at_rate, throughput, drain)) = result?;
    Ok(Report {
        baseline,
        at_rate,
        throughput,
        drain,
        load_before,
    })
}

type Driven = (Option<Summary>, Summary, Result<Duration, String>);
type Measured = (Option<Baseline>, Driven);

async fn measure(args: &BenchArgs, scratch: &Scratch) -> anyhow::Result<Measured> {
    // The baseline runs first, on an idle server, so it is the best the server does.
    let baseline = if args.baseline_seconds > 0 {
        let progress = Progress::start("baseline", 0);
        let measured = baseline::run(
            &scratch.db,
            usize::from(args.baseline_connections),
            Duration::from_secs(args.baseline_seconds),
            progress.counter(),
        )
        .await?;
        progress.finish();
        Some(measured)
    } else {
        None
    };

    let stack = Stack::build(scratch.stack_settings()).await?;
    let gateway = stack
        .addr("gateway")
        .ok_or_else(|| anyhow::anyhow!("the stack has no gateway"))?;
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(stack.run(shutdown.clone()));
    let measured = drive(args, scratch, &format!("http://{gateway}")).await;
    shutdown.cancel();
    match running.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => eprintln!("veil bench: stack stopped with: {error:#}"),
        Err(error) => eprintln!("veil bench: stack task failed: {error}"),
    }
    Ok((baseline, measured?))
}

/// Warm-up, the paced run, then the throughput run and the wait for its events to reach
/// the audit log. The paced run goes first so the event consumers' backlog from the
/// throughput run does not weigh on its latencies, and its own backlog is drained
/// before the throughput run starts.
async fn drive(args: &BenchArgs, scratch: &Scratch, url: &str) -> anyhow::Result<Driven> {
    let channels = setup::channels(url, usize::from(args.channels)).await?;
    let bot = setup::tenant(channels[0].clone(), &scratch.bootstrap_key, args.purposes).await?;
    let purposes = if args.purposes {
        vec![setup::PURPOSE.to_owned()]
    } else {
        Vec::new()
    };
    let mut load = Load::new(channels, &bot, purposes)?;
    load.stream_chunk = usize::from(args.stream_chunk);
    load.restore = args.restore;
    load.idempotency_keys = args.idempotency_keys.then(Arc::default);
    let concurrency = usize::from(args.concurrency);
    if args.warmup > 0 {
        let progress = Progress::start("warmup", args.warmup);
        load.done = progress.counter();
        let warm = load::closed_loop(&load, args.warmup, concurrency).await;
        progress.finish();
        if warm.errors > 0 && warm.latencies_us.is_empty() {
            anyhow::bail!(
                "every warm-up message failed: {}",
                warm.first_error.unwrap_or_default()
            );
        }
    }
    let at_rate = if args.rate > 0 {
        let total = u64::from(args.rate) * args.rate_seconds;
        let progress = Progress::start("at rate", total);
        load.done = progress.counter();
        load.phase = "rate";
        let outcome =
            load::open_loop(&load, args.rate, Duration::from_secs(args.rate_seconds)).await;
        progress.finish();
        Some(outcome.summary())
    } else {
        None
    };
    if let Err(error) = drain::wait(&scratch.db, DRAIN_DEADLINE).await {
        eprintln!("veil bench: before the throughput run: {error:#}");
    }
    let progress = Progress::start("throughput", args.messages);
    load.done = progress.counter();
    load.phase = "load";
    let throughput = load::closed_loop(&load, args.messages, concurrency)
        .await
        .summary();
    progress.finish();
    let drain = drain::wait(&scratch.db, DRAIN_DEADLINE)
        .await
        .map_err(|error| format!("{error:#}"));
    Ok((at_rate, throughput, drain))
}

/// Whether the services talk TLS to Postgres, from the URL's `sslmode` (libpq's default
/// is `prefer`: TLS when the server offers it).
fn postgres_tls(url: &str) -> &'static str {
    let mode = url
        .split_once('?')
        .into_iter()
        .flat_map(|(_, query)| query.split('&'))
        .find_map(|pair| pair.strip_prefix("sslmode="));
    match mode {
        Some("disable") => "off",
        Some("require" | "verify-ca" | "verify-full") => "on",
        _ => "when the server offers it",
    }
}

fn print_report(args: &BenchArgs, report: &Report) {
    let ratio = report
        .baseline
        .as_ref()
        .map(|b| report.throughput.per_second / b.per_second.max(1e-9));
    if args.json {
        let value = json!({
            "config": {
                "messages": args.messages,
                "concurrency": args.concurrency,
                "channels": args.channels,
                "rate": args.rate,
                "rate_seconds": args.rate_seconds,
                "warmup": args.warmup,
                "purposes": args.purposes,
                "stream_chunk": args.stream_chunk,
                "restore": args.restore,
                "idempotency_keys": args.idempotency_keys,
                "cores": std::thread::available_parallelism().map_or(0, usize::from),
                "load_average_before": report.load_before,
                "postgres_tls": postgres_tls(&args.database_url),
            },
            "throughput": report.throughput.json(),
            "audit_drain_seconds": report.drain.as_ref().ok().map(|d| round(d.as_secs_f64())),
            "audit_drain_error": report.drain.as_ref().err(),
            "sustained_messages_per_second": report.drain.as_ref().ok().map(|d| round(report.sustained(*d))),
            "at_rate": report.at_rate.as_ref().map(Summary::json),
            "baseline": report.baseline.as_ref().map(|b| json!({
                "inserts": b.inserts,
                "seconds": round(b.seconds),
                "inserts_per_second": round(b.per_second),
                "connections": b.connections,
            })),
            "messages_per_insert": ratio.map(|r| (r * 1000.0).round() / 1000.0),
        });
        println!("{value}");
        return;
    }
    println!(
        "veil bench: {} cores, load average before {}, TLS to Postgres {}{}",
        std::thread::available_parallelism().map_or(0, usize::from),
        report.load_before,
        postgres_tls(&args.database_url),
        if args.purposes {
            ", one purpose per message"
        } else {
            ""
        }
    );
    if args.restore {
        println!("each message is followed by a RestoreText of a reply naming its placeholders");
    }
    if args.idempotency_keys {
        println!("each message carries its own idempotency key");
    }
    if args.stream_chunk > 0 {
        println!(
            "each message is one RedactStream of {}-byte chunks; latency runs to its completion",
            args.stream_chunk
        );
    }
    println!(
        "throughput ({} messages, {} clients, {} connections)",
        args.messages, args.concurrency, args.channels
    );
    println!("  {}", report.throughput.line());
    match &report.drain {
        Ok(drain) => println!(
            "  every event in the audit log {:.1} s after the last answer: {:.0} msg/s end to end",
            drain.as_secs_f64(),
            report.sustained(*drain)
        ),
        Err(error) => println!("  audit log incomplete: {error}"),
    }
    if let Some(at_rate) = &report.at_rate {
        println!(
            "latency at {} msg/s for {} s (open loop)",
            args.rate, args.rate_seconds
        );
        println!("  {}", at_rate.line());
    }
    if let Some(baseline) = &report.baseline {
        println!(
            "postgres baseline: single-row autocommit INSERTs, {} connections",
            baseline.connections
        );
        println!(
            "  {:>8.0} inserts/s  {} in {:.1} s",
            baseline.per_second, baseline.inserts, baseline.seconds
        );
    }
    if let Some(ratio) = ratio {
        println!("messages per insert: {ratio:.3}");
    }
}

#[cfg(test)]
mod tests {
    use super::postgres_tls;

    #[test]
    fn tells_tls_from_the_urls_sslmode() {
        let base = "postgres://postgres@127.0.0.1:5432/postgres";
        assert_eq!(postgres_tls(&format!("{base}?sslmode=disable")), "off");
        assert_eq!(
            postgres_tls(&format!("{base}?x=1&sslmode=verify-full")),
            "on"
        );
        assert_eq!(postgres_tls(base), "when the server offers it");
        assert_eq!(
            postgres_tls(&format!("{base}?sslmode=prefer")),
            "when the server offers it"
        );
    }
}
