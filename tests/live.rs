//! Live windows over real gRPC streams: FINAL windows for streamed
//! points, late points, backfill, partial updates, slow subscribers, the
//! clock's wakeup at a window close and the wire format of the shared
//! window encoding.

mod common;

use std::time::Duration;

use common::*;
use prost::Message;
use tidemark::clock::now_ns;
use tidemark::live::LiveConfig;
use tidemark::proto::v1 as pb;
use tidemark::server::ServerConfig;
use tokio_stream::StreamExt;

type Updates = tonic::Streaming<pb::WindowUpdate>;

async fn subscribe(server: &TestServer, request: pb::SubscribeWindowsRequest) -> Updates {
    server
        .live()
        .await
        .subscribe_windows(request)
        .await
        .expect("subscribe_windows failed")
        .into_inner()
}

fn window_request(
    metric: &str,
    window: Duration,
    aggregations: Vec<pb::AggregationSpec>,
) -> pb::SubscribeWindowsRequest {
    pb::SubscribeWindowsRequest {
        metric: metric.into(),
        window: duration(window),
        aggregations,
        ..Default::default()
    }
}

/// Reads updates until `count` windows in `state` arrived, or panics after
/// `timeout`. Returns those windows and every heartbeat and gap seen.
async fn collect_windows(
    updates: &mut Updates,
    state: pb::WindowState,
    count: usize,
    timeout: Duration,
) -> (Vec<pb::Window>, Vec<pb::window_update::Kind>) {
    let mut windows = Vec::new();
    let mut others = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while windows.len() < count {
        let next = tokio::time::timeout_at(deadline, updates.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "timed out with {} of {count} windows; others: {others:?}",
                    windows.len()
                )
            })
            .expect("stream ended early")
            .expect("stream failed");
        match next.kind.expect("update without kind") {
            pb::window_update::Kind::Window(window) if window.state == state as i32 => {
                windows.push(window)
            }
            other => others.push(other),
        }
    }
    (windows, others)
}

/// Start of the first 1-second window that opens after now.
fn next_second_ns() -> i64 {
    let now = now_ns();
    now - now.rem_euclid(SECOND_NS) + SECOND_NS
}

#[tokio::test]
async fn final_windows_for_streamed_points() {
    let server = TestServer::start().await;
    let mut updates = subscribe(
        &server,
        pb::SubscribeWindowsRequest {
            group_by: vec!["host".into()],
            ..window_request(
                "cpu",
                Duration::from_secs(1),
                vec![
                    spec(pb::Aggregation::Sum),
                    spec(pb::Aggregation::Max),
                    spec(pb::Aggregation::Count),
                ],
            )
        },
    )
    .await;

    let first = next_second_ns();
    let second = first + SECOND_NS;
    let messages = vec![
        pb::StreamPointsRequest {
            points: vec![
                double_point("cpu", first + 1, 1.0, &[("host", "a")]),
                double_point("cpu", first + 2, 2.0, &[("host", "a")]),
                double_point("cpu", first + 3, 10.0, &[("host", "b")]),
            ],
            series: vec![],
        },
        pb::StreamPointsRequest {
            points: vec![double_point("cpu", second + 5, 7.0, &[("host", "a")])],
            series: vec![],
        },
    ];
    let response = server
        .ingest()
        .await
        .stream_points(futures::stream::iter(messages))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.accepted, 4);

    let (windows, _) = collect_windows(
        &mut updates,
        pb::WindowState::Final,
        3,
        Duration::from_secs(5),
    )
    .await;

    type Summary = (i64, Option<String>, u64, Option<f64>, Option<f64>);
    let summary: Vec<Summary> = windows
        .iter()
        .map(|w| {
            (
                w.start_unix_nano,
                w.group.get("host").cloned(),
                w.count,
                w.values[0].value,
                w.values[1].value,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (first, Some("a".into()), 2, Some(3.0), Some(2.0)),
            (first, Some("b".into()), 1, Some(10.0), Some(10.0)),
            (second, Some("a".into()), 1, Some(7.0), Some(7.0)),
        ]
    );
    assert!(
        windows
            .iter()
            .all(|w| w.end_unix_nano - w.start_unix_nano == SECOND_NS)
    );
}

#[tokio::test]
async fn late_point_counted_in_heartbeat_and_stored() {
    let config = ServerConfig {
        live: LiveConfig {
            heartbeat_interval: Duration::from_millis(100),
            ..LiveConfig::default()
        },
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config).await;
    let mut updates = subscribe(
        &server,
        window_request(
            "lat",
            Duration::from_secs(1),
            vec![spec(pb::Aggregation::Count)],
        ),
    )
    .await;

    let old = now_ns() - 10 * SECOND_NS;
    assert_eq!(
        write(&server, vec![double_point("lat", old, 1.0, &[])])
            .await
            .accepted,
        1
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut late_total = 0;
    while late_total == 0 {
        let update = tokio::time::timeout_at(deadline, updates.next())
            .await
            .expect("no heartbeat with late points in time")
            .unwrap()
            .unwrap();
        match update.kind.unwrap() {
            pb::window_update::Kind::Heartbeat(heartbeat) => {
                assert!(heartbeat.watermark_unix_nano <= now_ns());
                late_total += heartbeat.late_points;
            }
            pb::window_update::Kind::Window(window) => {
                panic!("late point opened a window: {window:?}")
            }
            pb::window_update::Kind::Gap(gap) => panic!("unexpected gap {gap:?}"),
        }
    }
    assert_eq!(late_total, 1);

    let stored = server
        .query()
        .await
        .query_points(pb::QueryPointsRequest {
            metrics: vec!["lat".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.total_matched, 1);
}

#[tokio::test]
async fn backfill_sends_closed_windows_from_storage_first() {
    let server = TestServer::start().await;
    let now = now_ns();
    let current = now - now.rem_euclid(SECOND_NS);
    // Three closed windows: two with points, one empty in between.
    let points = vec![
        double_point("bf", current - 3 * SECOND_NS + 1, 4.0, &[]),
        double_point("bf", current - 3 * SECOND_NS + 2, 6.0, &[]),
        double_point("bf", current - SECOND_NS + 1, 8.0, &[]),
    ];
    write(&server, points).await;

    let mut updates = subscribe(
        &server,
        pb::SubscribeWindowsRequest {
            backfill_windows: 3,
            ..window_request(
                "bf",
                Duration::from_secs(1),
                vec![spec(pb::Aggregation::Mean)],
            )
        },
    )
    .await;

    let first = updates.next().await.unwrap().unwrap().kind.unwrap();
    let second = updates.next().await.unwrap().unwrap().kind.unwrap();
    let pb::window_update::Kind::Window(first) = first else {
        panic!("expected a window, got {first:?}")
    };
    let pb::window_update::Kind::Window(second) = second else {
        panic!("expected a window, got {second:?}")
    };
    // The subscription may have started just after a second boundary;
    // then the newest backfilled window is `current`, which is empty.
    assert_eq!(first.state, pb::WindowState::Final as i32);
    assert_eq!(first.count, 2);
    assert_eq!(first.values[0].value, Some(5.0));
    assert_eq!(second.count, 1);
    assert_eq!(second.values[0].value, Some(8.0));
    assert_eq!(
        second.start_unix_nano - first.start_unix_nano,
        2 * SECOND_NS
    );
}

#[tokio::test]
async fn on_update_sends_partial_windows() {
    let server = TestServer::start().await;
    let mut updates = subscribe(
        &server,
        pb::SubscribeWindowsRequest {
            emit: pb::EmitMode::OnUpdate as i32,
            update_interval: duration(Duration::from_millis(50)),
            ..window_request(
                "part",
                Duration::from_secs(3600),
                vec![spec(pb::Aggregation::Count)],
            )
        },
    )
    .await;

    let now = now_ns();
    write(&server, vec![double_point("part", now, 1.0, &[])]).await;
    let (partials, _) = collect_windows(
        &mut updates,
        pb::WindowState::Partial,
        1,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(partials[0].count, 1);
    assert_eq!(partials[0].revision, 0);

    write(&server, vec![double_point("part", now + 1, 1.0, &[])]).await;
    let (partials, _) = collect_windows(
        &mut updates,
        pb::WindowState::Partial,
        1,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(partials[0].count, 2);
    assert_eq!(partials[0].revision, 1);
}

#[tokio::test]
async fn slow_subscriber_gets_gap_and_does_not_block_others() {
    let config = ServerConfig {
        live: LiveConfig {
            subscriber_queue_capacity: 64,
            ..LiveConfig::default()
        },
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config).await;

    // 32 group tags of 1000 bytes make each window update about 32 KB, so
    // 1000 updates overflow the HTTP/2 and socket buffers of a client
    // that does not read, and the server-side queue has to drop.
    let tags: Vec<(String, String)> = (0..32)
        .map(|i| (format!("t{i}"), "x".repeat(1000)))
        .collect();
    let request = pb::SubscribeWindowsRequest {
        group_by: tags.iter().map(|(k, _)| k.clone()).collect(),
        ..window_request(
            "fast",
            Duration::from_millis(1),
            vec![spec(pb::Aggregation::Count)],
        )
    };
    let mut slow = subscribe(&server, request.clone()).await;
    let mut fast = subscribe(&server, request).await;

    const WINDOWS: i64 = 1000;
    let start = now_ns() + 300 * 1_000_000;
    let start = start - start.rem_euclid(1_000_000);
    let series = pb::SeriesPoints {
        metric: "fast".into(),
        tags: tags.into_iter().collect(),
        times_unix_nano: (0..WINDOWS).map(|i| start + i * 1_000_000 + 1).collect(),
        double_values: vec![1.0; WINDOWS as usize],
        ..Default::default()
    };
    let response = server
        .ingest()
        .await
        .write_points(pb::WritePointsRequest {
            points: vec![],
            series: vec![series],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.accepted, WINDOWS as u64);

    let (windows, others) = collect_windows(
        &mut fast,
        pb::WindowState::Final,
        WINDOWS as usize,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(windows.len(), WINDOWS as usize);
    assert!(
        !others
            .iter()
            .any(|k| matches!(k, pb::window_update::Kind::Gap(_))),
        "the fast subscriber lost updates"
    );

    // The slow subscriber now reads everything that reached it: every
    // window either arrived or was counted in a gap.
    let mut received = 0u64;
    let mut dropped = 0u64;
    while received + dropped < WINDOWS as u64 {
        let update = tokio::time::timeout(Duration::from_secs(10), slow.next())
            .await
            .expect("slow subscriber timed out")
            .unwrap()
            .unwrap();
        match update.kind.unwrap() {
            pb::window_update::Kind::Window(_) => received += 1,
            pb::window_update::Kind::Gap(gap) => dropped += gap.windows_dropped,
            pb::window_update::Kind::Heartbeat(_) => {}
        }
    }
    assert!(dropped > 0, "no update was dropped; received {received}");
    assert_eq!(received + dropped, WINDOWS as u64);
}

#[tokio::test]
async fn hopping_windows_with_filter() {
    let server = TestServer::start().await;
    let mut updates = subscribe(
        &server,
        pb::SubscribeWindowsRequest {
            slide: duration(Duration::from_millis(500)),
            filters: vec![tag_filter("job", pb::Operator::Eq, &["build"])],
            ..window_request(
                "hop",
                Duration::from_secs(1),
                vec![spec(pb::Aggregation::Count)],
            )
        },
    )
    .await;

    let base = next_second_ns();
    write(
        &server,
        vec![
            double_point("hop", base + 600_000_000, 1.0, &[("job", "build")]),
            double_point("hop", base + 700_000_000, 1.0, &[("job", "test")]),
        ],
    )
    .await;

    // The point at base+0.6s lies in the windows starting at base and at
    // base+0.5s; the `test` point is filtered out.
    let (windows, _) = collect_windows(
        &mut updates,
        pb::WindowState::Final,
        2,
        Duration::from_secs(5),
    )
    .await;
    let starts: Vec<(i64, u64)> = windows
        .iter()
        .map(|w| (w.start_unix_nano - base, w.count))
        .collect();
    assert_eq!(starts, vec![(0, 1), (500_000_000, 1)]);
}

#[tokio::test]
async fn window_closes_without_clock_tick() {
    // Neither the ON_UPDATE poll nor a heartbeat wakes the clock within
    // the test, so only the window close itself can send the FINAL.
    let config = ServerConfig {
        live: LiveConfig {
            update_check_interval: Duration::from_secs(3600),
            heartbeat_interval: Duration::from_secs(3600),
            ..LiveConfig::default()
        },
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config).await;
    // The clock started with no aggregation; subscribing must wake it.
    let mut updates = subscribe(
        &server,
        window_request(
            "prompt",
            Duration::from_secs(1),
            vec![spec(pb::Aggregation::Count)],
        ),
    )
    .await;

    let first = next_second_ns();
    write(&server, vec![double_point("prompt", first + 1, 1.0, &[])]).await;

    let (windows, others) = collect_windows(
        &mut updates,
        pb::WindowState::Final,
        1,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(windows[0].start_unix_nano, first);
    assert_eq!(windows[0].count, 1);
    assert!(others.is_empty(), "unexpected updates: {others:?}");
}

/// Splits gRPC length-prefixed messages off the front of `buffer`.
fn take_grpc_messages(buffer: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    while buffer.len() >= 5 {
        assert_eq!(buffer[0], 0, "compressed message");
        let length = u32::from_be_bytes(buffer[1..5].try_into().unwrap()) as usize;
        if buffer.len() < 5 + length {
            break;
        }
        messages.push(buffer[5..5 + length].to_vec());
        buffer.drain(..5 + length);
    }
    messages
}

#[tokio::test]
async fn shared_window_bytes_match_tonic_client() {
    let server = TestServer::start().await;
    let request = pb::SubscribeWindowsRequest {
        group_by: vec!["host".into()],
        ..window_request(
            "wire",
            Duration::from_secs(1),
            vec![spec(pb::Aggregation::Count), spec(pb::Aggregation::Mean)],
        )
    };
    // Two subscribers of the same request share one aggregation, so both
    // receive the same encoded update: one reads it with tonic, the other
    // takes the raw message bytes off HTTP/2.
    let mut decoded_updates = subscribe(&server, request.clone()).await;
    let (response, mut body) =
        raw_grpc_call(&server, "/tidemark.v1.LiveService/SubscribeWindows").await;
    let encoded = request.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    frame.extend_from_slice(&encoded);
    body.send_data(frame.into(), true).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    let mut raw_updates = response.into_body();

    let first = next_second_ns();
    write(
        &server,
        vec![
            double_point("wire", first + 1, 1.5, &[("host", "a")]),
            double_point("wire", first + 2, 4.0, &[("host", "b")]),
            double_point("wire", first + 3, 2.5, &[("host", "a")]),
        ],
    )
    .await;

    let (windows, _) = collect_windows(
        &mut decoded_updates,
        pb::WindowState::Final,
        2,
        Duration::from_secs(10),
    )
    .await;

    let mut raw_windows = Vec::new();
    let mut buffer = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while raw_windows.len() < 2 {
        let chunk = tokio::time::timeout_at(deadline, raw_updates.data())
            .await
            .expect("timed out waiting for raw updates")
            .expect("raw stream ended early")
            .expect("raw stream failed");
        let _ = raw_updates.flow_control().release_capacity(chunk.len());
        buffer.extend_from_slice(&chunk);
        for message in take_grpc_messages(&mut buffer) {
            let update = pb::WindowUpdate::decode(message.as_slice()).unwrap();
            if let Some(pb::window_update::Kind::Window(_)) = update.kind {
                raw_windows.push(message);
            }
        }
    }

    for (window, raw) in windows.into_iter().zip(raw_windows) {
        let expected = pb::WindowUpdate {
            kind: Some(pb::window_update::Kind::Window(window)),
        };
        assert_eq!(raw, expected.encode_to_vec());
    }
}

#[tokio::test]
async fn unknown_live_method_is_unimplemented() {
    let server = TestServer::start().await;
    let (response, mut body) = raw_grpc_call(&server, "/tidemark.v1.LiveService/Nope").await;
    body.send_data(vec![0, 0, 0, 0, 0].into(), true).unwrap();
    let response = response.await.unwrap();
    let status = response
        .headers()
        .get("grpc-status")
        .expect("no grpc-status header");
    assert_eq!(status, "12");
}
