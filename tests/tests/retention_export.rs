//! Access and portability end to end: the export is collected from every service when the
//! request runs, then assembled again at download as the documented JSON (or escaped
//! HTML), in chunks of at most 64 KiB with offsets, the content type first and the
//! sha256 last.

mod retention_support;

use sha2::{Digest as _, Sha256};
use tonic::Code;
use veil_core::types::Role;
use veil_e2e::bearer;
use veil_proto::common::v1::{Jurisdiction, RequestState, RequestType};
use veil_proto::retention::v1::{DownloadExportRequest, ExportFormat, SubmitRequestRequest};

use retention_support::{Canaries, World};

/// Downloads the export; returns the content type and the checked bytes.
async fn download(
    world: &World,
    request_id: &str,
    format: ExportFormat,
) -> anyhow::Result<(String, Vec<u8>)> {
    let token = world.token("retention", Role::PrivacyOfficer)?;
    let mut stream = world
        .retention()
        .await?
        .download_export(bearer(
            DownloadExportRequest {
                request_id: request_id.into(),
                format: format as i32,
            },
            &token,
        ))
        .await?
        .into_inner();
    let mut bytes = Vec::new();
    let mut content_type = String::new();
    let mut sha256 = String::new();
    let mut first = true;
    while let Some(chunk) = stream.message().await? {
        assert!(chunk.data.len() <= 64 * 1024, "chunks are at most 64 KiB");
        assert_eq!(chunk.offset, bytes.len() as i64, "offsets are contiguous");
        if first {
            content_type = chunk.content_type.clone();
            first = false;
        } else {
            assert!(chunk.content_type.is_empty(), "content type only first");
        }
        bytes.extend_from_slice(&chunk.data);
        if chunk.last {
            sha256 = chunk.sha256;
        }
    }
    assert_eq!(
        sha256,
        hex::encode(Sha256::digest(&bytes)),
        "sha256 of the file"
    );
    Ok((content_type, bytes))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_access_request_exports_every_service_as_json_and_escaped_html() -> anyhow::Result<()> {
    let world = World::start("export").await?;
    let canaries = Canaries::new();
    world.seed(&canaries).await?;
    let officer = world.token("retention", Role::PrivacyOfficer)?;
    let submitted = world
        .retention()
        .await?
        .submit_request(bearer(
            SubmitRequestRequest {
                subject_id: canaries.subject_id.clone(),
                request_type: RequestType::Access as i32,
                jurisdiction: Jurisdiction::EuGdpr as i32,
                locale: "de".into(),
                identity_verified: true,
                ..Default::default()
            },
            &officer,
        ))
        .await?
        .into_inner();
    let request_id = submitted.request.expect("request").request_id;
    world.wait_for(&request_id, RequestState::Completed).await?;
    assert!(world.request(&request_id).await?.export_ready);

    let (content_type, json) = download(&world, &request_id, ExportFormat::Json).await?;
    assert_eq!(content_type, "application/json");
    let document: serde_json::Value = serde_json::from_slice(&json)?;
    assert_eq!(document["schema"], "veil-subject-export");
    assert_eq!(document["version"], 1);
    assert_eq!(document["request"]["request_id"], request_id.as_str());
    assert_eq!(document["request"]["request_type"], "access");
    let sections = document["sections"].as_object().expect("sections");
    let count = |name: &str| sections.get(name).and_then(|s| s.as_array()).map(Vec::len);
    assert_eq!(
        count("transcripts"),
        Some(12),
        "every turn: {:?}",
        sections.keys()
    );
    assert!(count("consent_records").unwrap_or(0) >= 1);
    assert!(count("vault_records").unwrap_or(0) >= 1);
    assert!(sections.contains_key("access_log"));
    assert_eq!(document["sources"]["transcripts"], "gateway");
    assert_eq!(document["sources"]["access_log"], "audit");
    // The subject gets its own data back: the vault record and its words.
    let text = String::from_utf8_lossy(&json);
    assert!(text.contains(&canaries.secret));
    assert!(text.contains(&canaries.remark));

    let (content_type, html) = download(&world, &request_id, ExportFormat::Html).await?;
    assert_eq!(content_type, "text/html; charset=utf-8");
    let page = String::from_utf8(html)?;
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("lang=\"de\"") && page.contains("Ihre Daten"));
    assert!(page.contains(&canaries.remark));
    assert!(!page.contains("<script>"), "message text is escaped");
    assert!(page.contains("&lt;script&gt;"));

    // An erasure request has no export.
    let erasure = world
        .retention()
        .await?
        .submit_request(bearer(
            SubmitRequestRequest {
                subject_id: "someone-else".into(),
                request_type: RequestType::Erasure as i32,
                jurisdiction: Jurisdiction::EuGdpr as i32,
                identity_verified: true,
                ..Default::default()
            },
            &officer,
        ))
        .await?
        .into_inner()
        .request
        .expect("request")
        .request_id;
    let refused = download(&world, &erasure, ExportFormat::Json)
        .await
        .expect_err("no export for an erasure");
    let status = refused.downcast::<tonic::Status>()?;
    assert_eq!(status.code(), Code::FailedPrecondition);

    world.stack.stop().await
}
