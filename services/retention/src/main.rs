use std::process::ExitCode;

fn main() -> ExitCode {
    veil_core::app::service_main(veil_retention::NAME, veil_retention::run)
}
