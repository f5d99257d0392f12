//! `QueryService`: validates queries, runs them on the blocking pool and
//! converts the results.

use prost::Message;
use tonic::{Request, Response, Status};

use super::convert::{duration, filter_set, positive_duration_ns, time_range, unknown_enum};
use super::status::ApiError;
use crate::aggregate::bucket::{Bucketer, Granularity};
use crate::aggregate::fill::FillMode;
use crate::aggregate::{AggFn, AggValue};
use crate::model::Value;
use crate::model::filter::FilterSet;
use crate::model::limits::excerpt;
use crate::proto::v1 as pb;
use crate::proto::v1::query_service_server::QueryService;
use crate::query::{AggregateQuery, PointsQuery, QueryEngine, QueryError};

/// Points returned by QueryPoints when the request's limit is 0.
pub const DEFAULT_QUERY_LIMIT: usize = 10_000;

pub struct QueryHandler {
    engine: QueryEngine,
}

impl QueryHandler {
    pub fn new(engine: QueryEngine) -> Self {
        QueryHandler { engine }
    }

    fn check_metric(&self, field: &str, name: &str) -> Result<(), ApiError> {
        self.engine
            .limits()
            .check_metric_name(field, name)
            .map_err(ApiError::InvalidArgument)
    }

    /// Validates filters for a metric; value filters must suit the metric's
    /// value kind when the metric exists.
    fn filters_for(&self, metric: &str, filters: &[pb::Filter]) -> Result<FilterSet, ApiError> {
        let set = filter_set(filters)?;
        if let Some(info) = self.engine.storage().metric(metric) {
            set.check_value_kind(info.data_type.column_kind())
                .map_err(|reason| ApiError::invalid(format!("filters: {reason}")))?;
        }
        Ok(set)
    }

    /// Runs a query on the blocking pool, so a long scan does not hold a
    /// tokio worker.
    async fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        work: impl FnOnce(QueryEngine) -> Result<T, QueryError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let engine = self.engine.clone();
        match tokio::task::spawn_blocking(move || work(engine)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(QueryError::TooLarge(message))) => Err(ApiError::ResourceExhausted(message)),
            Ok(Err(QueryError::Storage(error))) => Err(error.into()),
            Ok(Err(QueryError::Internal(message))) => Err(ApiError::Internal(message)),
            Err(join) => Err(ApiError::Internal(format!("{what} failed: {join}"))),
        }
    }
}

/// Rejects a response larger than the message limit, which clients with
/// the same limit could not decode.
fn check_response_size(
    what: &str,
    message: &impl Message,
    max_bytes: usize,
    advice: &str,
) -> Result<(), ApiError> {
    let size = message.encoded_len();
    if size > max_bytes {
        return Err(ApiError::ResourceExhausted(format!(
            "{what} response would be {size} bytes, over the limit of {max_bytes} bytes (max_message_bytes); {advice}"
        )));
    }
    Ok(())
}

fn value_to_proto(value: Value) -> pb::point::Value {
    match value {
        Value::F64(v) => pb::point::Value::DoubleValue(v),
        Value::I64(v) => pb::point::Value::IntValue(v),
        Value::Bool(v) => pb::point::Value::BoolValue(v),
        Value::Str(v) => pb::point::Value::StringValue(v.to_string()),
    }
}

pub fn agg_value_to_proto(value: AggValue) -> pb::AggregateValue {
    match value {
        AggValue::None => pb::AggregateValue {
            value: None,
            text: None,
        },
        AggValue::Number(v) => pb::AggregateValue {
            value: Some(v),
            text: None,
        },
        AggValue::Text(v) => pb::AggregateValue {
            value: None,
            text: Some(v.to_string()),
        },
    }
}

/// Validates aggregation specs; shared with the live service.
pub fn agg_functions(specs: &[pb::AggregationSpec]) -> Result<Vec<AggFn>, ApiError> {
    if specs.is_empty() {
        return Err(ApiError::invalid(
            "aggregations is empty; request at least one aggregation",
        ));
    }
    let mut functions = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        use pb::Aggregation as A;
        let function = match A::try_from(spec.function) {
            Ok(A::Sum) => AggFn::Sum,
            Ok(A::Mean) => AggFn::Mean,
            Ok(A::Median) => AggFn::Median,
            Ok(A::Min) => AggFn::Min,
            Ok(A::Max) => AggFn::Max,
            Ok(A::Count) => AggFn::Count,
            Ok(A::Percentile) => {
                let p = spec.percentile;
                if !(0.0..=100.0).contains(&p) {
                    return Err(ApiError::invalid(format!(
                        "aggregations[{i}].percentile is {p}; it must be in 0..=100"
                    )));
                }
                AggFn::Percentile(p)
            }
            Ok(A::StdDev) => AggFn::StdDev,
            Ok(A::Variance) => AggFn::Variance,
            Ok(A::Rate) => AggFn::Rate,
            Ok(A::Trend) => AggFn::Trend,
            Ok(A::First) => AggFn::First,
            Ok(A::Last) => AggFn::Last,
            Ok(A::Increase) => AggFn::Increase,
            Ok(A::Unspecified) => {
                return Err(ApiError::invalid(format!(
                    "aggregations[{i}].function is AGGREGATION_UNSPECIFIED; choose an aggregation"
                )));
            }
            Err(_) => {
                return Err(unknown_enum(
                    &format!("aggregations[{i}].function"),
                    spec.function,
                ));
            }
        };
        functions.push(function);
    }
    Ok(functions)
}

/// Validates group-by tag keys; shared with the live service. A `tags.`
/// prefix, as filters spell tag fields, is accepted and removed.
pub fn group_by_keys(keys: &[String], max_key_bytes: usize) -> Result<Vec<String>, ApiError> {
    let mut validated: Vec<String> = Vec::with_capacity(keys.len());
    for (i, raw) in keys.iter().enumerate() {
        let key = raw.strip_prefix("tags.").unwrap_or(raw);
        if key.is_empty() || key.len() > max_key_bytes {
            return Err(ApiError::invalid(format!(
                "group_by[{i}] {} must be a tag key of 1 to {max_key_bytes} bytes",
                excerpt(raw)
            )));
        }
        if validated.iter().any(|k| k == key) {
            return Err(ApiError::invalid(format!(
                "group_by[{i}] {} is repeated",
                excerpt(raw)
            )));
        }
        validated.push(key.to_owned());
    }
    Ok(validated)
}

fn bucketer(request: &pb::AggregateRequest) -> Result<Bucketer, ApiError> {
    // Validated even when `step` makes it irrelevant, so a typo is not
    // silently ignored.
    let tz = Bucketer::parse_time_zone(&request.time_zone)
        .map_err(|reason| ApiError::invalid(format!("time_zone: {reason}")))?;

    if let Some(step) = duration("step", request.step.as_ref())? {
        let width_ns = positive_duration_ns("step", step)?;
        return Bucketer::fixed(width_ns).map_err(ApiError::InvalidArgument);
    }

    use pb::Granularity as G;
    let granularity = match G::try_from(request.granularity) {
        Ok(G::Second) => Granularity::Second,
        Ok(G::Minute) => Granularity::Minute,
        Ok(G::Hour) => Granularity::Hour,
        Ok(G::Day) => Granularity::Day,
        Ok(G::Week) => Granularity::Week,
        Ok(G::Month) => Granularity::Month,
        Ok(G::Unspecified) => {
            return Err(ApiError::invalid(
                "granularity is GRANULARITY_UNSPECIFIED and step is not set; set one of them",
            ));
        }
        Err(_) => return Err(unknown_enum("granularity", request.granularity)),
    };
    Ok(Bucketer::calendar(granularity, tz))
}

fn fill_mode(raw: i32) -> Result<FillMode, ApiError> {
    use pb::Fill as F;
    match F::try_from(raw) {
        Ok(F::Unspecified | F::None) => Ok(FillMode::None),
        Ok(F::Null) => Ok(FillMode::Null),
        Ok(F::Zero) => Ok(FillMode::Zero),
        Ok(F::Previous) => Ok(FillMode::Previous),
        Ok(F::Linear) => Ok(FillMode::Linear),
        Err(_) => Err(unknown_enum("fill", raw)),
    }
}

#[tonic::async_trait]
impl QueryService for QueryHandler {
    async fn query_points(
        &self,
        request: Request<pb::QueryPointsRequest>,
    ) -> Result<Response<pb::QueryPointsResponse>, Status> {
        let request = request.into_inner();
        if request.metrics.is_empty() {
            return Err(ApiError::invalid("metrics is empty; name at least one metric").into());
        }
        for (i, metric) in request.metrics.iter().enumerate() {
            self.check_metric(&format!("metrics[{i}]"), metric)?;
        }
        let max = self.engine.limits().max_query_points;
        let limit = match request.limit as usize {
            0 => DEFAULT_QUERY_LIMIT.min(max),
            n if n > max => {
                return Err(ApiError::invalid(format!(
                    "limit is {n}, over the maximum of {max}; page with offset"
                ))
                .into());
            }
            n => n,
        };

        let query = PointsQuery {
            metrics: request.metrics,
            range: time_range("range", request.range.as_ref())?,
            filters: filter_set(&request.filters)?,
            limit,
            offset: request.offset as usize,
            descending: request.descending,
        };
        tracing::debug!(metrics = ?query.metrics, limit, "query_points");

        let result = self
            .run("query_points", move |engine| engine.query_points(&query))
            .await?;
        let points = result
            .points
            .into_iter()
            .map(|p| pb::Point {
                metric: p.metric.to_string(),
                time_unix_nano: p.time_ns,
                value: Some(value_to_proto(p.value)),
                tags: p
                    .tags
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            })
            .collect();
        let response = pb::QueryPointsResponse {
            points,
            total_matched: result.total_matched,
            points_scanned: result.points_scanned,
        };
        check_response_size(
            "QueryPoints",
            &response,
            self.engine.limits().max_message_bytes,
            "lower limit and page with offset, or narrow the range",
        )?;
        Ok(Response::new(response))
    }

    async fn aggregate(
        &self,
        request: Request<pb::AggregateRequest>,
    ) -> Result<Response<pb::AggregateResponse>, Status> {
        let request = request.into_inner();
        self.check_metric("metric", &request.metric)?;

        let mut query = AggregateQuery {
            metric: request.metric.clone(),
            range: match &request.range {
                Some(_) => Some(time_range("range", request.range.as_ref())?),
                None => None,
            },
            filters: self.filters_for(&request.metric, &request.filters)?,
            bucketer: bucketer(&request)?,
            functions: agg_functions(&request.aggregations)?,
            group_by: group_by_keys(&request.group_by, self.engine.limits().max_tag_key_bytes)?,
            fill: fill_mode(request.fill)?,
        };
        tracing::debug!(metric = %query.metric, functions = query.functions.len(), group_by = ?query.group_by, "aggregate");

        let result = self
            .run("aggregate", move |engine| engine.aggregate(&mut query))
            .await?;
        let series = result
            .series
            .into_iter()
            .map(|group| pb::Series {
                group: group.group.into_iter().collect(),
                buckets: group
                    .buckets
                    .into_iter()
                    .map(|b| pb::Bucket {
                        start_unix_nano: b.start_ns,
                        end_unix_nano: b.end_ns,
                        count: b.count,
                        values: b.values.into_iter().map(agg_value_to_proto).collect(),
                    })
                    .collect(),
            })
            .collect();
        let response = pb::AggregateResponse {
            series,
            points_scanned: result.points_scanned,
        };
        check_response_size(
            "Aggregate",
            &response,
            self.engine.limits().max_message_bytes,
            "use a wider granularity or step, a shorter range, or fewer groups",
        )?;
        Ok(Response::new(response))
    }

    async fn get_statistics(
        &self,
        request: Request<pb::GetStatisticsRequest>,
    ) -> Result<Response<pb::Statistics>, Status> {
        let request = request.into_inner();
        self.check_metric("metric", &request.metric)?;
        let range = time_range("range", request.range.as_ref())?;
        let filters = self.filters_for(&request.metric, &request.filters)?;
        tracing::debug!(metric = %request.metric, "get_statistics");

        let metric = request.metric;
        let stats = self
            .run("get_statistics", move |engine| {
                engine.statistics(&metric, range, &filters)
            })
            .await?;
        Ok(Response::new(pb::Statistics {
            count: stats.count,
            sum: stats.sum,
            mean: stats.mean,
            min: stats.min,
            max: stats.max,
            median: stats.median,
            std_dev: stats.std_dev,
            variance: stats.variance,
            p25: stats.p25,
            p75: stats.p75,
            p90: stats.p90,
            p95: stats.p95,
            p99: stats.p99,
        }))
    }
}
