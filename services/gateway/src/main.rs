use std::process::ExitCode;

fn main() -> ExitCode {
    veil_core::app::service_main(veil_gateway::NAME, veil_gateway::run)
}
