//! The `veil-vault` binary as an operator runs it.

#[tokio::test(flavor = "multi_thread")]
async fn serves_health_and_reflection_and_stops_on_sigterm() -> anyhow::Result<()> {
    veil_testkit::binary::check_binary(
        env!("CARGO_BIN_EXE_veil-vault"),
        "veil.vault.v1.VaultService",
    )
    .await
}

#[test]
fn bad_setting_exits_with_one_line_naming_the_key() -> anyhow::Result<()> {
    veil_testkit::binary::check_bad_setting(env!("CARGO_BIN_EXE_veil-vault"))
}
