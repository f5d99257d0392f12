//! The `metrics` command group: metric metadata, retention policies and
//! storage statistics.

use std::time::Duration;

use crate::proto::v1::{
    ApplyRetentionRequest, ApplyRetentionResponse, CreateMetricRequest, DeleteMetricRequest,
    DeleteMetricResponse, GetMetricRequest, GetStorageStatsRequest, ListMetricsRequest,
    ListRetentionPoliciesRequest, Metric, MetricDataType, RetentionPolicy,
    SetRetentionPolicyRequest, StorageStats,
};

use super::ClientArgs;
use super::client::{Connection, connect};
use super::output::{Cell, Table, optional_time_cell, print_table};
use super::parse::{format_duration, from_proto_duration, parse_duration, to_proto_duration};

#[derive(clap::Args, Debug, Clone)]
pub struct MetricsArgs {
    #[command(subcommand)]
    pub command: MetricsCommand,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum MetricsCommand {
    /// List metrics with their type, unit, retention and size.
    List {
        /// Only metrics whose name starts with this prefix.
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Show one metric.
    Get {
        /// Metric name.
        name: String,
    },
    /// Delete a metric with all its series and points.
    Delete {
        /// Metric name.
        name: String,
    },
    /// Declare a metric and its type before points are written.
    Create(CreateArgs),
    /// List, set or apply retention policies.
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// Show storage engine statistics.
    Storage,
}

/// Declared type of a metric.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricTypeArg {
    Integer,
    Float,
    Boolean,
    String,
    /// A duration, stored as a float. Give its unit with --unit.
    Duration,
    /// A percentage, stored as a float.
    Percentage,
    /// A rate, stored as a float. Give its unit with --unit.
    Rate,
}

impl MetricTypeArg {
    fn to_proto(self) -> MetricDataType {
        match self {
            MetricTypeArg::Integer => MetricDataType::Integer,
            MetricTypeArg::Float => MetricDataType::Float,
            MetricTypeArg::Boolean => MetricDataType::Boolean,
            MetricTypeArg::String => MetricDataType::String,
            MetricTypeArg::Duration => MetricDataType::Duration,
            MetricTypeArg::Percentage => MetricDataType::Percentage,
            MetricTypeArg::Rate => MetricDataType::Rate,
        }
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct CreateArgs {
    /// Metric name, matching [A-Za-z_:][A-Za-z0-9_.:-]*.
    pub name: String,

    /// Type of the metric's values.
    #[arg(long = "type", value_enum)]
    pub data_type: MetricTypeArg,

    /// Free-text description.
    #[arg(long, default_value = "")]
    pub description: String,

    /// Unit of the values, such as ms or bytes.
    #[arg(long, default_value = "")]
    pub unit: String,

    /// Name of the retention policy. Default: the server's default policy.
    #[arg(long, default_value = "")]
    pub retention_policy: String,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum RetentionCommand {
    /// List retention policies.
    List,
    /// Add or change a retention policy, and optionally move metrics to it.
    Set {
        /// Policy name.
        name: String,
        /// How long points are kept, such as 7d or 12h.
        #[arg(value_parser = parse_duration)]
        duration: Duration,
        /// Metric that switches to this policy; repeat for more.
        #[arg(long = "metric")]
        metrics: Vec<String>,
    },
    /// Delete expired points now instead of waiting for the hourly pass.
    Apply,
}

/// Builds the CreateMetric request.
pub fn build_create_request(args: &CreateArgs) -> CreateMetricRequest {
    CreateMetricRequest {
        name: args.name.clone(),
        data_type: args.data_type.to_proto() as i32,
        description: args.description.clone(),
        unit: args.unit.clone(),
        retention_policy: args.retention_policy.clone(),
    }
}

/// Builds the SetRetentionPolicy request.
pub fn build_retention_request(
    name: &str,
    duration: Duration,
    metrics: &[String],
) -> SetRetentionPolicyRequest {
    SetRetentionPolicyRequest {
        policy: Some(RetentionPolicy {
            name: name.to_owned(),
            duration: Some(to_proto_duration(duration)),
        }),
        metrics: metrics.to_vec(),
    }
}

fn data_type_name(data_type: i32) -> String {
    match MetricDataType::try_from(data_type) {
        Ok(MetricDataType::Unspecified) | Err(_) => String::new(),
        Ok(known) => known
            .as_str_name()
            .trim_start_matches("METRIC_DATA_TYPE_")
            .to_ascii_lowercase(),
    }
}

/// Lays out metrics, one per row.
pub fn metrics_table(metrics: &[Metric]) -> Table {
    let mut table = Table::new([
        "name",
        "type",
        "unit",
        "retention",
        "points",
        "series",
        "created",
        "updated",
        "description",
    ]);
    for metric in metrics {
        table.push(vec![
            Cell::Text(metric.name.clone()),
            Cell::Text(data_type_name(metric.data_type)),
            Cell::Text(metric.unit.clone()),
            Cell::Text(metric.retention_policy.clone()),
            Cell::UInt(metric.point_count),
            Cell::UInt(metric.series_count),
            optional_time_cell(metric.created_unix_nano),
            optional_time_cell(metric.last_updated_unix_nano),
            Cell::Text(metric.description.clone()),
        ]);
    }
    table
}

/// Lays out the result of deleting `name`.
pub fn delete_table(name: &str, response: &DeleteMetricResponse) -> Table {
    let mut table = Table::new(["metric", "points_deleted", "series_deleted"]);
    table.push(vec![
        Cell::Text(name.to_owned()),
        Cell::UInt(response.points_deleted),
        Cell::UInt(response.series_deleted),
    ]);
    table
}

/// Lays out retention policies with their durations written as `30d` or
/// `12h`. A policy without a duration prints an empty cell.
pub fn policies_table(policies: &[RetentionPolicy]) -> Table {
    let mut table = Table::new(["name", "duration"]);
    for policy in policies {
        let duration = policy.duration.as_ref().map_or(Cell::Empty, |d| {
            Cell::Text(format_duration(from_proto_duration(d)))
        });
        table.push(vec![Cell::Text(policy.name.clone()), duration]);
    }
    table
}

/// Lays out the result of a retention pass.
pub fn apply_table(response: &ApplyRetentionResponse) -> Table {
    let mut table = Table::new(["points_deleted", "series_deleted", "metrics_checked"]);
    table.push(vec![
        Cell::UInt(response.points_deleted),
        Cell::UInt(response.series_deleted),
        Cell::UInt(response.metrics_checked),
    ]);
    table
}

/// Lays out storage statistics as one row.
pub fn storage_table(stats: &StorageStats) -> Table {
    let mut table = Table::new([
        "engine",
        "points",
        "series",
        "metrics",
        "wal_bytes",
        "block_bytes",
        "bytes_per_point",
        "memory_bytes",
    ]);
    table.push(vec![
        Cell::Text(stats.engine.clone()),
        Cell::UInt(stats.points),
        Cell::UInt(stats.series),
        Cell::UInt(stats.metrics),
        Cell::UInt(stats.wal_bytes),
        Cell::UInt(stats.block_bytes),
        Cell::Float(stats.bytes_per_point),
        Cell::UInt(stats.memory_bytes),
    ]);
    table
}

pub async fn run(args: MetricsArgs, client: &ClientArgs) -> anyhow::Result<()> {
    let connection = connect(&client.addr).await?;
    let table = match args.command {
        MetricsCommand::List { prefix } => list(&connection, prefix).await?,
        MetricsCommand::Get { name } => {
            let metric = connection
                .admin()
                .get_metric(GetMetricRequest { name })
                .await
                .map_err(|status| connection.status_error("GetMetric", status))?
                .into_inner();
            metrics_table(&[metric])
        }
        MetricsCommand::Delete { name } => {
            let response = connection
                .admin()
                .delete_metric(DeleteMetricRequest { name: name.clone() })
                .await
                .map_err(|status| connection.status_error("DeleteMetric", status))?
                .into_inner();
            delete_table(&name, &response)
        }
        MetricsCommand::Create(create) => {
            let metric = connection
                .admin()
                .create_metric(build_create_request(&create))
                .await
                .map_err(|status| connection.status_error("CreateMetric", status))?
                .into_inner();
            metrics_table(&[metric])
        }
        MetricsCommand::Retention { command } => retention(&connection, command).await?,
        MetricsCommand::Storage => {
            let stats = connection
                .admin()
                .get_storage_stats(GetStorageStatsRequest {})
                .await
                .map_err(|status| connection.status_error("GetStorageStats", status))?
                .into_inner();
            storage_table(&stats)
        }
    };
    print_table(&table, client.output)
}

async fn list(connection: &Connection, prefix: String) -> anyhow::Result<Table> {
    let response = connection
        .admin()
        .list_metrics(ListMetricsRequest { prefix })
        .await
        .map_err(|status| connection.status_error("ListMetrics", status))?
        .into_inner();
    Ok(metrics_table(&response.metrics))
}

async fn retention(connection: &Connection, command: RetentionCommand) -> anyhow::Result<Table> {
    let table = match command {
        RetentionCommand::List => {
            let response = connection
                .admin()
                .list_retention_policies(ListRetentionPoliciesRequest {})
                .await
                .map_err(|status| connection.status_error("ListRetentionPolicies", status))?
                .into_inner();
            policies_table(&response.policies)
        }
        RetentionCommand::Set {
            name,
            duration,
            metrics,
        } => {
            let policy = connection
                .admin()
                .set_retention_policy(build_retention_request(&name, duration, &metrics))
                .await
                .map_err(|status| connection.status_error("SetRetentionPolicy", status))?
                .into_inner();
            policies_table(&[policy])
        }
        RetentionCommand::Apply => {
            let response = connection
                .admin()
                .apply_retention(ApplyRetentionRequest {})
                .await
                .map_err(|status| connection.status_error("ApplyRetention", status))?
                .into_inner();
            apply_table(&response)
        }
    };
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_request_fields() {
        let args = CreateArgs {
            name: "latency".into(),
            data_type: MetricTypeArg::Duration,
            description: "request latency".into(),
            unit: "s".into(),
            retention_policy: "short".into(),
        };
        let request = build_create_request(&args);
        assert_eq!(request.name, "latency");
        assert_eq!(request.data_type, MetricDataType::Duration as i32);
        assert_eq!(request.description, "request latency");
        assert_eq!(request.unit, "s");
        assert_eq!(request.retention_policy, "short");
    }

    #[test]
    fn retention_request_fields() {
        let request =
            build_retention_request("short", Duration::from_secs(7 * 86_400), &["a".into()]);
        let policy = request.policy.unwrap();
        assert_eq!(policy.name, "short");
        assert_eq!(policy.duration.unwrap().seconds, 7 * 86_400);
        assert_eq!(request.metrics, vec!["a"]);
    }

    #[test]
    fn metric_rows() {
        let metric = Metric {
            name: "cpu".into(),
            data_type: MetricDataType::Float as i32,
            unit: "%".into(),
            point_count: 10,
            created_unix_nano: 1_796_378_400_000_000_000,
            ..Metric::default()
        };
        let table = metrics_table(&[metric]);
        assert_eq!(table.rows[0][0], Cell::Text("cpu".into()));
        assert_eq!(table.rows[0][1], Cell::Text("float".into()));
        assert_eq!(table.rows[0][4], Cell::UInt(10));
        assert_eq!(table.rows[0][6], Cell::Text("2026-12-04T10:00:00Z".into()));
        assert_eq!(table.rows[0][7], Cell::Empty);
    }

    #[test]
    fn policy_rows() {
        let policies = vec![
            RetentionPolicy {
                name: "default".into(),
                duration: Some(prost_types::Duration {
                    seconds: 30 * 86_400,
                    nanos: 0,
                }),
            },
            RetentionPolicy {
                name: "none".into(),
                duration: None,
            },
        ];
        let table = policies_table(&policies);
        assert_eq!(table.rows[0][1], Cell::Text("30d".into()));
        assert_eq!(table.rows[1][1], Cell::Empty);
    }

    #[test]
    fn unknown_data_type_blank() {
        assert_eq!(
            data_type_name(MetricDataType::Percentage as i32),
            "percentage"
        );
        assert_eq!(data_type_name(0), "");
        assert_eq!(data_type_name(99), "");
    }
}
