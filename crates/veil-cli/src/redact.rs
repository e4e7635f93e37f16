//! `veil redact`: detect and minimize personal data in plain text or JSON lines.
//!
//! Plain text is processed line by line. JSON lines are objects `{"id", "text"}`;
//! each gets `{"id", "redacted", "entities": [{"type", "start", "end", "score",
//! "placeholder"}]}` with code-point offsets into the original text. One run is one
//! conversation: pseudonyms stay the same across lines. Bad input exits with code 2
//! and a one-line message; a line that is not valid UTF-8 is reported and skipped.

use anyhow::{Context, anyhow, bail};
use clap::ValueEnum;
use serde_json::{Value, json};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use veil_pii::{
    Analyzer, Anonymizer, EntityType, Keys, Language, Operator, Policy, PolicySpec, PseudonymMap,
};

/// Input format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Plain text, redacted line by line.
    Text,
    /// JSON lines with `id` and `text`.
    Jsonl,
}

/// What replaces a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OperatorArg {
    /// Remove the value.
    Redact,
    /// Replace with `<TYPE>`.
    Replace,
    /// Keep only the last characters (see --keep-last).
    Mask,
    /// HMAC-SHA256 with --key.
    Hash,
    /// Conversation-stable placeholders such as `<EMAIL_ADDRESS_1>`.
    Pseudonymize,
    /// AES-256-GCM token with --key.
    Encrypt,
}

/// Arguments of `veil redact`.
#[derive(clap::Args, Debug)]
pub struct RedactArgs {
    /// Input file; standard input when absent or `-`.
    pub input: Option<PathBuf>,
    /// Input format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// How findings are replaced.
    #[arg(long, value_enum, default_value_t = OperatorArg::Replace)]
    pub operator: OperatorArg,
    /// Entity types to find, comma separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub types: Vec<String>,
    /// Minimum score of a finding, in [0, 1].
    #[arg(long, default_value_t = veil_pii::DEFAULT_THRESHOLD)]
    pub threshold: f32,
    /// Language hints (en, de, fr, es, nl), comma separated.
    #[arg(long = "lang", value_delimiter = ',')]
    pub languages: Vec<String>,
    /// Characters left visible by --operator mask.
    #[arg(long, default_value_t = 4)]
    pub keep_last: usize,
    /// Key for --operator hash or encrypt: 64 hex characters (32 bytes).
    #[arg(long, env = "VEIL_REDACT_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// A policy as JSON (the tenant policy format); flags above override it.
    #[arg(long)]
    pub policy: Option<PathBuf>,
}

/// Runs `veil redact`.
pub fn run(args: RedactArgs) -> ExitCode {
    match execute(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the chain of causes, joined.
            let message = format!("{e:#}").replace('\n', " ");
            eprintln!("veil redact: {message}");
            ExitCode::from(2)
        }
    }
}

fn build_policy(args: &RedactArgs) -> anyhow::Result<Policy> {
    let mut spec = match &args.policy {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read policy {}", path.display()))?;
            serde_json::from_str::<PolicySpec>(&text)
                .with_context(|| format!("invalid policy {}", path.display()))?
        }
        None => PolicySpec::default(),
    };
    if !args.types.is_empty() {
        let mut entities = Vec::new();
        for name in args
            .types
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
        {
            let upper = name.to_ascii_uppercase();
            let entity =
                EntityType::parse(&upper).ok_or_else(|| anyhow!("unknown entity type {name:?}"))?;
            entities.push(entity);
        }
        spec.entities = Some(entities);
    }
    if !(0.0..=1.0).contains(&args.threshold) {
        bail!("--threshold must be within [0, 1]");
    }
    if args.policy.is_none() || args.threshold != veil_pii::DEFAULT_THRESHOLD {
        spec.threshold = args.threshold;
    }
    if !args.languages.is_empty() {
        spec.languages = args
            .languages
            .iter()
            .map(|l| {
                Language::parse(l)
                    .ok_or_else(|| anyhow!("unknown language {l:?} (en, de, fr, es, nl)"))
            })
            .collect::<anyhow::Result<_>>()?;
    }
    if args.policy.is_none() || args.operator != OperatorArg::Replace {
        spec.operators.clear();
        spec.default_operator = match args.operator {
            OperatorArg::Redact => Operator::Redact,
            OperatorArg::Replace => Operator::Replace { with: None },
            OperatorArg::Mask => Operator::Mask {
                keep_last: args.keep_last,
                mask_char: '*',
            },
            OperatorArg::Hash => Operator::Hash,
            OperatorArg::Pseudonymize => Operator::Pseudonymize,
            OperatorArg::Encrypt => Operator::Encrypt,
        };
    }
    Ok(Policy::new(spec)?)
}

fn build_keys(args: &RedactArgs) -> anyhow::Result<Keys> {
    let needs_key = matches!(args.operator, OperatorArg::Hash | OperatorArg::Encrypt);
    let Some(hex_key) = &args.key else {
        if needs_key {
            bail!(
                "--operator {:?} needs --key (or VEIL_REDACT_KEY): 64 hex characters",
                args.operator
            );
        }
        return Ok(Keys::none());
    };
    let bytes =
        hex::decode(hex_key.trim()).map_err(|_| anyhow!("--key must be 64 hex characters"))?;
    let key: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| anyhow!("--key must be 64 hex characters (32 bytes)"))?;
    Ok(Keys::none().with_hash_key(&key).with_encryption_key(key))
}

fn execute(args: &RedactArgs) -> anyhow::Result<()> {
    let policy = build_policy(args)?;
    let anonymizer = Anonymizer::new(build_keys(args)?);
    let reader: Box<dyn Read> = match &args.input {
        Some(path) if path.as_os_str() != "-" => {
            Box::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
        }
        _ => Box::new(io::stdin().lock()),
    };
    let mut reader = BufReader::new(reader);
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let analyzer = Analyzer::new();
    let mut pseudonyms = PseudonymMap::new();
    let mut raw = Vec::new();
    let mut line_no = 0usize;
    loop {
        raw.clear();
        let read = reader
            .read_until(b'\n', &mut raw)
            .context("cannot read input")?;
        if read == 0 {
            break;
        }
        line_no += 1;
        let had_newline = raw.last() == Some(&b'\n');
        let content = raw.strip_suffix(b"\n").unwrap_or(&raw);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        let Ok(line) = std::str::from_utf8(content) else {
            eprintln!("veil redact: line {line_no}: not valid UTF-8, skipped");
            continue;
        };
        match args.format {
            Format::Text => {
                let findings = analyzer.analyze(line, &policy);
                let redacted = anonymizer.anonymize(line, &findings, &policy, &mut pseudonyms)?;
                out.write_all(redacted.text.as_bytes())?;
                if had_newline {
                    out.write_all(b"\n")?;
                }
            }
            Format::Jsonl => {
                if line.trim().is_empty() {
                    continue;
                }
                let record: Value = serde_json::from_str(line)
                    .map_err(|e| anyhow!("line {line_no}: invalid JSON ({e})"))?;
                let text = record.get("text").and_then(Value::as_str).ok_or_else(|| {
                    anyhow!("line {line_no}: expected an object with a string field \"text\"")
                })?;
                let id = record.get("id").cloned().unwrap_or(Value::Null);
                let findings = analyzer.analyze(text, &policy);
                let redacted = anonymizer.anonymize(text, &findings, &policy, &mut pseudonyms)?;
                let entities: Vec<Value> = redacted
                    .entities
                    .iter()
                    .map(|e| {
                        json!({
                            "type": e.entity.name(),
                            "start": e.char_start,
                            "end": e.char_end,
                            "score": (f64::from(e.score) * 1000.0).round() / 1000.0,
                            "placeholder": e.replacement,
                        })
                    })
                    .collect();
                let line_out = json!({ "id": id, "redacted": redacted.text, "entities": entities });
                serde_json::to_writer(&mut out, &line_out)?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
