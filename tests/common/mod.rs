//! Shared harness of the integration tests: a real server on
//! 127.0.0.1 port 0 and real tonic clients.
//!
//! `TIDEMARK_TEST_STORAGE=memory` (the default) or `disk` picks the
//! storage engine, so the same suite runs against both.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tidemark::proto::v1::admin_service_client::AdminServiceClient;
use tidemark::proto::v1::ingest_service_client::IngestServiceClient;
use tidemark::proto::v1::live_service_client::LiveServiceClient;
use tidemark::proto::v1::query_service_client::QueryServiceClient;
use tidemark::proto::v1::{self as pb};
use tidemark::server::{RunningServer, ServerConfig};
use tidemark::storage::Storage;
use tidemark::storage::disk::{DiskConfig, DiskStorage};
use tidemark::storage::memory::MemoryStorage;
use tonic::transport::Channel;

/// Largest message the test clients decode.
const CLIENT_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

pub struct TestServer {
    pub addr: SocketAddr,
    server: Option<RunningServer>,
    /// Keeps the data directory of a disk engine alive.
    _data_dir: Option<tempfile::TempDir>,
}

fn storage_for_test() -> (Arc<dyn Storage>, Option<tempfile::TempDir>) {
    match std::env::var("TIDEMARK_TEST_STORAGE").as_deref() {
        Ok("memory") | Err(_) => (Arc::new(MemoryStorage::new()), None),
        Ok("disk") => {
            let dir = tempfile::tempdir().expect("create a data directory");
            let storage =
                DiskStorage::open(DiskConfig::new(dir.path())).expect("open disk storage");
            (Arc::new(storage), Some(dir))
        }
        Ok(other) => panic!("TIDEMARK_TEST_STORAGE={other:?} is not supported; use memory or disk"),
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(ServerConfig::default()).await
    }

    pub async fn start_with(config: ServerConfig) -> TestServer {
        let (storage, data_dir) = storage_for_test();
        let server = RunningServer::start("127.0.0.1:0".parse().unwrap(), storage, config)
            .await
            .expect("server failed to start");
        TestServer {
            addr: server.local_addr(),
            server: Some(server),
            _data_dir: data_dir,
        }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .expect("failed to connect to the test server")
    }

    pub async fn ingest(&self) -> IngestServiceClient<Channel> {
        IngestServiceClient::new(self.channel().await)
            .max_decoding_message_size(CLIENT_MAX_MESSAGE_BYTES)
            .max_encoding_message_size(CLIENT_MAX_MESSAGE_BYTES)
    }

    pub async fn query(&self) -> QueryServiceClient<Channel> {
        QueryServiceClient::new(self.channel().await)
            .max_decoding_message_size(CLIENT_MAX_MESSAGE_BYTES)
    }

    pub async fn live(&self) -> LiveServiceClient<Channel> {
        LiveServiceClient::new(self.channel().await)
    }

    pub async fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel().await)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("server failed to stop");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.trigger_shutdown();
        }
    }
}

/// Opens a raw HTTP/2 gRPC call to `path` (such as
/// `/tidemark.v1.QueryService/Aggregate`), for tests that send bytes a
/// tonic client would never send. Returns the response future and the
/// request body stream.
pub async fn raw_grpc_call(
    server: &TestServer,
    path: &str,
) -> (h2::client::ResponseFuture, h2::SendStream<bytes::Bytes>) {
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (h2, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut h2 = h2.ready().await.unwrap();

    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{}{path}", server.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    h2.send_request(request, false).unwrap()
}

/// Builds a point with a double value.
pub fn double_point(metric: &str, time_ns: i64, value: f64, tags: &[(&str, &str)]) -> pb::Point {
    pb::Point {
        metric: metric.to_owned(),
        time_unix_nano: time_ns,
        value: Some(pb::point::Value::DoubleValue(value)),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// Builds a point with any value.
pub fn point(
    metric: &str,
    time_ns: i64,
    value: pb::point::Value,
    tags: &[(&str, &str)],
) -> pb::Point {
    pb::Point {
        metric: metric.to_owned(),
        time_unix_nano: time_ns,
        value: Some(value),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// Writes points with one WritePoints call and returns the response.
pub async fn write(server: &TestServer, points: Vec<pb::Point>) -> pb::WritePointsResponse {
    server
        .ingest()
        .await
        .write_points(pb::WritePointsRequest {
            points,
            series: vec![],
        })
        .await
        .expect("write_points failed")
        .into_inner()
}

pub fn range(start_ns: i64, end_ns: i64) -> Option<pb::TimeRange> {
    Some(pb::TimeRange {
        start_unix_nano: start_ns,
        end_unix_nano: end_ns,
    })
}

pub fn spec(function: pb::Aggregation) -> pb::AggregationSpec {
    pb::AggregationSpec {
        function: function as i32,
        percentile: 0.0,
    }
}

pub fn percentile(p: f64) -> pb::AggregationSpec {
    pb::AggregationSpec {
        function: pb::Aggregation::Percentile as i32,
        percentile: p,
    }
}

pub fn duration(d: Duration) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    })
}

pub fn tag_filter(key: &str, op: pb::Operator, values: &[&str]) -> pb::Filter {
    pb::Filter {
        field: format!("tags.{key}"),
        op: op as i32,
        values: values
            .iter()
            .map(|v| pb::FilterValue {
                value: Some(pb::filter_value::Value::StringValue(v.to_string())),
            })
            .collect(),
    }
}

pub const SECOND_NS: i64 = 1_000_000_000;
pub const MINUTE_NS: i64 = 60 * SECOND_NS;
pub const HOUR_NS: i64 = 60 * MINUTE_NS;
pub const DAY_NS: i64 = 24 * HOUR_NS;
