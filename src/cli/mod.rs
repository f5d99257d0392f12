//! Client subcommands of the `tidemark` binary.

pub mod filter;
pub mod input;
pub mod output;
pub mod parse;

/// Options shared by every client subcommand.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientArgs {
    /// Server address as HOST:PORT or http://HOST:PORT.
    #[arg(
        long,
        env = "TIDEMARK_ADDR",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub addr: String,

    /// Output format: an aligned table, one JSON object per line, or CSV
    /// with a header row.
    #[arg(long, value_enum, default_value = "table", global = true)]
    pub output: OutputFormat,
}

/// Format of command results on stdout.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
    Csv,
}
