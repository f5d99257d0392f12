//! The `tidemark` binary: `serve` runs the server; the other subcommands
//! are clients of a running server.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use tidemark::cli::bench::{self, BenchArgs};
use tidemark::cli::serve::{self, ServeArgs};
use tidemark::cli::{self, ClientArgs, ClientCommand};

#[derive(Debug, Parser)]
#[command(
    name = "tidemark",
    version,
    about = "A metrics server for workflow runners and their dashboards",
    mut_subcommand("serve", cli::reject_client_options)
)]
struct Cli {
    #[command(flatten)]
    client: ClientArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),

    #[command(flatten)]
    Client(ClientCommand),

    /// Drive a running server with a benchmark load and print
    /// throughput and latency.
    Bench(BenchArgs),
}

fn main() -> ExitCode {
    let parsed = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: failed to start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };

    let result = runtime.block_on(async {
        match parsed.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Client(command) => cli::run(command, &parsed.client).await,
            Command::Bench(args) => bench::run(args, &parsed.client).await,
        }
    });

    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
