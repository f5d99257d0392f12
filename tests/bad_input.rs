//! Every bad-input rule: the status code and a message that names the
//! field, the value and the limit. The server keeps serving afterwards.

mod common;

use std::time::Duration;

use common::*;
use tidemark::proto::v1 as pb;
use tonic::Code;

async fn rejection_reason(server: &TestServer, point: pb::Point) -> String {
    let response = write(server, vec![point]).await;
    assert_eq!(response.accepted, 0, "point should be rejected");
    assert_eq!(response.rejected, 1);
    response.errors[0].reason.clone()
}

#[tokio::test]
async fn invalid_points_rejected_with_field_value_and_limit() {
    let server = TestServer::start().await;
    let long_name = "m".repeat(257);
    let many_tags: Vec<(String, String)> = (0..33)
        .map(|i| (format!("k{i}"), "v".to_string()))
        .collect();
    let many_tags: Vec<(&str, &str)> = many_tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let long_key = "k".repeat(257);
    let long_value = "v".repeat(1025);
    let long_string = "s".repeat(64 * 1024 + 1);

    let cases: Vec<(&str, pb::Point, Vec<&str>)> = vec![
        (
            "empty metric",
            double_point("", 1, 1.0, &[]),
            vec!["metric", "empty"],
        ),
        (
            "bad metric chars",
            double_point("cpu load", 1, 1.0, &[]),
            vec!["metric", "\"cpu load\"", "[A-Za-z_:]"],
        ),
        (
            "metric starts with digit",
            double_point("1cpu", 1, 1.0, &[]),
            vec!["\"1cpu\""],
        ),
        (
            "metric too long",
            double_point(&long_name, 1, 1.0, &[]),
            vec!["metric", "257 bytes", "256"],
        ),
        (
            "too many tags",
            double_point("m", 1, 1.0, &many_tags),
            vec!["tags", "33 tags", "32"],
        ),
        (
            "tag key too long",
            double_point("m", 1, 1.0, &[(&long_key, "v")]),
            vec!["key", "257 bytes", "256"],
        ),
        (
            "tag value too long",
            double_point("m", 1, 1.0, &[("k", &long_value)]),
            vec!["\"k\"", "1025 bytes", "1024"],
        ),
        (
            "empty tag key",
            double_point("m", 1, 1.0, &[("", "v")]),
            vec!["empty tag key"],
        ),
        (
            "NaN value",
            double_point("m", 1, f64::NAN, &[]),
            vec!["double_value", "NaN"],
        ),
        (
            "string too long",
            point(
                "s",
                1,
                pb::point::Value::StringValue(long_string.clone()),
                &[],
            ),
            vec!["string_value", "65537 bytes", "65536"],
        ),
    ];

    for (name, point, needles) in cases {
        let reason = rejection_reason(&server, point).await;
        for needle in needles {
            assert!(
                reason.contains(needle),
                "{name}: reason {reason:?} lacks {needle:?}"
            );
        }
    }

    let missing_value = pb::Point {
        metric: "m".into(),
        time_unix_nano: 1,
        value: None,
        tags: Default::default(),
    };
    let reason = rejection_reason(&server, missing_value).await;
    assert!(reason.contains("value is not set"), "{reason}");
}

#[tokio::test]
async fn infinities_accepted() {
    let server = TestServer::start().await;
    let response = write(
        &server,
        vec![
            double_point("inf", 1, f64::INFINITY, &[]),
            double_point("inf", 2, f64::NEG_INFINITY, &[]),
        ],
    )
    .await;
    assert_eq!(response.accepted, 2);
}

#[tokio::test]
async fn extreme_timestamps_accepted() {
    let server = TestServer::start().await;
    let response = write(
        &server,
        vec![
            double_point("edge", i64::MIN, 1.0, &[]),
            double_point("edge", i64::MAX - 1, 2.0, &[]),
            double_point("edge", i64::MAX, 3.0, &[]),
        ],
    )
    .await;
    assert_eq!(response.accepted, 2);
    assert_eq!(response.errors[0].index, 2);
    assert!(
        response.errors[0].reason.contains("9223372036854775806"),
        "{}",
        response.errors[0].reason
    );

    let result = server
        .query()
        .await
        .aggregate(pb::AggregateRequest {
            metric: "edge".into(),
            granularity: pb::Granularity::Day as i32,
            aggregations: vec![spec(pb::Aggregation::Count)],
            ..Default::default()
        })
        .await
        .expect("aggregate over extreme timestamps failed")
        .into_inner();
    let total: u64 = result
        .series
        .iter()
        .flat_map(|s| &s.buckets)
        .map(|b| b.count)
        .sum();
    assert_eq!(total, 2);
}

#[tokio::test]
async fn oversized_message_is_resource_exhausted() {
    let server = TestServer::start().await;
    let mut ingest = server.ingest().await;
    let big = pb::WritePointsRequest {
        points: vec![],
        series: vec![pb::SeriesPoints {
            metric: "big".into(),
            times_unix_nano: (0..2_000_000).collect(),
            double_values: vec![1.5; 2_000_000],
            ..Default::default()
        }],
    };

    let status = ingest.write_points(big.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("16777216"),
        "{}",
        status.message()
    );

    let status = ingest
        .stream_points(futures::stream::iter(vec![pb::StreamPointsRequest {
            points: big.points,
            series: big.series,
        }]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // The server still accepts normal writes.
    assert_eq!(
        write(&server, vec![double_point("big", 1, 1.0, &[])])
            .await
            .accepted,
        1
    );
}

async fn aggregate_status(server: &TestServer, request: pb::AggregateRequest) -> tonic::Status {
    server
        .query()
        .await
        .aggregate(request)
        .await
        .expect_err("aggregate should fail")
}

fn valid_aggregate() -> pb::AggregateRequest {
    pb::AggregateRequest {
        metric: "m".into(),
        granularity: pb::Granularity::Minute as i32,
        aggregations: vec![spec(pb::Aggregation::Mean)],
        ..Default::default()
    }
}

#[tokio::test]
async fn invalid_aggregate_requests_rejected() {
    let server = TestServer::start().await;
    write(&server, vec![double_point("m", 1, 1.0, &[])]).await;

    let cases: Vec<(&str, pb::AggregateRequest, &str)> = vec![
        (
            "unspecified granularity",
            pb::AggregateRequest {
                granularity: 0,
                ..valid_aggregate()
            },
            "granularity",
        ),
        (
            "unknown granularity",
            pb::AggregateRequest {
                granularity: 99,
                ..valid_aggregate()
            },
            "unknown enum value 99",
        ),
        (
            "unspecified aggregation",
            pb::AggregateRequest {
                aggregations: vec![spec(pb::Aggregation::Unspecified)],
                ..valid_aggregate()
            },
            "aggregations[0].function",
        ),
        (
            "no aggregations",
            pb::AggregateRequest {
                aggregations: vec![],
                ..valid_aggregate()
            },
            "aggregations is empty",
        ),
        (
            "percentile above 100",
            pb::AggregateRequest {
                aggregations: vec![percentile(100.5)],
                ..valid_aggregate()
            },
            "percentile is 100.5",
        ),
        (
            "negative percentile",
            pb::AggregateRequest {
                aggregations: vec![spec(pb::Aggregation::Mean), percentile(-1.0)],
                ..valid_aggregate()
            },
            "aggregations[1].percentile",
        ),
        (
            "NaN percentile",
            pb::AggregateRequest {
                aggregations: vec![percentile(f64::NAN)],
                ..valid_aggregate()
            },
            "percentile is NaN",
        ),
        (
            "unknown time zone",
            pb::AggregateRequest {
                time_zone: "Mars/Olympus".into(),
                ..valid_aggregate()
            },
            "Mars/Olympus",
        ),
        (
            "empty range",
            pb::AggregateRequest {
                range: range(10, 10),
                ..valid_aggregate()
            },
            "range is empty",
        ),
        (
            "zero step",
            pb::AggregateRequest {
                step: Some(prost_types::Duration {
                    seconds: 0,
                    nanos: 0,
                }),
                ..valid_aggregate()
            },
            "step is zero",
        ),
        (
            "negative step",
            pb::AggregateRequest {
                step: Some(prost_types::Duration {
                    seconds: -5,
                    nanos: 0,
                }),
                ..valid_aggregate()
            },
            "step is -5s",
        ),
        (
            "bad filter field",
            pb::AggregateRequest {
                filters: vec![pb::Filter {
                    field: "host".into(),
                    op: pb::Operator::Eq as i32,
                    values: vec![],
                }],
                ..valid_aggregate()
            },
            "filters[0]",
        ),
        (
            "unspecified operator",
            pb::AggregateRequest {
                filters: vec![tag_filter("host", pb::Operator::Unspecified, &["a"])],
                ..valid_aggregate()
            },
            "filters[0].op",
        ),
        (
            "invalid regex",
            pb::AggregateRequest {
                filters: vec![tag_filter("host", pb::Operator::Regex, &["("])],
                ..valid_aggregate()
            },
            "invalid regex",
        ),
        (
            "unknown fill",
            pb::AggregateRequest {
                fill: 42,
                ..valid_aggregate()
            },
            "fill",
        ),
        (
            "bad metric",
            pb::AggregateRequest {
                metric: "".into(),
                ..valid_aggregate()
            },
            "metric is empty",
        ),
    ];

    for (name, request, needle) in cases {
        let status = aggregate_status(&server, request).await;
        assert_eq!(status.code(), Code::InvalidArgument, "{name}: {status:?}");
        assert!(
            status.message().contains(needle),
            "{name}: {:?} lacks {needle:?}",
            status.message()
        );
    }
}

#[tokio::test]
async fn too_many_buckets_is_resource_exhausted() {
    let server = TestServer::start().await;
    write(
        &server,
        vec![
            double_point("m", 0, 1.0, &[]),
            double_point("m", 10 * DAY_NS, 1.0, &[]),
        ],
    )
    .await;
    let status = aggregate_status(
        &server,
        pb::AggregateRequest {
            granularity: pb::Granularity::Second as i32,
            range: range(0, 365 * DAY_NS),
            fill: pb::Fill::Null as i32,
            ..valid_aggregate()
        },
    )
    .await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("1000000"), "{}", status.message());
}

#[tokio::test]
async fn invalid_query_points_requests_rejected() {
    let server = TestServer::start().await;
    let mut query = server.query().await;

    let status = query
        .query_points(pb::QueryPointsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("metrics is empty"),
        "{}",
        status.message()
    );

    let status = query
        .query_points(pb::QueryPointsRequest {
            metrics: vec!["m".into()],
            limit: 2_000_000,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("2000000"), "{}", status.message());
    assert!(status.message().contains("1000000"), "{}", status.message());

    let status = query
        .query_points(pb::QueryPointsRequest {
            metrics: vec!["m".into()],
            range: range(5, 1),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn invalid_subscriptions_rejected() {
    let server = TestServer::start().await;
    let valid = pb::SubscribeWindowsRequest {
        metric: "m".into(),
        window: duration(Duration::from_secs(10)),
        aggregations: vec![spec(pb::Aggregation::Count)],
        ..Default::default()
    };
    let cases: Vec<(&str, pb::SubscribeWindowsRequest, &str)> = vec![
        (
            "missing window",
            pb::SubscribeWindowsRequest {
                window: None,
                ..valid.clone()
            },
            "window is not set",
        ),
        (
            "slide longer than window",
            pb::SubscribeWindowsRequest {
                slide: duration(Duration::from_secs(20)),
                ..valid.clone()
            },
            "slide",
        ),
        (
            "too many overlapping windows",
            pb::SubscribeWindowsRequest {
                slide: duration(Duration::from_millis(1)),
                ..valid.clone()
            },
            "10000",
        ),
        (
            "unknown emit mode",
            pb::SubscribeWindowsRequest {
                emit: 7,
                ..valid.clone()
            },
            "emit",
        ),
        (
            "tiny update interval",
            pb::SubscribeWindowsRequest {
                emit: pb::EmitMode::OnUpdate as i32,
                update_interval: duration(Duration::from_millis(1)),
                ..valid.clone()
            },
            "update_interval",
        ),
        (
            "backfill too large",
            pb::SubscribeWindowsRequest {
                backfill_windows: 1_000_000,
                ..valid.clone()
            },
            "backfill_windows is 1000000",
        ),
        (
            "no aggregations",
            pb::SubscribeWindowsRequest {
                aggregations: vec![],
                ..valid.clone()
            },
            "aggregations is empty",
        ),
    ];
    for (name, request, needle) in cases {
        let status = server
            .live()
            .await
            .subscribe_windows(request)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{name}: {status:?}");
        assert!(
            status.message().contains(needle),
            "{name}: {:?} lacks {needle:?}",
            status.message()
        );
    }
}

#[tokio::test]
async fn invalid_admin_requests_rejected() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;

    let status = admin
        .create_metric(pb::CreateMetricRequest {
            name: "m".into(),
            data_type: 0,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("data_type"),
        "{}",
        status.message()
    );

    let status = admin
        .set_retention_policy(pb::SetRetentionPolicyRequest {
            policy: Some(pb::RetentionPolicy {
                name: "short".into(),
                duration: None,
            }),
            metrics: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("policy.duration"),
        "{}",
        status.message()
    );

    let status = admin
        .get_metric(pb::GetMetricRequest {
            name: "absent".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn fill_bucket_limit_covers_all_groups() {
    let config = tidemark::server::ServerConfig {
        limits: tidemark::model::limits::Limits {
            max_buckets: 1000,
            ..Default::default()
        },
        ..Default::default()
    };
    let server = TestServer::start_with(config).await;
    // Five groups; 300 one-second buckets each fit alone but not together.
    let points = (0..5)
        .map(|g| double_point("grp", g, 1.0, &[("g", &g.to_string())]))
        .collect();
    write(&server, points).await;
    let status = aggregate_status(
        &server,
        pb::AggregateRequest {
            metric: "grp".into(),
            granularity: pb::Granularity::Second as i32,
            range: range(0, 300 * SECOND_NS),
            fill: pb::Fill::Null as i32,
            group_by: vec!["g".into()],
            ..valid_aggregate()
        },
    )
    .await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("1500 buckets"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn oversized_response_is_resource_exhausted() {
    let server = TestServer::start().await;
    let big = "s".repeat(60_000);
    for batch in 0..3 {
        let points = (0..100)
            .map(|i| {
                point(
                    "big_text",
                    batch * 100 + i,
                    pb::point::Value::StringValue(big.clone()),
                    &[],
                )
            })
            .collect();
        assert_eq!(write(&server, points).await.accepted, 100);
    }
    let status = server
        .query()
        .await
        .query_points(pb::QueryPointsRequest {
            metrics: vec!["big_text".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("16777216"),
        "{}",
        status.message()
    );
    assert!(status.message().contains("offset"), "{}", status.message());
}

#[tokio::test]
async fn invalid_protobuf_is_invalid_argument() {
    let server = TestServer::start().await;
    let (response, mut body) = raw_grpc_call(&server, "/tidemark.v1.QueryService/Aggregate").await;
    // A gRPC frame whose payload is a truncated varint.
    let frame = vec![0u8, 0, 0, 0, 2, 0x08, 0xff];
    body.send_data(frame.into(), true).unwrap();

    let response = response.await.unwrap();
    let status = response
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(status.as_deref(), Some("3"), "{:?}", response.headers());
}

#[tokio::test]
async fn value_filter_must_suit_metric_kind() {
    let server = TestServer::start().await;
    write(&server, vec![double_point("m", 1, 1.0, &[])]).await;
    let string_operand = pb::Filter {
        field: "value".into(),
        op: pb::Operator::Gt as i32,
        values: vec![pb::FilterValue {
            value: Some(pb::filter_value::Value::StringValue("abc".into())),
        }],
    };
    let status = aggregate_status(
        &server,
        pb::AggregateRequest {
            filters: vec![string_operand],
            ..valid_aggregate()
        },
    )
    .await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("string \"abc\""),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("double values"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn time_zone_checked_even_with_step() {
    let server = TestServer::start().await;
    let status = aggregate_status(
        &server,
        pb::AggregateRequest {
            step: duration(Duration::from_secs(60)),
            time_zone: "Nope/Nope".into(),
            ..valid_aggregate()
        },
    )
    .await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("Nope/Nope"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn huge_inputs_are_not_echoed_in_full() {
    let server = TestServer::start().await;
    let huge = "(".repeat(100_000);
    let status = aggregate_status(
        &server,
        pb::AggregateRequest {
            filters: vec![tag_filter("host", pb::Operator::Regex, &[&huge])],
            ..valid_aggregate()
        },
    )
    .await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().len() < 5000,
        "{} bytes",
        status.message().len()
    );
}

#[tokio::test]
async fn metadata_and_policy_names_are_checked() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;

    let status = admin
        .set_retention_policy(pb::SetRetentionPolicyRequest {
            policy: Some(pb::RetentionPolicy {
                name: "evil\nname".into(),
                duration: duration(Duration::from_secs(60)),
            }),
            metrics: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("policy.name"),
        "{}",
        status.message()
    );

    let status = admin
        .create_metric(pb::CreateMetricRequest {
            name: "m".into(),
            data_type: pb::MetricDataType::Float as i32,
            description: "clear\u{1b}[2J".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("description"),
        "{}",
        status.message()
    );

    let status = admin
        .create_metric(pb::CreateMetricRequest {
            name: "m".into(),
            data_type: pb::MetricDataType::Float as i32,
            unit: "u".repeat(65),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("65 bytes"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn huge_rejected_series_lists_hundred_counts_all() {
    let server = TestServer::start().await;
    write(&server, vec![double_point("kind", 1, 1.0, &[])]).await;

    let wrong_kind = pb::SeriesPoints {
        metric: "kind".into(),
        times_unix_nano: (0..200_000).collect(),
        bool_values: vec![true; 200_000],
        ..Default::default()
    };
    let no_values = pb::SeriesPoints {
        metric: "kind".into(),
        times_unix_nano: (0..200_000).collect(),
        ..Default::default()
    };
    let response = server
        .ingest()
        .await
        .write_points(pb::WritePointsRequest {
            points: vec![],
            series: vec![wrong_kind, no_values],
        })
        .await
        .expect("write_points failed")
        .into_inner();

    assert_eq!(response.accepted, 0);
    assert_eq!(response.rejected, 400_000);
    assert_eq!(response.errors.len(), 100);
    assert_eq!(response.errors[0].index, 0);
    assert!(
        response.errors[0].reason.contains("does not fit"),
        "{}",
        response.errors[0].reason
    );
}
