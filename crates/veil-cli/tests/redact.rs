//! `veil redact` end to end: the real binary, fed through stdin or a file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn veil(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_veil"))
        .arg("redact")
        .args(args)
        .env_remove("VEIL_REDACT_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("veil runs");
    // The child may exit before reading (bad flags): ignore a broken pipe.
    let _ = child.stdin.take().expect("stdin").write_all(stdin);
    child.wait_with_output().expect("veil exits")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 output")
}

#[test]
fn plain_text_is_replaced_by_type() {
    let o = veil(
        &[],
        b"Mail anna.schmidt@example.com or call +1 415 555 0132.\nNothing here.\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        stdout(&o),
        "Mail <EMAIL_ADDRESS> or call <PHONE_NUMBER>.\nNothing here.\n"
    );
}

#[test]
fn json_lines_with_code_point_offsets_and_stable_pseudonyms() {
    let input = concat!(
        r#"{"id":"m1","text":"Grüße, I'm Anna Schmidt: anna@example.com"}"#,
        "\n",
        r#"{"id":2,"text":"again anna@example.com"}"#,
        "\n"
    );
    let o = veil(
        &["--format", "jsonl", "--operator", "pseudonymize"],
        input.as_bytes(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], "m1");
    assert_eq!(
        lines[0]["redacted"],
        "Grüße, I'm <PERSON_1>: <EMAIL_ADDRESS_1>"
    );
    let email = lines[0]["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "EMAIL_ADDRESS")
        .unwrap();
    // "Grüße, I'm Anna Schmidt: " is 25 code points (27 bytes).
    assert_eq!(
        (email["start"].as_u64(), email["end"].as_u64()),
        (Some(25), Some(41))
    );
    assert_eq!(email["placeholder"], "<EMAIL_ADDRESS_1>");
    assert!(email["score"].as_f64().unwrap() > 0.5);
    assert_eq!(lines[1]["id"], 2);
    assert_eq!(lines[1]["redacted"], "again <EMAIL_ADDRESS_1>");
}

#[test]
fn flags_choose_types_threshold_and_mask() {
    let o = veil(
        &[
            "--types",
            "credit_card",
            "--operator",
            "mask",
            "--keep-last",
            "4",
        ],
        b"card 4111 1111 1111 1111 mail a@b.io\n",
    );
    assert!(o.status.success());
    assert_eq!(stdout(&o), "card **** **** **** 1111 mail a@b.io\n");
    let o = veil(&["--threshold", "1.0"], b"bare domain example.com\n");
    assert_eq!(stdout(&o), "bare domain example.com\n");
}

#[test]
fn invalid_utf8_line_is_reported_and_skipped() {
    let o = veil(&[], b"first a@b.io\n\xff\xfe broken\nlast line\n");
    assert!(o.status.success());
    assert_eq!(stdout(&o), "first <EMAIL_ADDRESS>\nlast line\n");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 2") && err.contains("UTF-8"), "{err}");
}

#[test]
fn bad_input_exits_2_with_one_line() {
    for (args, input) in [
        (vec!["--format", "jsonl"], &b"{\"id\":1}\n"[..]),
        (vec!["--format", "jsonl"], &b"not json\n"[..]),
        (vec!["--types", "NOT A TYPE"], &b"x\n"[..]),
        (vec!["--operator", "hash"], &b"x\n"[..]),
        (vec!["--threshold", "2"], &b"x\n"[..]),
        (vec!["/no/such/file"], &b""[..]),
    ] {
        let o = veil(&args, input);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn hash_and_encrypt_use_the_key_and_files_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.txt");
    std::fs::write(&path, "mail a@b.io\n").unwrap();
    let key = "11".repeat(32);
    let o = veil(
        &["--operator", "hash", "--key", &key, path.to_str().unwrap()],
        b"",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    assert!(
        out.starts_with("mail ") && out.trim_end().len() == "mail ".len() + 64,
        "{out}"
    );
    let o = veil(
        &[
            "--operator",
            "encrypt",
            "--key",
            &key,
            path.to_str().unwrap(),
        ],
        b"",
    );
    assert!(stdout(&o).starts_with("mail ENC:"));
}
