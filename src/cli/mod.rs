//! The `tidemark` command line: `serve` (in [`serve`]), the client
//! subcommands `write`, `query`, `aggregate`, `stats`, `watch` and
//! `metrics`, and the load generators under `bench` (in [`bench`]).
//!
//! Each command builds its request in a pure function, calls the server
//! over gRPC, and prints the result as a table, JSON lines or CSV
//! (`--output`). Errors are returned as `anyhow::Error`s, not printed.
//! Each message names what failed and suggests the next step.

pub mod bench;
pub mod filter;
pub mod input;
pub mod output;
pub mod parse;
pub mod serve;

mod client;
mod metrics;
mod query;
mod watch;
mod write;

pub use metrics::{MetricsArgs, MetricsCommand};
pub use query::{AggregateArgs, QueryArgs, StatsArgs};
pub use watch::WatchArgs;
pub use write::WriteArgs;

/// Options shared by every client subcommand. They are global, so they may
/// come before or after the subcommand name, and the binary hides them
/// from `serve` with [`reject_client_options`].
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Client options")]
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

/// Adds hidden `--addr` and `--output` arguments to the `serve` command
/// that reject any value. The binary applies it with
/// `mut_subcommand("serve", ...)` on its top-level parser.
///
/// clap copies a global argument into each subcommand that has no
/// argument with the same id (clap_builder 4.6,
/// `Command::_propagate_global_args`), so these stand-ins keep the client
/// options out of `serve --help`. They also make `serve --addr` an error
/// that points to `--listen`, where the option used to be ignored.
pub fn reject_client_options(serve: clap::Command) -> clap::Command {
    serve
        .arg(
            clap::Arg::new("addr")
                .long("addr")
                .hide(true)
                .value_parser(reject_serve_addr),
        )
        .arg(
            clap::Arg::new("output")
                .long("output")
                .hide(true)
                .value_parser(reject_serve_output),
        )
}

fn reject_serve_addr(_: &str) -> Result<String, String> {
    Err("--addr is the server address of client commands; \
         set the address that serve listens on with --listen HOST:PORT"
        .to_owned())
}

fn reject_serve_output(_: &str) -> Result<String, String> {
    Err("--output sets the result format of client commands; serve prints no results".to_owned())
}

/// Format of command results on stdout.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
    Csv,
}

/// Client subcommands, flattened into the binary's top-level commands.
#[derive(clap::Subcommand, Debug)]
pub enum ClientCommand {
    /// Write points read from stdin as CSV or JSON lines.
    ///
    /// CSV starts with a header row such as `metric,time,value,host`.
    /// Columns other than metric, time and value are tags, and an empty tag
    /// cell leaves the tag out. CSV values are read as an integer, then a
    /// float, then true or false, and otherwise as a string. Floats include
    /// inf, -inf and NaN in any case, and the server rejects NaN.
    ///
    /// A JSON line looks like {"metric":"cpu","time":"2026-12-04T10:00:00Z","value":1.5,"tags":{"host":"a"}}.
    /// Its string values stay strings, "inf" included. Number and boolean
    /// tag values are stored as text, such as "8080" and "true", and a null
    /// tag value makes the line invalid.
    ///
    /// A time is integer nanoseconds since the Unix epoch or RFC 3339, and
    /// a line without one gets the current time. An integer time below
    /// 10^12 gets a warning on stderr because it looks like seconds, but
    /// it is written as nanoseconds.
    ///
    /// The command fails when any line could not be parsed or any point was
    /// rejected, and lists the first problems with their line numbers.
    Write(WriteArgs),
    /// Print raw points of one or more metrics.
    Query(QueryArgs),
    /// Print time-bucketed aggregations of a metric, optionally grouped by
    /// tags.
    Aggregate(AggregateArgs),
    /// Print summary statistics of a metric over a time range.
    Stats(StatsArgs),
    /// Print live aggregation windows of a metric until Ctrl-C.
    Watch(WatchArgs),
    /// List, get, create and delete metrics, manage retention policies,
    /// and show storage statistics.
    Metrics(MetricsArgs),
}

/// Runs one client subcommand against the server at `args.addr`.
pub async fn run(command: ClientCommand, args: &ClientArgs) -> anyhow::Result<()> {
    match command {
        ClientCommand::Write(command) => write::run(command, args).await,
        ClientCommand::Query(command) => query::run_query(command, args).await,
        ClientCommand::Aggregate(command) => query::run_aggregate(command, args).await,
        ClientCommand::Stats(command) => query::run_stats(command, args).await,
        ClientCommand::Watch(command) => watch::run(command, args).await,
        ClientCommand::Metrics(command) => metrics::run(command, args).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    /// A stand-in for the binary's top-level parser, which flattens the
    /// client options and commands beside its own `serve` command.
    #[derive(Parser, Debug)]
    #[command(name = "tidemark", mut_subcommand("serve", reject_client_options))]
    struct TestCli {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: TestCommand,
    }

    #[derive(clap::Subcommand, Debug)]
    enum TestCommand {
        Serve(serve::ServeArgs),
        #[command(flatten)]
        Client(ClientCommand),
    }

    fn parse(args: &[&str]) -> Result<TestCli, clap::Error> {
        TestCli::try_parse_from(std::iter::once("tidemark").chain(args.iter().copied()))
    }

    #[test]
    fn cli_definition_is_valid() {
        TestCli::command().debug_assert();
    }

    #[test]
    fn global_options_after_subcommand() {
        let cli = parse(&["query", "cpu", "--output", "json", "--addr", "127.0.0.1:1"]).unwrap();
        assert_eq!(cli.client.output, OutputFormat::Json);
        assert_eq!(cli.client.addr, "127.0.0.1:1");
    }

    #[test]
    fn global_options_before_subcommand() {
        let cli = parse(&[
            "--output",
            "csv",
            "--addr",
            "127.0.0.1:2",
            "metrics",
            "list",
        ])
        .unwrap();
        assert_eq!(cli.client.output, OutputFormat::Csv);
        assert_eq!(cli.client.addr, "127.0.0.1:2");

        let cli = parse(&["metrics", "retention", "list", "--output", "json"]).unwrap();
        assert_eq!(cli.client.output, OutputFormat::Json);
    }

    #[test]
    fn serve_help_hides_client_options() {
        let mut command = TestCli::command();
        command.build();
        let help = command
            .find_subcommand_mut("serve")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(help.contains("--listen"), "{help}");
        assert!(!help.contains("--addr"), "{help}");
        assert!(!help.contains("--output"), "{help}");
    }

    #[test]
    fn serve_rejects_client_options() {
        let err = parse(&["serve", "--addr", "127.0.0.1:1"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{err}");
        assert!(err.to_string().contains("--listen HOST:PORT"), "{err}");

        let err = parse(&["serve", "--output", "json"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{err}");
        assert!(err.to_string().contains("serve prints no results"), "{err}");

        let cli = parse(&["serve", "--listen", "127.0.0.1:0"]).unwrap();
        assert!(matches!(cli.command, TestCommand::Serve(_)), "{cli:?}");
    }

    #[test]
    fn relative_times_with_leading_dash() {
        let cli = parse(&["query", "cpu", "--start", "-1h", "--end", "now"]).unwrap();
        let TestCommand::Client(ClientCommand::Query(query)) = cli.command else {
            panic!("parsed {:?}", cli.command);
        };
        assert!(query.range.start.is_some());
        assert!(query.range.end.is_some());
    }

    #[test]
    fn aggregate_requires_one_bucket_width() {
        let err = parse(&["aggregate", "cpu", "--agg", "mean"]).unwrap_err();
        assert_eq!(
            err.kind(),
            clap::error::ErrorKind::MissingRequiredArgument,
            "{err}"
        );

        let err = parse(&[
            "aggregate",
            "cpu",
            "--agg",
            "mean",
            "--step",
            "1m",
            "--granularity",
            "hour",
        ])
        .unwrap_err();
        assert_eq!(
            err.kind(),
            clap::error::ErrorKind::ArgumentConflict,
            "{err}"
        );

        assert!(parse(&["aggregate", "cpu", "--agg", "p99", "--step", "30s"]).is_ok());
    }

    #[test]
    fn invalid_filter_reported_by_clap() {
        let err = parse(&["query", "cpu", "--filter", "host=a"]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("unknown field \"host\""), "{text}");
    }

    #[test]
    fn metrics_subcommands_parse() {
        let commands: &[&[&str]] = &[
            &["metrics", "list"],
            &["metrics", "list", "--prefix", "cpu"],
            &["metrics", "get", "cpu"],
            &["metrics", "delete", "cpu"],
            &["metrics", "create", "cpu", "--type", "float", "--unit", "%"],
            &["metrics", "retention", "list"],
            &[
                "metrics",
                "retention",
                "set",
                "short",
                "7d",
                "--metric",
                "a",
                "--metric",
                "b",
            ],
            &["metrics", "retention", "apply"],
            &["metrics", "storage"],
        ];
        for args in commands {
            assert!(
                parse(args).is_ok(),
                "args {args:?}: {:?}",
                parse(args).err()
            );
        }
    }

    #[test]
    fn metrics_help_names_each_subcommand() {
        let command = TestCli::command();
        let metrics = command.find_subcommand("metrics").unwrap();
        let about = metrics.get_about().unwrap().to_string().to_lowercase();
        for subcommand in metrics.get_subcommands() {
            let name = subcommand.get_name();
            assert!(about.contains(name), "{name:?} is missing from {about:?}");
        }
    }

    #[test]
    fn watch_parses_durations() {
        let cli = parse(&[
            "watch", "cpu", "--window", "10s", "--slide", "5s", "--agg", "mean", "--emit", "update",
        ])
        .unwrap();
        let TestCommand::Client(ClientCommand::Watch(watch)) = cli.command else {
            panic!("parsed {:?}", cli.command);
        };
        assert_eq!(watch.window, std::time::Duration::from_secs(10));
        assert_eq!(watch.slide, Some(std::time::Duration::from_secs(5)));
    }
}
