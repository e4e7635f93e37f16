//! The export file: one JSON document (schema in docs/exports.md) or its HTML rendering.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::collect::Collected;
use crate::certificate::document::rfc3339;

/// `schema` of every export document.
pub const SCHEMA: &str = "veil-subject-export";
/// `version` of the layout documented in docs/exports.md.
pub const VERSION: u32 = 1;

/// Who and what the export is for.
#[derive(Debug, Clone)]
pub struct ExportHeader {
    pub request_id: String,
    /// "access" or "portability".
    pub request_type: &'static str,
    pub tenant_id: String,
    pub subject_ref: String,
    pub locale: String,
    pub generated_at: OffsetDateTime,
}

/// The JSON document.
pub fn document(header: &ExportHeader, collected: &Collected) -> Value {
    let sections: Map<String, Value> = collected
        .sections
        .iter()
        .map(|(name, items)| (name.clone(), Value::Array(items.clone())))
        .collect();
    let sources: Map<String, Value> = collected
        .sources
        .iter()
        .map(|(name, service)| (name.clone(), Value::String((*service).to_string())))
        .collect();
    json!({
        "schema": SCHEMA,
        "version": VERSION,
        "generated_at": rfc3339(header.generated_at),
        "request": {
            "request_id": header.request_id,
            "request_type": header.request_type,
            "tenant_id": header.tenant_id,
            "subject_ref": header.subject_ref,
            "locale": header.locale,
        },
        "sources": sources,
        "sections": sections,
    })
}

/// The JSON file bytes (pretty-printed for people who open it).
pub fn json_bytes(document: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(document).unwrap_or_default()
}

/// Headings of the HTML page per language; English unless the locale is German.
struct Labels {
    title: &'static str,
    request: &'static str,
    generated: &'static str,
    empty: &'static str,
    items: &'static str,
}

fn labels(locale: &str) -> Labels {
    if locale.to_ascii_lowercase().starts_with("de") {
        Labels {
            title: "Ihre Daten",
            request: "Anfrage",
            generated: "Erstellt am",
            empty: "Keine Einträge.",
            items: "Einträge",
        }
    } else {
        Labels {
            title: "Your data",
            request: "Request",
            generated: "Generated at",
            empty: "No entries.",
            items: "entries",
        }
    }
}

/// HTML-escapes text for element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A readable page of the same document: one table per section, every value escaped.
pub fn html(header: &ExportHeader, document: &Value) -> Vec<u8> {
    let l = labels(&header.locale);
    let lang = if header
        .locale
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !header.locale.is_empty()
    {
        header.locale.clone()
    } else {
        "en".to_string()
    };
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"");
    out.push_str(&escape(&lang));
    out.push_str("\">\n<head><meta charset=\"utf-8\"><title>");
    out.push_str(l.title);
    out.push_str(
        "</title>\n<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;\
         margin-bottom:2em}td,th{border:1px solid #ccc;padding:4px;vertical-align:top;\
         text-align:left}</style></head>\n<body>\n<h1>",
    );
    out.push_str(l.title);
    out.push_str("</h1>\n<p>");
    out.push_str(l.request);
    out.push_str(": <code>");
    out.push_str(&escape(&header.request_id));
    out.push_str("</code> (");
    out.push_str(&escape(header.request_type));
    out.push_str(")<br>");
    out.push_str(l.generated);
    out.push_str(": ");
    out.push_str(&escape(&rfc3339(header.generated_at)));
    out.push_str("</p>\n");
    if let Some(sections) = document.get("sections").and_then(Value::as_object) {
        for (name, items) in sections {
            let items = items.as_array().map(Vec::as_slice).unwrap_or_default();
            out.push_str("<h2>");
            out.push_str(&escape(name));
            out.push_str(&format!(" ({} {})</h2>\n", items.len(), l.items));
            if items.is_empty() {
                out.push_str("<p>");
                out.push_str(l.empty);
                out.push_str("</p>\n");
                continue;
            }
            section_table(&mut out, items);
        }
    }
    out.push_str("</body>\n</html>\n");
    out.into_bytes()
}

/// One table: a column per key seen in the section's objects.
fn section_table(out: &mut String, items: &[Value]) {
    let mut columns: Vec<String> = Vec::new();
    for item in items {
        if let Some(object) = item.as_object() {
            for key in object.keys() {
                if !columns.contains(key) {
                    columns.push(key.clone());
                }
            }
        }
    }
    out.push_str("<table>\n<tr>");
    for column in &columns {
        out.push_str("<th>");
        out.push_str(&escape(column));
        out.push_str("</th>");
    }
    out.push_str("</tr>\n");
    for item in items {
        out.push_str("<tr>");
        if columns.is_empty() {
            out.push_str("<td>");
            out.push_str(&escape(&cell(item)));
            out.push_str("</td>");
        }
        for column in &columns {
            out.push_str("<td>");
            if let Some(value) = item.get(column) {
                out.push_str(&escape(&cell(value)));
            }
            out.push_str("</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn header() -> ExportHeader {
        ExportHeader {
            request_id: "r1".into(),
            request_type: "access",
            tenant_id: "t".into(),
            subject_ref: "s".into(),
            locale: "de-DE".into(),
            generated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn html_escapes_every_value_and_key() {
        let mut collected = Collected::default();
        collected.sections.insert(
            "transcripts".into(),
            vec![json!({"text": "<script>alert('x')</script> & \"q\"", "<k>": 1})],
        );
        collected.sources.insert("transcripts".into(), "gateway");
        let doc = document(&header(), &collected);
        let page = String::from_utf8(html(&header(), &doc)).unwrap();
        assert!(!page.contains("<script>"));
        assert!(!page.contains("<k>"));
        assert!(
            page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;")
        );
        assert!(page.contains("lang=\"de-DE\""));
        assert!(page.contains("Ihre Daten"));
    }

    #[test]
    fn a_hostile_locale_is_not_written_into_the_page() {
        let mut h = header();
        h.locale = "\"><script>".into();
        let page = String::from_utf8(html(&h, &document(&h, &Collected::default()))).unwrap();
        assert!(page.contains("lang=\"en\""));
        assert!(!page.contains("<script>"));
    }

    #[test]
    fn document_has_schema_version_and_sections() {
        let mut collected = Collected::default();
        collected.sections.insert(
            "consent_records".into(),
            vec![json!({"purpose": "support"})],
        );
        collected
            .sources
            .insert("consent_records".into(), "consent");
        let doc = document(&header(), &collected);
        assert_eq!(doc["schema"], SCHEMA);
        assert_eq!(doc["version"], VERSION);
        assert_eq!(doc["sources"]["consent_records"], "consent");
        assert_eq!(doc["sections"]["consent_records"][0]["purpose"], "support");
        assert_eq!(doc["request"]["request_type"], "access");
    }
}
