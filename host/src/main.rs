use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = vidhook::cli::Cli::parse();
    vidhook::telemetry::init(cli.default_log_level());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("vidhook: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli.run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("vidhook: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
