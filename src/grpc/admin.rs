//! `AdminService`: the metric catalog, retention policies and storage
//! statistics.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert::{data_type_from_proto, data_type_to_proto, duration, duration_to_proto};
use super::status::ApiError;
use crate::model::limits::{Limits, excerpt};
use crate::proto::v1 as pb;
use crate::proto::v1::admin_service_server::AdminService;
use crate::retention::apply_retention;
use crate::storage::{MetricInfo, MetricSpec, RetentionPolicy, Storage};

/// Maximum length of a retention policy name, in bytes.
const MAX_POLICY_NAME_BYTES: usize = 128;

/// Maximum length of a metric description, in bytes.
const MAX_DESCRIPTION_BYTES: usize = 1024;

/// Maximum length of a metric unit, in bytes.
const MAX_UNIT_BYTES: usize = 64;

/// Checks a policy name: 1 to 128 bytes of `[A-Za-z0-9_.:-]`, so names are
/// safe to print in logs and tables.
fn check_policy_name(field: &str, name: &str) -> Result<(), ApiError> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
    if name.is_empty() || name.len() > MAX_POLICY_NAME_BYTES || !valid_chars {
        return Err(ApiError::invalid(format!(
            "{field} {} is invalid; a policy name is 1 to {MAX_POLICY_NAME_BYTES} bytes of [A-Za-z0-9_.:-]",
            excerpt(name)
        )));
    }
    Ok(())
}

/// Checks free text such as a description: bounded and without control
/// characters, which would corrupt logs and terminals.
fn check_text(field: &str, text: &str, max_bytes: usize) -> Result<(), ApiError> {
    if text.len() > max_bytes {
        return Err(ApiError::invalid(format!(
            "{field} is {} bytes long, over the limit of {max_bytes} bytes",
            text.len()
        )));
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(ApiError::invalid(format!(
            "{field} contains the control character {:?}; use printable text",
            c
        )));
    }
    Ok(())
}

pub struct AdminHandler {
    storage: Arc<dyn Storage>,
    limits: Arc<Limits>,
}

impl AdminHandler {
    pub fn new(storage: Arc<dyn Storage>, limits: Arc<Limits>) -> Self {
        AdminHandler { storage, limits }
    }

    fn check_name(&self, field: &str, name: &str) -> Result<(), ApiError> {
        self.limits
            .check_metric_name(field, name)
            .map_err(ApiError::InvalidArgument)
    }
}

fn metric_to_proto(info: MetricInfo) -> pb::Metric {
    pb::Metric {
        name: info.name,
        data_type: data_type_to_proto(info.data_type) as i32,
        description: info.description,
        unit: info.unit,
        retention_policy: info.retention_policy,
        created_unix_nano: info.created_ns,
        last_updated_unix_nano: info.last_updated_ns,
        point_count: info.point_count,
        series_count: info.series_count,
    }
}

fn policy_to_proto(policy: RetentionPolicy) -> pb::RetentionPolicy {
    pb::RetentionPolicy {
        name: policy.name,
        duration: Some(duration_to_proto(policy.max_age)),
    }
}

#[tonic::async_trait]
impl AdminService for AdminHandler {
    async fn create_metric(
        &self,
        request: Request<pb::CreateMetricRequest>,
    ) -> Result<Response<pb::Metric>, Status> {
        let request = request.into_inner();
        self.check_name("name", &request.name)?;
        let data_type = data_type_from_proto("data_type", request.data_type)?;
        check_text("description", &request.description, MAX_DESCRIPTION_BYTES)?;
        check_text("unit", &request.unit, MAX_UNIT_BYTES)?;
        if !request.retention_policy.is_empty() {
            check_policy_name("retention_policy", &request.retention_policy)?;
        }

        let info = self.storage.create_metric(MetricSpec {
            name: request.name,
            data_type,
            description: request.description,
            unit: request.unit,
            retention_policy: request.retention_policy,
        })?;
        tracing::info!(metric = %info.name, data_type = %info.data_type, policy = %info.retention_policy, "created metric");
        Ok(Response::new(metric_to_proto(info)))
    }

    async fn get_metric(
        &self,
        request: Request<pb::GetMetricRequest>,
    ) -> Result<Response<pb::Metric>, Status> {
        let name = request.into_inner().name;
        self.check_name("name", &name)?;
        let info = self
            .storage
            .metric(&name)
            .ok_or_else(|| ApiError::NotFound(format!("metric {name:?} not found")))?;
        Ok(Response::new(metric_to_proto(info)))
    }

    async fn list_metrics(
        &self,
        request: Request<pb::ListMetricsRequest>,
    ) -> Result<Response<pb::ListMetricsResponse>, Status> {
        let prefix = request.into_inner().prefix;
        let metrics = self
            .storage
            .list_metrics()
            .into_iter()
            .filter(|m| m.name.starts_with(&prefix))
            .map(metric_to_proto)
            .collect();
        Ok(Response::new(pb::ListMetricsResponse { metrics }))
    }

    async fn delete_metric(
        &self,
        request: Request<pb::DeleteMetricRequest>,
    ) -> Result<Response<pb::DeleteMetricResponse>, Status> {
        let name = request.into_inner().name;
        self.check_name("name", &name)?;
        let storage = self.storage.clone();
        let metric = name.clone();
        let outcome = tokio::task::spawn_blocking(move || storage.delete_metric(&metric))
            .await
            .map_err(|e| {
                ApiError::Internal(format!("delete of metric {name:?} panicked: {e}"))
            })??;
        tracing::info!(metric = %name, points = outcome.points_deleted, series = outcome.series_deleted, "deleted metric");
        Ok(Response::new(pb::DeleteMetricResponse {
            points_deleted: outcome.points_deleted,
            series_deleted: outcome.series_deleted,
        }))
    }

    async fn set_retention_policy(
        &self,
        request: Request<pb::SetRetentionPolicyRequest>,
    ) -> Result<Response<pb::RetentionPolicy>, Status> {
        let request = request.into_inner();
        let policy = request
            .policy
            .ok_or_else(|| ApiError::invalid("policy is not set; give a name and a duration"))?;

        check_policy_name("policy.name", &policy.name)?;
        let max_age = duration("policy.duration", policy.duration.as_ref())?.ok_or_else(|| {
            ApiError::invalid("policy.duration is not set; give the maximum age of points")
        })?;
        if max_age.is_zero() {
            return Err(ApiError::invalid("policy.duration is zero; it must be positive").into());
        }
        for (i, metric) in request.metrics.iter().enumerate() {
            self.check_name(&format!("metrics[{i}]"), metric)?;
            if self.storage.metric(metric).is_none() {
                return Err(
                    ApiError::NotFound(format!("metrics[{i}] {metric:?} not found")).into(),
                );
            }
        }

        let policy = RetentionPolicy {
            name: policy.name,
            max_age,
        };
        self.storage.set_retention_policy(policy.clone())?;
        for metric in &request.metrics {
            self.storage.set_metric_policy(metric, &policy.name)?;
        }
        tracing::info!(policy = %policy.name, max_age_secs = max_age.as_secs(), metrics = request.metrics.len(), "set retention policy");
        Ok(Response::new(policy_to_proto(policy)))
    }

    async fn list_retention_policies(
        &self,
        _request: Request<pb::ListRetentionPoliciesRequest>,
    ) -> Result<Response<pb::ListRetentionPoliciesResponse>, Status> {
        let policies = self
            .storage
            .retention_policies()
            .into_iter()
            .map(policy_to_proto)
            .collect();
        Ok(Response::new(pb::ListRetentionPoliciesResponse {
            policies,
        }))
    }

    async fn apply_retention(
        &self,
        _request: Request<pb::ApplyRetentionRequest>,
    ) -> Result<Response<pb::ApplyRetentionResponse>, Status> {
        let storage = self.storage.clone();
        let outcome = tokio::task::spawn_blocking(move || apply_retention(storage.as_ref()))
            .await
            .map_err(|e| ApiError::Internal(format!("retention pass panicked: {e}")))??;
        Ok(Response::new(pb::ApplyRetentionResponse {
            points_deleted: outcome.deleted.points_deleted,
            series_deleted: outcome.deleted.series_deleted,
            metrics_checked: outcome.metrics_checked,
        }))
    }

    async fn get_storage_stats(
        &self,
        _request: Request<pb::GetStorageStatsRequest>,
    ) -> Result<Response<pb::StorageStats>, Status> {
        let storage = self.storage.clone();
        let stats = tokio::task::spawn_blocking(move || storage.stats())
            .await
            .map_err(|e| ApiError::Internal(format!("storage statistics panicked: {e}")))?;
        let disk_bytes = stats.wal_bytes + stats.block_bytes;
        let bytes_per_point = if stats.points == 0 {
            0.0
        } else {
            disk_bytes as f64 / stats.points as f64
        };
        Ok(Response::new(pb::StorageStats {
            points: stats.points,
            series: stats.series,
            metrics: stats.metrics,
            wal_bytes: stats.wal_bytes,
            block_bytes: stats.block_bytes,
            bytes_per_point,
            memory_bytes: stats.memory_bytes,
            engine: stats.engine.to_owned(),
        }))
    }
}
