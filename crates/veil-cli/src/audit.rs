//! `veil audit`: verify the tamper-evident log (from Postgres or an export file) and
//! export it as JSON Lines.
//!
//! Exit codes: 0 the log is intact, 1 tampering was found, 2 bad usage or the log could
//! not be read.

mod progress;

use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Subcommand};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use veil_audit::verify::{Report, Verifier};

use progress::Meter;

/// `veil audit ...`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute the whole tree and check every signed tree head; name the first entry
    /// that was changed, removed or reordered. Exit 1 on any tampering.
    Verify(VerifyArgs),
    /// Write the log from a leaf index onwards as JSON Lines (with its signed heads), for
    /// a SIEM or offline verification.
    Export(ExportArgs),
}

#[derive(Debug, Args)]
struct Source {
    /// Postgres URL of the audit database.
    #[arg(long, env = "VEIL_DATABASE__URL")]
    database_url: Option<String>,
    /// Schema of the audit service.
    #[arg(long, default_value = "audit")]
    schema: String,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    #[command(flatten)]
    source: Source,
    /// Verify an export file (from `veil audit export`) instead of the database.
    #[arg(long, conflicts_with = "database_url")]
    file: Option<PathBuf>,
    /// Trusted tree-head public key (base64, 32 bytes); repeat for several. Without one
    /// the keys shipped with the heads are used, which proves integrity but not origin.
    #[arg(long = "public-key")]
    public_keys: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ExportArgs {
    #[command(flatten)]
    source: Source,
    /// First leaf index to export.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Most entries to export; 0 means to the end of the log.
    #[arg(long, default_value_t = 0)]
    limit: u64,
    /// Output file; standard output when absent.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `veil audit`.
pub fn run(args: AuditArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("veil audit: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async move {
        match args.command {
            AuditCommand::Verify(args) => verify(args).await,
            AuditCommand::Export(args) => export(args).await,
        }
    })
}

async fn connect(source: &Source) -> anyhow::Result<PgPool> {
    let url = source
        .database_url
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("--database-url (or VEIL_DATABASE__URL) is required"))?;
    let valid = !source.schema.is_empty()
        && source
            .schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    anyhow::ensure!(valid, "--schema must be a lowercase identifier");
    let options: PgConnectOptions = url
        .parse()
        .map_err(|_| anyhow::anyhow!("--database-url is not a valid postgres URL"))?;
    let options = options.options([("search_path", source.schema.as_str())]);
    Ok(PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await?)
}

fn trusted_keys(keys: &[String]) -> anyhow::Result<Vec<ed25519_dalek::VerifyingKey>> {
    keys.iter()
        .map(|key| {
            veil_core::crypto::signing::verifying_key_from_base64(key)
                .map_err(|_| anyhow::anyhow!("--public-key is not a base64 Ed25519 public key"))
        })
        .collect()
}

async fn verify(args: VerifyArgs) -> ExitCode {
    let started = Instant::now();
    let trusted = match trusted_keys(&args.public_keys) {
        Ok(keys) => keys,
        Err(error) => return usage(&error),
    };
    let verifier = Verifier::new(trusted);
    let mut meter = Meter::new();
    let report = match &args.file {
        Some(path) => {
            let file = match std::fs::File::open(path) {
                Ok(file) => file,
                Err(error) => {
                    return usage(&anyhow::anyhow!("cannot open {}: {error}", path.display()));
                }
            };
            let size = file.metadata().map(|m| m.len()).unwrap_or_default();
            veil_audit::verify::file::verify_export(
                BufReader::new(file),
                verifier,
                size,
                &mut |p| meter.update(p.phase, p.done, p.total),
            )
            .map_err(anyhow::Error::from)
        }
        None => match connect(&args.source).await {
            Ok(pool) => veil_audit::verify::db::verify_database(&pool, verifier, &mut |p| {
                meter.update(p.phase, p.done, p.total)
            })
            .await
            .map_err(anyhow::Error::from),
            Err(error) => Err(error),
        },
    };
    meter.finish();
    match report {
        Ok(report) => {
            print_report(&report, args.json, started.elapsed().as_secs_f64());
            if report.intact() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => usage(&error),
    }
}

fn print_report(report: &Report, json: bool, seconds: f64) {
    if json {
        let findings: Vec<serde_json::Value> = report
            .findings
            .iter()
            .map(|f| {
                serde_json::json!({
                    "kind": format!("{:?}", f.kind).to_lowercase(),
                    "index": f.index,
                    "end": f.end,
                    "detail": f.detail,
                    "message": f.to_string(),
                })
            })
            .collect();
        let value = serde_json::json!({
            "intact": report.intact(),
            "entries": report.entries,
            "tree_heads": report.heads,
            "tree_heads_verified": report.heads_verified,
            "consistent_pairs": report.consistent_pairs,
            "nodes_checked": report.nodes_checked,
            "findings": findings,
            "notes": report.notes,
            "seconds": seconds,
        });
        println!("{value}");
        return;
    }
    println!(
        "checked {} entries, {} signed tree heads ({} valid, {} consistent pairs), {} stored nodes in {seconds:.1} s",
        report.entries,
        report.heads,
        report.heads_verified,
        report.consistent_pairs,
        report.nodes_checked
    );
    for note in &report.notes {
        println!("note: {note}");
    }
    match report.first() {
        None => println!("intact"),
        Some(first) => {
            println!("TAMPERED: {first}");
            for other in report.findings.iter().skip(1).take(20) {
                println!("  also: {other}");
            }
        }
    }
}

async fn export(args: ExportArgs) -> ExitCode {
    let pool = match connect(&args.source).await {
        Ok(pool) => pool,
        Err(error) => return usage(&error),
    };
    let mut meter = Meter::new();
    let result = match &args.out {
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => {
                let mut out = BufWriter::new(file);
                let written = write_export(&pool, &args, &mut out, &mut meter).await;
                written.and_then(|n| out.flush().map(|()| n).map_err(Into::into))
            }
            Err(error) => Err(anyhow::anyhow!("cannot create {}: {error}", path.display())),
        },
        None => {
            let mut out = BufWriter::new(std::io::stdout());
            let written = write_export(&pool, &args, &mut out, &mut meter).await;
            written.and_then(|n| out.flush().map(|()| n).map_err(Into::into))
        }
    };
    meter.finish();
    match result {
        Ok(written) => {
            eprintln!("exported {written} entries");
            ExitCode::SUCCESS
        }
        Err(error) => usage(&error),
    }
}

async fn write_export(
    pool: &PgPool,
    args: &ExportArgs,
    out: &mut (impl Write + Send),
    meter: &mut Meter,
) -> anyhow::Result<u64> {
    Ok(
        veil_audit::export::export_database(pool, args.from, args.limit, out, &mut |n| {
            meter.update("entries", n, 0)
        })
        .await?,
    )
}

fn usage(error: &anyhow::Error) -> ExitCode {
    eprintln!("veil audit: {error:#}");
    ExitCode::from(2)
}
