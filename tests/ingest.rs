//! Ingest over real gRPC: streams, batches, rejections and cancellation.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tidemark::proto::v1 as pb;

/// Points of a gauge in message `m`, point `i`, spread out of order.
fn stream_time(m: i64, i: i64) -> i64 {
    // Reverse order inside each message exercises the out-of-order path.
    1_700_000_000 * SECOND_NS + (m * 1000 + (999 - i)) * MINUTE_NS / 1000
}

#[tokio::test]
async fn stream_of_100k_points_queried_back_exactly() {
    let server = TestServer::start().await;
    let mut ingest = server.ingest().await;

    let messages: Vec<pb::StreamPointsRequest> = (0..100)
        .map(|m| {
            if m % 2 == 0 {
                // Columnar: one series per message with all 1000 points.
                pb::StreamPointsRequest {
                    points: vec![],
                    series: vec![pb::SeriesPoints {
                        metric: "gauge".into(),
                        tags: [("host".to_string(), format!("h{}", m % 4))].into(),
                        times_unix_nano: (0..1000).map(|i| stream_time(m, i)).collect(),
                        double_values: (0..1000).map(|i| (m * 1000 + i) as f64 * 0.5).collect(),
                        ..Default::default()
                    }],
                }
            } else {
                // Point per point, same content shape.
                let host = format!("h{}", m % 4);
                pb::StreamPointsRequest {
                    points: (0..1000)
                        .map(|i| {
                            double_point(
                                "gauge",
                                stream_time(m, i),
                                (m * 1000 + i) as f64 * 0.5,
                                &[("host", &host)],
                            )
                        })
                        .collect(),
                    series: vec![],
                }
            }
        })
        .collect();

    let response = ingest
        .stream_points(futures::stream::iter(messages))
        .await
        .expect("stream_points failed")
        .into_inner();
    assert_eq!(response.accepted, 100_000);
    assert_eq!(response.rejected, 0);
    assert!(response.errors.is_empty());

    let result = server
        .query()
        .await
        .query_points(pb::QueryPointsRequest {
            metrics: vec!["gauge".into()],
            limit: 100_000,
            ..Default::default()
        })
        .await
        .expect("query_points failed")
        .into_inner();
    assert_eq!(result.total_matched, 100_000);
    assert_eq!(result.points.len(), 100_000);

    let mut expected: Vec<(i64, f64, String)> = (0..100)
        .flat_map(|m| {
            (0..1000).map(move |i| {
                (
                    stream_time(m, i),
                    (m * 1000 + i) as f64 * 0.5,
                    format!("h{}", m % 4),
                )
            })
        })
        .collect();
    expected.sort_by_key(|(t, _, _)| *t);
    for (point, (time_ns, value, host)) in result.points.iter().zip(&expected) {
        assert_eq!(point.time_unix_nano, *time_ns);
        assert_eq!(point.value, Some(pb::point::Value::DoubleValue(*value)));
        assert_eq!(point.tags.get("host"), Some(host));
    }
}

#[tokio::test]
async fn rejections_carry_stream_positions() {
    let server = TestServer::start().await;
    let mut ingest = server.ingest().await;

    let first = pb::StreamPointsRequest {
        points: vec![
            double_point("m", 1, 1.0, &[]),
            double_point("m", 2, 2.0, &[]),
        ],
        series: vec![],
    };
    let second = pb::StreamPointsRequest {
        points: vec![
            double_point("m", 3, f64::NAN, &[]),
            double_point("bad name", 4, 4.0, &[]),
        ],
        series: vec![pb::SeriesPoints {
            metric: "m".into(),
            times_unix_nano: vec![5, 6],
            double_values: vec![5.0, f64::NAN],
            ..Default::default()
        }],
    };
    let response = ingest
        .stream_points(futures::stream::iter(vec![first, second]))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(response.accepted, 3);
    assert_eq!(response.rejected, 3);
    let indexes: Vec<u64> = response.errors.iter().map(|e| e.index).collect();
    assert_eq!(indexes, vec![2, 3, 5]);
    assert!(
        response.errors[0].reason.contains("NaN"),
        "{}",
        response.errors[0].reason
    );
    assert!(
        response.errors[1].reason.contains("\"bad name\""),
        "{}",
        response.errors[1].reason
    );
}

#[tokio::test]
async fn value_kind_mismatch_rejected_with_reason() {
    let server = TestServer::start().await;
    write(
        &server,
        vec![point("flag", 1, pb::point::Value::BoolValue(true), &[])],
    )
    .await;

    let response = write(
        &server,
        vec![
            double_point("flag", 2, 0.5, &[]),
            point("flag", 3, pb::point::Value::BoolValue(false), &[]),
        ],
    )
    .await;

    assert_eq!(response.accepted, 1);
    assert_eq!(response.rejected, 1);
    assert_eq!(response.errors[0].index, 0);
    assert!(
        response.errors[0].reason.contains("BOOLEAN"),
        "{}",
        response.errors[0].reason
    );
}

#[tokio::test]
async fn same_timestamp_last_write_wins() {
    let server = TestServer::start().await;
    write(
        &server,
        vec![
            double_point("m", 10, 1.0, &[("a", "1")]),
            double_point("m", 10, 2.0, &[("a", "1")]),
        ],
    )
    .await;
    write(
        &server,
        vec![
            double_point("m", 5, 0.0, &[("a", "1")]),
            double_point("m", 10, 3.0, &[("a", "1")]),
        ],
    )
    .await;

    let result = server
        .query()
        .await
        .query_points(pb::QueryPointsRequest {
            metrics: vec!["m".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let values: Vec<(i64, Option<pb::point::Value>)> = result
        .points
        .iter()
        .map(|p| (p.time_unix_nano, p.value.clone()))
        .collect();
    assert_eq!(
        values,
        vec![
            (5, Some(pb::point::Value::DoubleValue(0.0))),
            (10, Some(pb::point::Value::DoubleValue(3.0)))
        ]
    );
}

async fn count_points(server: &TestServer, metric: &str) -> u64 {
    server
        .query()
        .await
        .query_points(pb::QueryPointsRequest {
            metrics: vec![metric.into()],
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .total_matched
}

#[tokio::test]
async fn cancelled_stream_keeps_applied_messages() {
    let server = TestServer::start().await;
    let mut ingest = server.ingest().await;
    let (sender, receiver) = tokio::sync::mpsc::channel::<pb::StreamPointsRequest>(4);

    let call = tokio::spawn(async move {
        ingest
            .stream_points(tokio_stream::wrappers::ReceiverStream::new(receiver))
            .await
    });
    for m in 0..3 {
        let message = pb::StreamPointsRequest {
            points: (0..10)
                .map(|i| double_point("cancel", m * 10 + i, 1.0, &[]))
                .collect(),
            series: vec![],
        };
        sender.send(message).await.unwrap();
    }

    let deadline = Instant::now() + Duration::from_secs(10);
    while count_points(&server, "cancel").await < 30 {
        assert!(
            Instant::now() < deadline,
            "the three messages were not applied in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Abort the call: the client resets the HTTP/2 stream.
    call.abort();
    let _ = call.await;
    drop(sender);

    assert_eq!(count_points(&server, "cancel").await, 30);
    // The server keeps serving other streams.
    let response = write(&server, vec![double_point("cancel", 1000, 1.0, &[])]).await;
    assert_eq!(response.accepted, 1);
    assert_eq!(count_points(&server, "cancel").await, 31);
}

/// Sends one complete message and half of a second one over a raw HTTP/2
/// stream, then resets it, so the server receives a message cut in the middle.
#[tokio::test]
async fn half_received_message_stores_nothing() {
    use prost::Message;

    let server = TestServer::start().await;
    let (_response, mut body) =
        raw_grpc_call(&server, "/tidemark.v1.IngestService/StreamPoints").await;

    let frame = |message: &pb::StreamPointsRequest| grpc_frame(&message.encode_to_vec());
    let whole = pb::StreamPointsRequest {
        points: (0..5).map(|i| double_point("torn", i, 1.0, &[])).collect(),
        series: vec![],
    };
    let cut = pb::StreamPointsRequest {
        points: (5..100)
            .map(|i| double_point("torn", i, 1.0, &[]))
            .collect(),
        series: vec![],
    };
    body.send_data(frame(&whole), false).unwrap();
    let cut_frame = frame(&cut);
    body.send_data(cut_frame[..cut_frame.len() / 2].to_vec().into(), false)
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    while count_points(&server, "torn").await < 5 {
        assert!(
            Instant::now() < deadline,
            "the complete message was not applied in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    body.send_reset(h2::Reason::CANCEL);
    tokio::time::sleep(Duration::from_millis(200)).await;

    assert_eq!(count_points(&server, "torn").await, 5);
}

#[tokio::test]
async fn full_ingest_queue_slows_writers_without_losing_points() {
    let config = tidemark::server::ServerConfig {
        ingest: tidemark::ingest::IngestConfig {
            threads: 1,
            queue_capacity: 1,
        },
        ..Default::default()
    };
    let server = TestServer::start_with(config).await;

    // Eight streams compete for a queue of one batch.
    let mut calls = Vec::new();
    for stream in 0..8i64 {
        let mut ingest = server.ingest().await;
        calls.push(tokio::spawn(async move {
            let messages: Vec<pb::StreamPointsRequest> = (0..50i64)
                .map(|m| pb::StreamPointsRequest {
                    points: vec![],
                    series: vec![pb::SeriesPoints {
                        metric: "pressure".into(),
                        tags: [("stream".to_string(), stream.to_string())].into(),
                        times_unix_nano: (0..100).map(|i| m * 100 + i).collect(),
                        int_values: (0..100).collect(),
                        ..Default::default()
                    }],
                })
                .collect();
            ingest
                .stream_points(futures::stream::iter(messages))
                .await
                .map(|r| r.into_inner().accepted)
        }));
    }
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), 5_000);
    }
    assert_eq!(count_points(&server, "pressure").await, 40_000);
}

#[tokio::test]
async fn shutdown_ends_open_stream_with_applied_count() {
    let config = tidemark::server::ServerConfig {
        shutdown_grace: Duration::from_secs(30),
        ..Default::default()
    };
    let server = TestServer::start_with(config).await;
    let mut ingest = server.ingest().await;
    let (sender, receiver) = tokio::sync::mpsc::channel::<pb::StreamPointsRequest>(4);
    let call = tokio::spawn(async move {
        ingest
            .stream_points(tokio_stream::wrappers::ReceiverStream::new(receiver))
            .await
    });
    sender
        .send(pb::StreamPointsRequest {
            points: (0..10).map(|i| double_point("open", i, 1.0, &[])).collect(),
            series: vec![],
        })
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while count_points(&server, "open").await < 10 {
        assert!(
            Instant::now() < deadline,
            "the message was not applied in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The client keeps the stream open; shutdown must not wait for it.
    let started = Instant::now();
    server.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "shutdown waited for the open stream"
    );

    let status = call.await.unwrap().unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("10 points were accepted"),
        "{}",
        status.message()
    );
    drop(sender);
}

/// Reads a gRPC status code and message from a raw HTTP/2 response, in
/// its headers (trailers-only) or its trailers.
async fn raw_status(response: h2::client::ResponseFuture) -> (String, String) {
    let response = response.await.unwrap();
    let mut headers = response.headers().clone();
    if !headers.contains_key("grpc-status") {
        let mut body = response.into_body();
        while let Some(chunk) = body.data().await {
            chunk.unwrap();
        }
        headers = body.trailers().await.unwrap().expect("trailers");
    }
    let field = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap().replace("%20", " "))
            .unwrap_or_default()
    };
    (field("grpc-status"), field("grpc-message"))
}

fn grpc_frame(payload: &[u8]) -> bytes::Bytes {
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    framed.extend_from_slice(payload);
    framed.into()
}

#[tokio::test]
async fn malformed_message_stops_stream_after_applied_ones() {
    use prost::Message;

    let server = TestServer::start().await;
    let (response, mut body) =
        raw_grpc_call(&server, "/tidemark.v1.IngestService/StreamPoints").await;

    let whole = pb::StreamPointsRequest {
        points: (0..3)
            .map(|i| double_point("framed", i, 1.0, &[]))
            .collect(),
        series: vec![],
    };
    body.send_data(grpc_frame(&whole.encode_to_vec()), false)
        .unwrap();
    // points[0] whose metric claims 5 bytes but carries 1.
    body.send_data(grpc_frame(&[0x0a, 0x03, 0x0a, 0x05, b'm']), true)
        .unwrap();

    let (code, message) = raw_status(response).await;
    assert_eq!(code, "3", "{message}");
    assert!(message.contains("points[0].metric"), "{message}");
    assert!(message.contains("(stream position 3)"), "{message}");
    assert!(message.contains("3 points were accepted"), "{message}");
    assert_eq!(count_points(&server, "framed").await, 3);
}

#[tokio::test]
async fn invalid_utf8_in_a_write_is_invalid_argument() {
    use prost::Message;

    let server = TestServer::start().await;
    let (response, mut body) =
        raw_grpc_call(&server, "/tidemark.v1.IngestService/WritePoints").await;
    let mut payload = pb::WritePointsRequest {
        points: vec![double_point("utf", 1, 1.0, &[("host", "a")])],
        series: vec![],
    }
    .encode_to_vec();
    let last = payload.len() - 1;
    payload[last] = 0xff;
    body.send_data(grpc_frame(&payload), true).unwrap();

    let (code, message) = raw_status(response).await;
    assert_eq!(code, "3", "{message}");
    assert!(message.contains("points[0].tags"), "{message}");
    assert!(message.contains("UTF-8"), "{message}");
    assert_eq!(count_points(&server, "utf").await, 0);
}

#[tokio::test]
async fn stream_ending_inside_a_frame_reports_applied_points() {
    use prost::Message;

    let server = TestServer::start().await;
    let (response, mut body) =
        raw_grpc_call(&server, "/tidemark.v1.IngestService/StreamPoints").await;

    let whole = pb::StreamPointsRequest {
        points: (0..2).map(|i| double_point("cut", i, 1.0, &[])).collect(),
        series: vec![],
    };
    body.send_data(grpc_frame(&whole.encode_to_vec()), false)
        .unwrap();
    // A frame header that announces 100 bytes, followed by 3, then the end.
    let mut cut = vec![0u8, 0, 0, 0, 100];
    cut.extend_from_slice(&[0x0a, 0x01, 0x02]);
    body.send_data(cut.into(), true).unwrap();

    let (code, message) = raw_status(response).await;
    assert_eq!(code, "3", "{message}");
    assert!(message.contains("2 points were accepted"), "{message}");
    assert!(message.contains("resend from position 2"), "{message}");
    assert_eq!(count_points(&server, "cut").await, 2);
}
