use std::process::ExitCode;

fn main() -> ExitCode {
    veil_core::app::service_main(veil_consent::NAME, veil_consent::run)
}
