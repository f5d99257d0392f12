//! The admin API, health checks and reflection over real gRPC.

mod common;

use std::time::Duration;

use common::*;
use tidemark::clock::now_ns;
use tidemark::proto::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn metric_lifecycle() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;

    let created = admin
        .create_metric(pb::CreateMetricRequest {
            name: "step_duration".into(),
            data_type: pb::MetricDataType::Duration as i32,
            description: "time per recipe step".into(),
            unit: "s".into(),
            retention_policy: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.data_type, pb::MetricDataType::Duration as i32);
    assert_eq!(created.retention_policy, "medium_frequency");

    let again = admin
        .create_metric(pb::CreateMetricRequest {
            name: "step_duration".into(),
            data_type: pb::MetricDataType::Float as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);

    // Ints fit a DURATION metric; strings do not.
    let response = write(
        &server,
        vec![
            point(
                "step_duration",
                1,
                pb::point::Value::IntValue(3),
                &[("step", "a")],
            ),
            double_point("step_duration", 2, 1.5, &[("step", "b")]),
            point(
                "step_duration",
                3,
                pb::point::Value::StringValue("x".into()),
                &[],
            ),
        ],
    )
    .await;
    assert_eq!(response.accepted, 2);
    assert_eq!(response.rejected, 1);

    // Inferred on first write.
    write(
        &server,
        vec![point(
            "recipe_errors",
            1,
            pb::point::Value::IntValue(1),
            &[],
        )],
    )
    .await;

    let metric = admin
        .get_metric(pb::GetMetricRequest {
            name: "step_duration".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metric.point_count, 2);
    assert_eq!(metric.series_count, 2);
    assert_eq!(metric.unit, "s");

    let listed = admin
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let names: Vec<(String, i32, String)> = listed
        .metrics
        .iter()
        .map(|m| (m.name.clone(), m.data_type, m.retention_policy.clone()))
        .collect();
    assert_eq!(
        names,
        vec![
            (
                "recipe_errors".into(),
                pb::MetricDataType::Integer as i32,
                "archive".into()
            ),
            (
                "step_duration".into(),
                pb::MetricDataType::Duration as i32,
                "medium_frequency".into()
            ),
        ]
    );
    let prefixed = admin
        .list_metrics(pb::ListMetricsRequest {
            prefix: "recipe".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(prefixed.metrics.len(), 1);

    let deleted = admin
        .delete_metric(pb::DeleteMetricRequest {
            name: "step_duration".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.points_deleted, 2);
    assert_eq!(deleted.series_deleted, 2);
    let gone = admin
        .get_metric(pb::GetMetricRequest {
            name: "step_duration".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
}

#[tokio::test]
async fn retention_policies_apply_by_server_clock() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;

    let policies = admin
        .list_retention_policies(pb::ListRetentionPoliciesRequest {})
        .await
        .unwrap()
        .into_inner();
    let defaults: Vec<(String, i64)> = policies
        .policies
        .iter()
        .map(|p| (p.name.clone(), p.duration.unwrap().seconds))
        .collect();
    assert_eq!(
        defaults,
        vec![
            ("archive".into(), 365 * 86_400),
            ("high_frequency".into(), 86_400),
            ("low_frequency".into(), 30 * 86_400),
            ("medium_frequency".into(), 7 * 86_400),
        ]
    );

    let now = now_ns();
    write(
        &server,
        vec![
            double_point("short_lived", now - 2 * HOUR_NS, 1.0, &[]),
            double_point("short_lived", now - 10 * MINUTE_NS, 2.0, &[]),
            double_point("kept", now - 2 * HOUR_NS, 1.0, &[]),
        ],
    )
    .await;

    let policy = admin
        .set_retention_policy(pb::SetRetentionPolicyRequest {
            policy: Some(pb::RetentionPolicy {
                name: "one_hour".into(),
                duration: duration(Duration::from_secs(3600)),
            }),
            metrics: vec!["short_lived".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(policy.name, "one_hour");

    let outcome = admin
        .apply_retention(pb::ApplyRetentionRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outcome.points_deleted, 1);
    assert_eq!(outcome.metrics_checked, 2);

    let short = admin
        .get_metric(pb::GetMetricRequest {
            name: "short_lived".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(short.point_count, 1);
    assert_eq!(short.retention_policy, "one_hour");
    let kept = admin
        .get_metric(pb::GetMetricRequest {
            name: "kept".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept.point_count, 1);

    let missing = admin
        .set_retention_policy(pb::SetRetentionPolicyRequest {
            policy: Some(pb::RetentionPolicy {
                name: "x".into(),
                duration: duration(Duration::from_secs(60)),
            }),
            metrics: vec!["absent".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn storage_stats_count_points_and_series() {
    let server = TestServer::start().await;
    write(
        &server,
        vec![
            double_point("s1", 1, 1.0, &[("a", "1")]),
            double_point("s1", 2, 1.0, &[("a", "2")]),
            double_point("s2", 1, 1.0, &[]),
        ],
    )
    .await;
    let stats = server
        .admin()
        .await
        .get_storage_stats(pb::GetStorageStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.points, 3);
    assert_eq!(stats.series, 3);
    assert_eq!(stats.metrics, 2);
    assert!(stats.memory_bytes > 0);
    assert!(!stats.engine.is_empty());
}

#[tokio::test]
async fn health_reports_serving() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

    let server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel().await);
    for service in [
        "",
        "tidemark.v1.IngestService",
        "tidemark.v1.QueryService",
        "tidemark.v1.LiveService",
        "tidemark.v1.AdminService",
    ] {
        let response = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            response.status,
            ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
}

#[tokio::test]
async fn reflection_lists_services_in_v1_and_v1alpha() {
    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1::ServerReflectionRequest as V1Message;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient as V1Client;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest as V1Request;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse as V1Response;
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest as AlphaMessage;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as AlphaResponse;

    let server = TestServer::start().await;

    let mut v1 = V1Client::new(server.channel().await);
    let request = V1Message {
        host: String::new(),
        message_request: Some(V1Request::ListServices(String::new())),
    };
    let mut responses = v1
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    let Some(V1Response::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected v1 reflection response {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "tidemark.v1.IngestService",
        "tidemark.v1.QueryService",
        "tidemark.v1.LiveService",
        "tidemark.v1.AdminService",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }

    let mut alpha = AlphaClient::new(server.channel().await);
    let request = AlphaMessage {
        host: String::new(),
        message_request: Some(AlphaRequest::ListServices(String::new())),
    };
    let mut responses = alpha
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    assert!(matches!(
        response.message_response,
        Some(AlphaResponse::ListServicesResponse(_))
    ));
}
