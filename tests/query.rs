//! Queries and aggregations over real gRPC, checked against values
//! computed by hand.

mod common;

use common::*;
use tidemark::proto::v1 as pb;

/// 2024-01-01T00:00:00Z, a Monday.
const JAN_1_2024_NS: i64 = 1_704_067_200 * SECOND_NS;

async fn aggregate(server: &TestServer, request: pb::AggregateRequest) -> pb::AggregateResponse {
    server
        .query()
        .await
        .aggregate(request)
        .await
        .expect("aggregate failed")
        .into_inner()
}

fn request(
    metric: &str,
    granularity: pb::Granularity,
    aggregations: Vec<pb::AggregationSpec>,
) -> pb::AggregateRequest {
    pb::AggregateRequest {
        metric: metric.into(),
        granularity: granularity as i32,
        aggregations,
        ..Default::default()
    }
}

/// (start, end, count, values) of each bucket of the only series.
fn buckets(response: &pb::AggregateResponse) -> Vec<(i64, i64, u64, Vec<Option<f64>>)> {
    assert_eq!(
        response.series.len(),
        1,
        "expected one series: {response:?}"
    );
    response.series[0]
        .buckets
        .iter()
        .map(|b| {
            (
                b.start_unix_nano,
                b.end_unix_nano,
                b.count,
                b.values.iter().map(|v| v.value).collect(),
            )
        })
        .collect()
}

fn approx(actual: Option<f64>, expected: f64) {
    let actual = actual.expect("value missing");
    assert!(
        (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "{actual} != {expected}"
    );
}

#[tokio::test]
async fn minute_buckets_with_basic_aggregations() {
    let server = TestServer::start().await;
    let t0 = JAN_1_2024_NS;
    write(
        &server,
        vec![
            double_point("m", t0, 1.0, &[]),
            double_point("m", t0 + 30 * SECOND_NS, 3.0, &[]),
            double_point("m", t0 + 60 * SECOND_NS, 5.0, &[]),
            double_point("m", t0 + 150 * SECOND_NS, 7.0, &[]),
        ],
    )
    .await;

    let response = aggregate(
        &server,
        pb::AggregateRequest {
            range: range(t0, t0 + 4 * MINUTE_NS),
            fill: pb::Fill::Null as i32,
            ..request(
                "m",
                pb::Granularity::Minute,
                vec![
                    spec(pb::Aggregation::Sum),
                    spec(pb::Aggregation::Mean),
                    spec(pb::Aggregation::Min),
                    spec(pb::Aggregation::Max),
                    spec(pb::Aggregation::Count),
                    spec(pb::Aggregation::Rate),
                ],
            )
        },
    )
    .await;

    assert_eq!(response.points_scanned, 4);
    assert_eq!(
        buckets(&response),
        vec![
            (
                t0,
                t0 + MINUTE_NS,
                2,
                vec![
                    Some(4.0),
                    Some(2.0),
                    Some(1.0),
                    Some(3.0),
                    Some(2.0),
                    Some(2.0 / 60.0)
                ]
            ),
            (
                t0 + MINUTE_NS,
                t0 + 2 * MINUTE_NS,
                1,
                vec![
                    Some(5.0),
                    Some(5.0),
                    Some(5.0),
                    Some(5.0),
                    Some(1.0),
                    Some(1.0 / 60.0)
                ]
            ),
            (
                t0 + 2 * MINUTE_NS,
                t0 + 3 * MINUTE_NS,
                1,
                vec![
                    Some(7.0),
                    Some(7.0),
                    Some(7.0),
                    Some(7.0),
                    Some(1.0),
                    Some(1.0 / 60.0)
                ]
            ),
            (
                t0 + 3 * MINUTE_NS,
                t0 + 4 * MINUTE_NS,
                0,
                vec![None, None, None, None, None, None]
            ),
        ]
    );
}

#[tokio::test]
async fn second_hour_day_week_month_boundaries() {
    let server = TestServer::start().await;
    let t0 = JAN_1_2024_NS;
    // 2024-01-01 (Mon) 00:00:00.5, 2024-01-03 13:10, 2024-02-15 08:00.
    let times = [
        t0 + SECOND_NS / 2,
        t0 + 2 * DAY_NS + 13 * HOUR_NS + 10 * MINUTE_NS,
        t0 + 45 * DAY_NS + 8 * HOUR_NS,
    ];
    write(
        &server,
        times
            .iter()
            .map(|&t| double_point("g", t, 1.0, &[]))
            .collect(),
    )
    .await;
    let count = vec![spec(pb::Aggregation::Count)];

    let cases: Vec<(pb::Granularity, Vec<(i64, i64)>)> = vec![
        (
            pb::Granularity::Second,
            vec![
                (t0, t0 + SECOND_NS),
                (times[1], times[1] + SECOND_NS),
                (times[2], times[2] + SECOND_NS),
            ],
        ),
        (
            pb::Granularity::Hour,
            vec![
                (t0, t0 + HOUR_NS),
                (
                    t0 + 2 * DAY_NS + 13 * HOUR_NS,
                    t0 + 2 * DAY_NS + 14 * HOUR_NS,
                ),
                (times[2], times[2] + HOUR_NS),
            ],
        ),
        (
            pb::Granularity::Day,
            vec![
                (t0, t0 + DAY_NS),
                (t0 + 2 * DAY_NS, t0 + 3 * DAY_NS),
                (t0 + 45 * DAY_NS, t0 + 46 * DAY_NS),
            ],
        ),
        (
            // 2024-02-15 is a Thursday; its week starts Monday 2024-02-12.
            pb::Granularity::Week,
            vec![(t0, t0 + 7 * DAY_NS), (t0 + 42 * DAY_NS, t0 + 49 * DAY_NS)],
        ),
        (
            // January has 31 days, February 2024 has 29.
            pb::Granularity::Month,
            vec![(t0, t0 + 31 * DAY_NS), (t0 + 31 * DAY_NS, t0 + 60 * DAY_NS)],
        ),
    ];
    for (granularity, expected) in cases {
        let response = aggregate(&server, request("g", granularity, count.clone())).await;
        let got: Vec<(i64, i64)> = buckets(&response).iter().map(|b| (b.0, b.1)).collect();
        assert_eq!(got, expected, "{granularity:?}");
        let total: u64 = buckets(&response).iter().map(|b| b.2).sum();
        assert_eq!(total, 3, "{granularity:?}");
    }
}

#[tokio::test]
async fn day_buckets_follow_dst_in_time_zone() {
    let server = TestServer::start().await;
    // 2024-03-10 12:00 and 2024-11-03 12:00 in New York (both midday, UTC-4/UTC-5 edges).
    let march_10_midday_utc = 1_710_086_400 * SECOND_NS; // 2024-03-10T16:00:00Z
    let november_3_midday_utc = 1_730_653_200 * SECOND_NS; // 2024-11-03T17:00:00Z
    write(
        &server,
        vec![
            double_point("dst", march_10_midday_utc, 1.0, &[]),
            double_point("dst", november_3_midday_utc, 1.0, &[]),
        ],
    )
    .await;

    let response = aggregate(
        &server,
        pb::AggregateRequest {
            time_zone: "America/New_York".into(),
            ..request(
                "dst",
                pb::Granularity::Day,
                vec![spec(pb::Aggregation::Count)],
            )
        },
    )
    .await;
    let got: Vec<(i64, i64)> = buckets(&response)
        .iter()
        .map(|b| (b.0, b.1 - b.0))
        .collect();
    assert_eq!(
        got,
        vec![
            // 2024-03-10T05:00:00Z (midnight EST), 23 hours long.
            (1_710_046_800 * SECOND_NS, 23 * HOUR_NS),
            // 2024-11-03T04:00:00Z (midnight EDT), 25 hours long.
            (1_730_606_400 * SECOND_NS, 25 * HOUR_NS),
        ]
    );
}

#[tokio::test]
async fn hour_buckets_align_to_half_hour_zone() {
    let server = TestServer::start().await;
    let t = JAN_1_2024_NS + 10 * MINUTE_NS;
    write(&server, vec![double_point("ist", t, 1.0, &[])]).await;
    let response = aggregate(
        &server,
        pb::AggregateRequest {
            time_zone: "Asia/Kolkata".into(),
            ..request(
                "ist",
                pb::Granularity::Hour,
                vec![spec(pb::Aggregation::Count)],
            )
        },
    )
    .await;
    // 00:10 UTC is 05:40 IST; the IST hour starts at 05:00 IST = 23:30 UTC.
    assert_eq!(buckets(&response)[0].0, JAN_1_2024_NS - 30 * MINUTE_NS);
}

#[tokio::test]
async fn step_buckets_before_1970_use_floor() {
    let server = TestServer::start().await;
    write(
        &server,
        vec![
            double_point("old", -1, 1.0, &[]),
            double_point("old", -HOUR_NS, 2.0, &[]),
            double_point("old", 0, 3.0, &[]),
        ],
    )
    .await;
    let response = aggregate(
        &server,
        pb::AggregateRequest {
            step: duration(std::time::Duration::from_secs(3600)),
            ..request(
                "old",
                pb::Granularity::Unspecified,
                vec![spec(pb::Aggregation::Sum)],
            )
        },
    )
    .await;
    assert_eq!(
        buckets(&response),
        vec![
            (-HOUR_NS, 0, 2, vec![Some(3.0)]),
            (0, HOUR_NS, 1, vec![Some(3.0)])
        ]
    );
}

#[tokio::test]
async fn percentiles_and_spread_statistics() {
    let server = TestServer::start().await;
    let values = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
    write(
        &server,
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| double_point("p", JAN_1_2024_NS + i as i64, v, &[]))
            .collect(),
    )
    .await;

    let response = aggregate(
        &server,
        request(
            "p",
            pb::Granularity::Day,
            vec![
                spec(pb::Aggregation::Median),
                percentile(90.0),
                percentile(0.0),
                percentile(100.0),
                spec(pb::Aggregation::StdDev),
                spec(pb::Aggregation::Variance),
            ],
        ),
    )
    .await;
    let values_out = &buckets(&response)[0].3;
    // Sorted: 2 4 4 4 5 5 7 9. Median rank 3.5 -> 4.5; p90 rank 6.3 -> 7 + 0.3*2 = 7.6.
    approx(values_out[0], 4.5);
    approx(values_out[1], 7.6);
    approx(values_out[2], 2.0);
    approx(values_out[3], 9.0);
    // Mean 5, squared deviations sum 32, sample variance 32/7.
    approx(values_out[5], 32.0 / 7.0);
    approx(values_out[4], (32.0f64 / 7.0).sqrt());
}

#[tokio::test]
async fn counter_increase_trend_first_last() {
    let server = TestServer::start().await;
    let t0 = JAN_1_2024_NS;
    // A counter that resets after 6: increases 2 + 3 + 2 + 3 = 10.
    let counter = [1.0, 3.0, 6.0, 2.0, 5.0];
    let mut points: Vec<pb::Point> = counter
        .iter()
        .enumerate()
        .map(|(i, &v)| double_point("ctr", t0 + i as i64 * SECOND_NS, v, &[]))
        .collect();
    // Written out of order: FIRST and LAST go by timestamp.
    points.reverse();
    write(&server, points).await;

    let response = aggregate(
        &server,
        request(
            "ctr",
            pb::Granularity::Hour,
            vec![
                spec(pb::Aggregation::Increase),
                spec(pb::Aggregation::First),
                spec(pb::Aggregation::Last),
            ],
        ),
    )
    .await;
    assert_eq!(
        buckets(&response)[0].3,
        vec![Some(10.0), Some(1.0), Some(5.0)]
    );

    // v = 2 * seconds + 1: the trend is 2 per second.
    write(
        &server,
        (0..10)
            .map(|i| double_point("line", t0 + i * SECOND_NS, 2.0 * i as f64 + 1.0, &[]))
            .collect(),
    )
    .await;
    let response = aggregate(
        &server,
        request(
            "line",
            pb::Granularity::Hour,
            vec![spec(pb::Aggregation::Trend)],
        ),
    )
    .await;
    approx(buckets(&response)[0].3[0], 2.0);

    // One point has no trend.
    write(&server, vec![double_point("single", t0, 1.0, &[])]).await;
    let response = aggregate(
        &server,
        request(
            "single",
            pb::Granularity::Hour,
            vec![spec(pb::Aggregation::Trend)],
        ),
    )
    .await;
    assert_eq!(buckets(&response)[0].3, vec![None]);
}

#[tokio::test]
async fn bool_mean_is_success_rate_and_strings_count() {
    let server = TestServer::start().await;
    let t0 = JAN_1_2024_NS;
    write(
        &server,
        [true, true, false, true]
            .iter()
            .enumerate()
            .map(|(i, &ok)| point("ok", t0 + i as i64, pb::point::Value::BoolValue(ok), &[]))
            .collect(),
    )
    .await;
    let response = aggregate(
        &server,
        request(
            "ok",
            pb::Granularity::Day,
            vec![spec(pb::Aggregation::Mean)],
        ),
    )
    .await;
    assert_eq!(buckets(&response)[0].3, vec![Some(0.75)]);

    write(
        &server,
        vec![
            point(
                "status",
                t0 + 5,
                pb::point::Value::StringValue("done".into()),
                &[],
            ),
            point(
                "status",
                t0 + 1,
                pb::point::Value::StringValue("start".into()),
                &[],
            ),
        ],
    )
    .await;
    let response = aggregate(
        &server,
        request(
            "status",
            pb::Granularity::Day,
            vec![
                spec(pb::Aggregation::Count),
                spec(pb::Aggregation::First),
                spec(pb::Aggregation::Last),
                spec(pb::Aggregation::Mean),
            ],
        ),
    )
    .await;
    let bucket = &response.series[0].buckets[0];
    assert_eq!(bucket.count, 2);
    assert_eq!(bucket.values[0].value, Some(2.0));
    assert_eq!(bucket.values[1].text.as_deref(), Some("start"));
    assert_eq!(bucket.values[2].text.as_deref(), Some("done"));
    assert_eq!(bucket.values[3].value, None);
}

#[tokio::test]
async fn group_by_missing_tag_differs_from_empty_tag() {
    let server = TestServer::start().await;
    let t0 = JAN_1_2024_NS;
    write(
        &server,
        vec![
            double_point("grp", t0, 1.0, &[("host", "a")]),
            double_point("grp", t0 + 1, 2.0, &[("host", "")]),
            double_point("grp", t0 + 2, 4.0, &[]),
            double_point("grp", t0 + 3, 8.0, &[("host", "a"), ("dc", "x")]),
        ],
    )
    .await;
    let response = aggregate(
        &server,
        pb::AggregateRequest {
            group_by: vec!["host".into()],
            ..request(
                "grp",
                pb::Granularity::Day,
                vec![spec(pb::Aggregation::Sum)],
            )
        },
    )
    .await;
    let mut groups: Vec<(Option<String>, f64)> = response
        .series
        .iter()
        .map(|s| {
            (
                s.group.get("host").cloned(),
                s.buckets[0].values[0].value.unwrap(),
            )
        })
        .collect();
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        groups,
        vec![
            (None, 4.0),
            (Some(String::new()), 2.0),
            (Some("a".into()), 9.0)
        ]
    );
    let missing = response
        .series
        .iter()
        .find(|s| !s.group.contains_key("host"))
        .unwrap();
    assert!(missing.group.is_empty());
}

#[tokio::test]
async fn empty_result_is_empty_list() {
    let server = TestServer::start().await;
    let response = aggregate(
        &server,
        request(
            "nothing",
            pb::Granularity::Minute,
            vec![spec(pb::Aggregation::Mean)],
        ),
    )
    .await;
    assert!(response.series.is_empty());
    assert_eq!(response.points_scanned, 0);
}

#[tokio::test]
async fn fill_modes() {
    let server = TestServer::start().await;
    let t0 = JAN_1_2024_NS;
    write(
        &server,
        vec![
            double_point("f", t0, 10.0, &[]),
            double_point("f", t0 + 3 * MINUTE_NS, 40.0, &[]),
        ],
    )
    .await;
    let fill_request = |fill: pb::Fill| pb::AggregateRequest {
        range: range(t0, t0 + 5 * MINUTE_NS),
        fill: fill as i32,
        ..request(
            "f",
            pb::Granularity::Minute,
            vec![spec(pb::Aggregation::Mean)],
        )
    };
    let means = |response: &pb::AggregateResponse| -> Vec<Option<f64>> {
        buckets(response).iter().map(|b| b.3[0]).collect()
    };

    let none = aggregate(&server, fill_request(pb::Fill::None)).await;
    assert_eq!(means(&none), vec![Some(10.0), Some(40.0)]);
    let null = aggregate(&server, fill_request(pb::Fill::Null)).await;
    assert_eq!(means(&null), vec![Some(10.0), None, None, Some(40.0), None]);
    let zero = aggregate(&server, fill_request(pb::Fill::Zero)).await;
    assert_eq!(
        means(&zero),
        vec![Some(10.0), Some(0.0), Some(0.0), Some(40.0), Some(0.0)]
    );
    let previous = aggregate(&server, fill_request(pb::Fill::Previous)).await;
    assert_eq!(
        means(&previous),
        vec![Some(10.0), Some(10.0), Some(10.0), Some(40.0), Some(40.0)]
    );
    let linear = aggregate(&server, fill_request(pb::Fill::Linear)).await;
    assert_eq!(
        means(&linear),
        vec![Some(10.0), Some(20.0), Some(30.0), Some(40.0), None]
    );
    assert!(buckets(&linear)[1..3].iter().all(|b| b.2 == 0));
}

#[tokio::test]
async fn tag_and_value_filters() {
    let server = TestServer::start().await;
    let t0 = JAN_1_2024_NS;
    write(
        &server,
        vec![
            double_point("flt", t0, 1.0, &[("env", "prod")]),
            double_point("flt", t0 + 1, 2.0, &[("env", "dev")]),
            double_point("flt", t0 + 2, 3.0, &[]),
            double_point("flt", t0 + 3, 4.0, &[("env", "Production-EU")]),
        ],
    )
    .await;
    let sum_with = |filters: Vec<pb::Filter>| pb::AggregateRequest {
        filters,
        ..request(
            "flt",
            pb::Granularity::Day,
            vec![spec(pb::Aggregation::Sum)],
        )
    };
    let value_gt = pb::Filter {
        field: "value".into(),
        op: pb::Operator::Gt as i32,
        values: vec![pb::FilterValue {
            value: Some(pb::filter_value::Value::DoubleValue(1.5)),
        }],
    };
    let cases: Vec<(&str, Vec<pb::Filter>, f64)> = vec![
        (
            "NE matches missing key",
            vec![tag_filter("env", pb::Operator::Ne, &["prod"])],
            9.0,
        ),
        (
            "EQ",
            vec![tag_filter("env", pb::Operator::Eq, &["prod"])],
            1.0,
        ),
        (
            "NOT_EXISTS",
            vec![tag_filter("env", pb::Operator::NotExists, &[])],
            3.0,
        ),
        (
            "EXISTS",
            vec![tag_filter("env", pb::Operator::Exists, &[])],
            7.0,
        ),
        (
            "LIKE is case-insensitive",
            vec![tag_filter("env", pb::Operator::Like, &["PROD"])],
            5.0,
        ),
        (
            "REGEX",
            vec![tag_filter("env", pb::Operator::Regex, &["^d"])],
            2.0,
        ),
        (
            "IN",
            vec![tag_filter("env", pb::Operator::In, &["dev", "prod"])],
            3.0,
        ),
        (
            "GT compares strings",
            // "Production-EU" sorts before "p" because 'P' < 'p'.
            vec![tag_filter("env", pb::Operator::Gt, &["p"])],
            1.0,
        ),
        ("value GT", vec![value_gt.clone()], 9.0),
        (
            "tag and value",
            vec![tag_filter("env", pb::Operator::Exists, &[]), value_gt],
            6.0,
        ),
    ];
    for (name, filters, expected) in cases {
        let response = aggregate(&server, sum_with(filters)).await;
        assert_eq!(buckets(&response)[0].3, vec![Some(expected)], "{name}");
    }
}

#[tokio::test]
async fn query_points_order_limit_offset() {
    let server = TestServer::start().await;
    write(
        &server,
        vec![
            double_point("a", 30, 3.0, &[]),
            double_point("b", 10, 1.0, &[]),
            double_point("a", 20, 2.0, &[("x", "1")]),
            double_point("b", 40, 4.0, &[]),
        ],
    )
    .await;
    let mut query = server.query().await;
    let times = |r: &pb::QueryPointsResponse| -> Vec<i64> {
        r.points.iter().map(|p| p.time_unix_nano).collect()
    };

    let all = query
        .query_points(pb::QueryPointsRequest {
            metrics: vec!["a".into(), "b".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(times(&all), vec![10, 20, 30, 40]);
    assert_eq!(all.total_matched, 4);
    assert_eq!(all.points[1].tags.get("x").map(String::as_str), Some("1"));

    let page = query
        .query_points(pb::QueryPointsRequest {
            metrics: vec!["a".into(), "b".into()],
            range: range(10, 40),
            limit: 1,
            offset: 1,
            descending: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(times(&page), vec![20]);
    assert_eq!(page.total_matched, 3);
    assert_eq!(page.points_scanned, 3);
}

#[tokio::test]
async fn statistics_of_a_metric() {
    let server = TestServer::start().await;
    let values: Vec<f64> = (1..=100).map(f64::from).collect();
    write(
        &server,
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| double_point("st", i as i64, v, &[]))
            .collect(),
    )
    .await;
    let stats = server
        .query()
        .await
        .get_statistics(pb::GetStatisticsRequest {
            metric: "st".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.count, 100);
    approx(stats.sum, 5050.0);
    approx(stats.mean, 50.5);
    approx(stats.min, 1.0);
    approx(stats.max, 100.0);
    approx(stats.median, 50.5);
    // numpy: percentile(1..=100, 99) = 1 + 0.99 * 99 = 99.01.
    approx(stats.p99, 99.01);
    approx(stats.p25, 25.75);
    // Sample variance of 1..=100 is 100 * 101 / 12 = 841.666...
    approx(stats.variance, 841.666_666_666_666_6);

    let empty = server
        .query()
        .await
        .get_statistics(pb::GetStatisticsRequest {
            metric: "absent".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(empty.count, 0);
    assert_eq!(empty.mean, None);
}

#[tokio::test]
async fn group_by_accepts_tags_prefix() {
    let server = TestServer::start().await;
    write(
        &server,
        vec![
            double_point("pre", JAN_1_2024_NS, 1.0, &[("host", "a")]),
            double_point("pre", JAN_1_2024_NS, 2.0, &[("host", "b")]),
        ],
    )
    .await;
    let response = aggregate(
        &server,
        pb::AggregateRequest {
            group_by: vec!["tags.host".into()],
            ..request(
                "pre",
                pb::Granularity::Day,
                vec![spec(pb::Aggregation::Sum)],
            )
        },
    )
    .await;
    let hosts: Vec<Option<&String>> = response
        .series
        .iter()
        .map(|s| s.group.get("host"))
        .collect();
    assert_eq!(hosts, vec![Some(&"a".to_string()), Some(&"b".to_string())]);
}
