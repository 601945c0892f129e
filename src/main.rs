//! `kmsrot`: parse, run one command, map its outcome to an exit code.

use clap::Parser;

use kmsrot::cli::Cli;
use kmsrot::error::{exit_class, render, EXIT_FATAL};

fn main() {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(EXIT_FATAL);
        }
    };
    // A closed stdout is absorbed where commands print (`output::stdout`), so
    // a command finishes with its own verdict; an error that still reaches
    // here is a failure, never mapped to success (a failed `verify-bundle`
    // piped into `head` must not pass under `set -o pipefail`).
    let code = match runtime.block_on(kmsrot::cli::run(cli)) {
        Ok(outcome) => outcome.exit_code(),
        Err(e) => {
            eprintln!("{}", render(&e));
            exit_class(&e).code()
        }
    };
    // Drop the runtime before exiting so buffered files are flushed and
    // in-flight tasks are cancelled rather than killed mid-write.
    drop(runtime);
    std::process::exit(code);
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    // Quiet by default: the SDK's own warnings (an IMDS region lookup that
    // failed, a provider that gave no credentials) restate, in its words,
    // what kmsrot says in one line with a hint. RUST_LOG shows them.
    let filter =
        EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("kmsrot=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
