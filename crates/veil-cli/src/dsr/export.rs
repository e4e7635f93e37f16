//! `veil dsr export`: streams `DownloadExport` into a file with a progress bar and checks
//! the file against the SHA-256 the server sends with the last chunk.
//!
//! The file is written to `<out>.part` and renamed only once complete and verified, so
//! a broken download never leaves a file that looks finished.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use sha2::{Digest, Sha256};
use veil_proto::retention::v1::{DownloadExportRequest, ExportFormat};

use super::{Context, Failure};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum FormatArg {
    /// Machine-readable JSON (portability).
    Json,
    /// A readable HTML page.
    Html,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Request id of a completed access or portability request.
    request_id: String,
    /// File to write.
    #[arg(long, short)]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "json")]
    format: FormatArg,
}

/// Checks chunks as they arrive: contiguous offsets, a digest of everything written.
pub(crate) struct Assembly {
    hasher: Sha256,
    written: u64,
    expected_sha256: Option<String>,
    content_type: String,
}

impl Assembly {
    pub(crate) fn new() -> Self {
        Self {
            hasher: Sha256::new(),
            written: 0,
            expected_sha256: None,
            content_type: String::new(),
        }
    }

    /// Accepts one chunk; returns the bytes to write.
    pub(crate) fn accept<'a>(
        &mut self,
        offset: i64,
        data: &'a [u8],
        content_type: &str,
        sha256: &str,
        last: bool,
    ) -> Result<&'a [u8], Failure> {
        if self.expected_sha256.is_some() {
            return Err(Failure::Remote(
                "the server sent data after the last chunk".into(),
            ));
        }
        if u64::try_from(offset).ok() != Some(self.written) {
            return Err(Failure::Remote(format!(
                "chunk at offset {offset} does not follow byte {}",
                self.written
            )));
        }
        if self.content_type.is_empty() {
            self.content_type = content_type.to_string();
        }
        self.hasher.update(data);
        self.written += data.len() as u64;
        if last {
            self.expected_sha256 = Some(sha256.to_ascii_lowercase());
        }
        Ok(data)
    }

    /// The verified digest, or why the file is not right.
    pub(crate) fn finish(self) -> Result<(String, u64, String), Failure> {
        let Some(expected) = self.expected_sha256 else {
            return Err(Failure::Remote(
                "the download ended before its last chunk".into(),
            ));
        };
        let actual = hex::encode(self.hasher.finalize());
        if actual != expected {
            return Err(Failure::Remote(format!(
                "sha256 mismatch: the server announced {expected}, the file has {actual}"
            )));
        }
        Ok((actual, self.written, self.content_type))
    }
}

fn meter() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bytes} ({bytes_per_sec})")
    {
        bar.set_style(style);
    }
    bar
}

fn part_path(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".part");
    out.with_file_name(name)
}

pub(crate) async fn run(context: &mut Context, args: ExportArgs) -> Result<(), Failure> {
    let format = match args.format {
        FormatArg::Json => ExportFormat::Json,
        FormatArg::Html => ExportFormat::Html,
    };
    let part = part_path(&args.out);
    let mut file = std::fs::File::create(&part)
        .map_err(|e| Failure::Usage(format!("cannot write {}: {e}", part.display())))?;
    let request = context.request(DownloadExportRequest {
        request_id: args.request_id.clone(),
        format: format as i32,
    })?;
    let result = download(context, request, &mut file).await;
    drop(file);
    let (sha256, bytes, content_type) = match result {
        Ok(done) => done,
        Err(failure) => {
            let _ = std::fs::remove_file(&part);
            return Err(failure);
        }
    };
    std::fs::rename(&part, &args.out)
        .map_err(|e| Failure::Usage(format!("cannot write {}: {e}", args.out.display())))?;
    context.print(
        json!({
            "request_id": args.request_id,
            "file": args.out.display().to_string(),
            "bytes": bytes,
            "content_type": content_type,
            "sha256": sha256,
        }),
        || {
            format!(
                "wrote {} ({bytes} bytes, {content_type}), sha256 {sha256} verified",
                args.out.display()
            )
        },
    );
    Ok(())
}

async fn download(
    context: &mut Context,
    request: tonic::Request<DownloadExportRequest>,
    file: &mut std::fs::File,
) -> Result<(String, u64, String), Failure> {
    let mut stream = context
        .client()
        .download_export(request)
        .await?
        .into_inner();
    let bar = meter();
    let mut assembly = Assembly::new();
    while let Some(chunk) = stream.message().await? {
        let data = assembly.accept(
            chunk.offset,
            &chunk.data,
            &chunk.content_type,
            &chunk.sha256,
            chunk.last,
        )?;
        file.write_all(data)
            .map_err(|e| Failure::Usage(format!("cannot write the export: {e}")))?;
        bar.inc(data.len() as u64);
    }
    bar.finish_and_clear();
    file.flush()
        .map_err(|e| Failure::Usage(format!("cannot write the export: {e}")))?;
    assembly.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    #[test]
    fn chunks_assemble_and_verify() {
        let mut a = Assembly::new();
        assert!(
            a.accept(0, b"hello ", "application/json", "", false)
                .is_ok()
        );
        assert!(
            a.accept(6, b"world", "", &sha(b"hello world"), true)
                .is_ok()
        );
        let (digest, bytes, content_type) = a.finish().ok().unwrap_or_default();
        assert_eq!(digest, sha(b"hello world"));
        assert_eq!(bytes, 11);
        assert_eq!(content_type, "application/json");
    }

    #[test]
    fn gaps_truncation_and_wrong_digests_fail() {
        let mut gap = Assembly::new();
        assert!(gap.accept(0, b"abc", "", "", false).is_ok());
        assert!(gap.accept(4, b"d", "", "", true).is_err());

        let mut cut = Assembly::new();
        assert!(cut.accept(0, b"abc", "", "", false).is_ok());
        assert!(cut.finish().is_err());

        let mut wrong = Assembly::new();
        assert!(wrong.accept(0, b"abc", "", &sha(b"abd"), true).is_ok());
        assert!(wrong.finish().is_err());
    }
}
