//! `tidemark bench` against a real server: the load generators must
//! deliver every generated point and finish on their own. Timings are
//! printed but never checked, because they depend on the machine.

mod common;

use clap::Parser;
use common::*;
use tidemark::cli::ClientArgs;
use tidemark::cli::bench::{self, BenchArgs};
use tidemark::proto::v1 as pb;

#[derive(Parser, Debug)]
#[command(name = "tidemark")]
struct TestCli {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: TestCommand,
}

#[derive(clap::Subcommand, Debug)]
enum TestCommand {
    Bench(BenchArgs),
}

async fn run_bench(server: &TestServer, args: &[&str]) {
    let addr = server.addr.to_string();
    let mut full = vec!["tidemark", "--addr", addr.as_str(), "bench"];
    full.extend_from_slice(args);
    let cli = TestCli::try_parse_from(&full).unwrap_or_else(|e| panic!("{full:?}: {e}"));
    let TestCommand::Bench(bench_args) = cli.command;
    bench::run(bench_args, &cli.client)
        .await
        .unwrap_or_else(|e| panic!("bench {args:?} failed: {e:#}"));
}

async fn stored_points(server: &TestServer, metric: &str) -> (u64, u64) {
    let info = server
        .admin()
        .await
        .get_metric(pb::GetMetricRequest {
            name: metric.to_owned(),
        })
        .await
        .expect("get_metric failed")
        .into_inner();
    (info.point_count, info.series_count)
}

#[tokio::test]
async fn bench_ingest_streams_every_point() {
    let server = TestServer::start().await;
    run_bench(
        &server,
        &[
            "ingest",
            "--metric",
            "columnar",
            "--points",
            "5000",
            "--series",
            "50",
            "--streams",
            "3",
            "--points-per-message",
            "300",
            "--run-length",
            "7",
            "--wait-queryable",
        ],
    )
    .await;
    assert_eq!(stored_points(&server, "columnar").await, (5000, 50));
    server.stop().await;
}

#[tokio::test]
async fn bench_ingest_unary_point_format() {
    let server = TestServer::start().await;
    run_bench(
        &server,
        &[
            "ingest",
            "--metric",
            "per_point",
            "--format",
            "points",
            "--unary",
            "--shape",
            "counter",
            "--points",
            "2000",
            "--series",
            "20",
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(stored_points(&server, "per_point").await, (2000, 20));
    server.stop().await;
}

#[tokio::test]
async fn bench_query_after_ingest() {
    let server = TestServer::start().await;
    run_bench(
        &server,
        &[
            "ingest", "--metric", "queried", "--points", "3000", "--series", "30",
        ],
    )
    .await;
    run_bench(
        &server,
        &[
            "query",
            "--metric",
            "queried",
            "--requests",
            "4",
            "--concurrency",
            "2",
            "--statistics",
        ],
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn bench_live_finishes_by_itself() {
    let server = TestServer::start().await;
    run_bench(
        &server,
        &[
            "live",
            "--metric",
            "live",
            "--subscribers",
            "4",
            "--connections",
            "2",
            "--rate",
            "2000",
            "--duration",
            "2s",
            "--series",
            "10",
            "--group-by",
            "group",
        ],
    )
    .await;
    let (points, series) = stored_points(&server, "live").await;
    assert!(points > 0, "the live load stored no points");
    assert_eq!(series, 10);
    server.stop().await;
}
