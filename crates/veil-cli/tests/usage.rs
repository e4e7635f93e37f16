//! Bad command lines of `veil` itself: one line on stderr and exit 2; help and version
//! as clap prints them.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

fn veil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

#[test]
fn refused_command_lines_are_one_line_and_exit_2() {
    for args in [
        &["no-such-command"][..],
        &["redact", "--no-such-flag"],
        &["audit", "verify", "--file"],
    ] {
        let out = veil(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let text = stderr(&out);
        assert_eq!(text.trim_end().lines().count(), 1, "{text}");
        assert!(text.starts_with("veil: "), "{text}");
    }
}

#[test]
fn a_missing_subcommand_shows_the_commands_and_help_succeeds() {
    let out = veil(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("Usage: veil"), "{}", stderr(&out));
    assert!(stderr(&out).contains("bench"), "{}", stderr(&out));
    let help = veil(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(
        String::from_utf8(help.stdout)
            .unwrap()
            .contains("Usage: veil")
    );
    let version = veil(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
}
