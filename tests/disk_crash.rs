//! End-to-end crash test of the disk engine. It runs the real `tidemark
//! serve` binary, writes over gRPC from several clients and kills the
//! process with SIGKILL mid-stream. It then restarts the server on the same
//! data directory and checks that every acknowledged point is present
//! exactly once. The head
//! is flushed every few thousand points, so kills also hit flushes and
//! compactions.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use parking_lot::Mutex;
use tidemark::proto::v1::ingest_service_client::IngestServiceClient;
use tidemark::proto::v1::query_service_client::QueryServiceClient;
use tidemark::proto::v1::{self as pb};
use tonic::transport::Channel;

const ROUNDS: u64 = 20;
const WRITERS: u64 = 4;
const POINTS_PER_BATCH: u64 = 10;
const METRIC: &str = "crash_test";
/// Maximum wait for the server's ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `tidemark serve` child process.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// Starts the server on a free loopback port and waits for the log
    /// line that names its address.
    fn start(data_dir: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args([
                "serve",
                "--storage",
                "disk",
                "--listen",
                "127.0.0.1:0",
                "--log-level",
                "info",
            ])
            // Small heads, so kills also land during flushes and
            // compactions.
            .args(["--head-flush-points", "3000", "--head-flush-age", "1s"])
            .arg("--data-dir")
            .arg(data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tidemark serve");

        // The reader thread keeps draining stderr so the server never
        // blocks on a full pipe.
        let stderr = child.stderr.take().expect("piped stderr");
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("WARN") || line.contains("ERROR") {
                    eprintln!("server: {line}");
                }
                if line.contains("ready to accept")
                    && let Some(addr) = parse_addr(&line)
                    && let Some(tx) = ready_tx.take()
                {
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = ready_rx
            .recv_timeout(READY_TIMEOUT)
            .expect("tidemark serve printed no ready line within 60 s");
        Server { child, addr }
    }

    fn kill(mut self) {
        self.child.kill().expect("send SIGKILL");
        self.child.wait().expect("reap the server");
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .expect("connect to the server")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes ANSI colour sequences (`ESC [ ... letter`), so the address is
/// found even if the server colours its log.
fn strip_ansi(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for code in chars.by_ref() {
                if code.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// Extracts `addr=HOST:PORT` from a log line.
fn parse_addr(line: &str) -> Option<SocketAddr> {
    let line = strip_ansi(line);
    let start = line.find("addr=")? + "addr=".len();
    let rest = &line[start..];
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    rest[..end].trim_matches('"').parse().ok()
}

/// Returns the value written at a timestamp, so a read can be checked.
fn value_at(time_ns: i64) -> f64 {
    (time_ns % 1_000_003) as f64 / 7.0
}

/// Points written by one test run, keyed by writer and timestamp.
#[derive(Default)]
struct Ledger {
    /// Points whose WritePoints call returned success.
    acknowledged: BTreeSet<(u64, i64)>,
    /// Points sent, acknowledged or not.
    sent: BTreeSet<(u64, i64)>,
}

/// Writes batches until the server goes away; returns the number of
/// acknowledged batches.
async fn write_until_error(
    channel: Channel,
    writer: u64,
    first_time_ns: i64,
    ledger: Arc<Mutex<Ledger>>,
) -> u64 {
    let mut client = IngestServiceClient::new(channel);
    let mut batches = 0u64;
    loop {
        let times: Vec<i64> = (0..POINTS_PER_BATCH)
            .map(|i| first_time_ns + ((batches * POINTS_PER_BATCH + i) as i64) * 1_000)
            .collect();
        {
            let mut ledger = ledger.lock();
            ledger.sent.extend(times.iter().map(|&t| (writer, t)));
        }
        let request = pb::WritePointsRequest {
            points: Vec::new(),
            series: vec![pb::SeriesPoints {
                metric: METRIC.to_owned(),
                tags: [("writer".to_owned(), writer.to_string())]
                    .into_iter()
                    .collect(),
                double_values: times.iter().map(|&t| value_at(t)).collect(),
                times_unix_nano: times.clone(),
                ..Default::default()
            }],
        };
        match client.write_points(request).await {
            Ok(response) => {
                let response = response.into_inner();
                assert_eq!(response.rejected, 0, "rejections: {:?}", response.errors);
                assert_eq!(response.accepted, POINTS_PER_BATCH);
                ledger
                    .lock()
                    .acknowledged
                    .extend(times.iter().map(|&t| (writer, t)));
                batches += 1;
            }
            Err(_) => return batches,
        }
    }
}

/// Reads every point of the test metric: (writer, time) to the values
/// found there.
async fn read_all(server: &Server) -> BTreeMap<(u64, i64), Vec<f64>> {
    let mut client =
        QueryServiceClient::new(server.channel().await).max_decoding_message_size(256 << 20);
    // Pages keep each response under the server's message limit.
    const PAGE_POINTS: u32 = 200_000;
    let mut points = Vec::new();
    loop {
        let response = client
            .query_points(pb::QueryPointsRequest {
                metrics: vec![METRIC.to_owned()],
                limit: PAGE_POINTS,
                offset: points.len() as u32,
                ..Default::default()
            })
            .await
            .expect("query the test metric")
            .into_inner();
        let page_len = response.points.len();
        points.extend(response.points);
        if page_len == 0 || points.len() as u64 >= response.total_matched {
            assert_eq!(
                response.total_matched,
                points.len() as u64,
                "the pages do not add up to the matched points"
            );
            break;
        }
    }
    let mut found: BTreeMap<(u64, i64), Vec<f64>> = BTreeMap::new();
    for point in points {
        let writer: u64 = point.tags["writer"].parse().expect("numeric writer tag");
        let Some(pb::point::Value::DoubleValue(value)) = point.value else {
            panic!("point at {} has no double value", point.time_unix_nano);
        };
        found
            .entry((writer, point.time_unix_nano))
            .or_default()
            .push(value);
    }
    found
}

fn check_ledger(found: &BTreeMap<(u64, i64), Vec<f64>>, ledger: &Ledger, round: u64) {
    let mut missing = 0;
    for key in &ledger.acknowledged {
        match found.get(key).map(Vec::as_slice) {
            None => missing += 1,
            Some([value]) => assert_eq!(
                *value,
                value_at(key.1),
                "round {round}: wrong value at {key:?}"
            ),
            Some(values) => panic!("round {round}: {key:?} is present {} times", values.len()),
        }
    }
    assert_eq!(missing, 0, "round {round}: acknowledged points missing");
    for (key, values) in found {
        assert!(
            ledger.sent.contains(key),
            "round {round}: {key:?} was never sent"
        );
        assert_eq!(
            values.len(),
            1,
            "round {round}: {key:?} is present {} times",
            values.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_points_survive_sigkill() {
    let data_dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    // A day back, so the retention pass keeps every point.
    let base_ns = tidemark::clock::now_ns() - 86_400_000_000_000;

    for round in 0..ROUNDS {
        let server = Server::start(data_dir.path());
        let found = read_all(&server).await;
        check_ledger(&found, &ledger.lock(), round);

        let mut writers = Vec::new();
        for writer in 0..WRITERS {
            let first_time_ns =
                base_ns + (round as i64) * 60_000_000_000 + (writer as i64) * 10_000_000_000;
            writers.push(tokio::spawn(write_until_error(
                server.channel().await,
                writer,
                first_time_ns,
                ledger.clone(),
            )));
        }
        // Vary the moment of the kill from round to round.
        tokio::time::sleep(Duration::from_millis(100 + (round * 37) % 300)).await;
        server.kill();
        let mut acknowledged_batches = 0;
        for writer in writers {
            acknowledged_batches += writer.await.expect("writer task");
        }
        assert!(
            acknowledged_batches > 0,
            "round {round}: no batch was acknowledged before the kill"
        );
    }

    let server = Server::start(data_dir.path());
    let found = read_all(&server).await;
    let ledger = ledger.lock();
    check_ledger(&found, &ledger, ROUNDS);
    let block_files = std::fs::read_dir(data_dir.path().join("blocks"))
        .unwrap()
        .count();
    eprintln!(
        "{} points acknowledged, {} sent, {} present after {ROUNDS} kills, {block_files} block files",
        ledger.acknowledged.len(),
        ledger.sent.len(),
        found.len()
    );
    assert!(
        block_files > 0,
        "no head flush happened, so kills never hit one"
    );
}
