use std::process::ExitCode;

fn main() -> ExitCode {
    veil_core::app::service_main(veil_audit::NAME, veil_audit::run)
}
