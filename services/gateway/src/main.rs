use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: veil_core::Allocator = veil_core::Allocator;

fn main() -> ExitCode {
    veil_core::app::service_main(veil_gateway::NAME, veil_gateway::run)
}
