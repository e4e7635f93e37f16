use std::process::ExitCode;

fn main() -> ExitCode {
    veil_core::app::service_main(veil_vault::NAME, veil_vault::run)
}
