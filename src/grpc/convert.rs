//! Conversions between protobuf messages and engine types, with the
//! validation that goes with them. Every error names the request field.

use std::time::Duration;

use crate::model::filter::{Filter, FilterSet, Operand, Operator};
use crate::model::{DataType, TimeRange};
use crate::proto::v1 as pb;

use super::status::ApiError;

pub fn data_type_from_proto(field: &str, raw: i32) -> Result<DataType, ApiError> {
    match pb::MetricDataType::try_from(raw) {
        Ok(pb::MetricDataType::Integer) => Ok(DataType::Integer),
        Ok(pb::MetricDataType::Float) => Ok(DataType::Float),
        Ok(pb::MetricDataType::Boolean) => Ok(DataType::Boolean),
        Ok(pb::MetricDataType::String) => Ok(DataType::String),
        Ok(pb::MetricDataType::Duration) => Ok(DataType::Duration),
        Ok(pb::MetricDataType::Percentage) => Ok(DataType::Percentage),
        Ok(pb::MetricDataType::Rate) => Ok(DataType::Rate),
        Ok(pb::MetricDataType::Unspecified) => Err(ApiError::invalid(format!(
            "{field} is METRIC_DATA_TYPE_UNSPECIFIED; choose a data type"
        ))),
        Err(_) => Err(unknown_enum(field, raw)),
    }
}

pub fn data_type_to_proto(data_type: DataType) -> pb::MetricDataType {
    match data_type {
        DataType::Integer => pb::MetricDataType::Integer,
        DataType::Float => pb::MetricDataType::Float,
        DataType::Boolean => pb::MetricDataType::Boolean,
        DataType::String => pb::MetricDataType::String,
        DataType::Duration => pb::MetricDataType::Duration,
        DataType::Percentage => pb::MetricDataType::Percentage,
        DataType::Rate => pb::MetricDataType::Rate,
    }
}

pub fn unknown_enum(field: &str, raw: i32) -> ApiError {
    ApiError::invalid(format!("{field} has unknown enum value {raw}"))
}

/// Converts an optional range; unset means all time. An empty or inverted
/// range is rejected, because it can only be a client mistake.
pub fn time_range(field: &str, range: Option<&pb::TimeRange>) -> Result<TimeRange, ApiError> {
    let Some(range) = range else {
        return Ok(TimeRange::ALL);
    };
    if range.start_unix_nano >= range.end_unix_nano {
        return Err(ApiError::invalid(format!(
            "{field} is empty: start_unix_nano {} is not before end_unix_nano {}",
            range.start_unix_nano, range.end_unix_nano
        )));
    }
    Ok(TimeRange::new(range.start_unix_nano, range.end_unix_nano))
}

/// Converts a protobuf duration; `None` when unset. Negative durations and
/// out-of-range nanos are rejected.
pub fn duration(
    field: &str,
    value: Option<&prost_types::Duration>,
) -> Result<Option<Duration>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    if value.seconds < 0 || value.nanos < 0 || value.nanos >= 1_000_000_000 {
        return Err(ApiError::invalid(format!(
            "{field} is {}s {}ns; it must be non-negative with nanos in 0..1000000000",
            value.seconds, value.nanos
        )));
    }
    Ok(Some(Duration::new(
        value.seconds as u64,
        value.nanos as u32,
    )))
}

pub fn duration_to_proto(value: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: value.as_secs().min(i64::MAX as u64) as i64,
        nanos: value.subsec_nanos() as i32,
    }
}

/// Converts a duration to nanoseconds, rejecting zero and widths that do
/// not fit in an i64.
pub fn positive_duration_ns(field: &str, value: Duration) -> Result<i64, ApiError> {
    let nanos = value.as_nanos();
    if nanos == 0 {
        return Err(ApiError::invalid(format!(
            "{field} is zero; it must be positive"
        )));
    }
    i64::try_from(nanos).map_err(|_| {
        ApiError::invalid(format!(
            "{field} is {}s, over the maximum of {}s",
            value.as_secs(),
            i64::MAX / 1_000_000_000
        ))
    })
}

fn operator_from_proto(field: &str, raw: i32) -> Result<Operator, ApiError> {
    use pb::Operator as P;
    let op = match P::try_from(raw) {
        Ok(P::Eq) => Operator::Eq,
        Ok(P::Ne) => Operator::Ne,
        Ok(P::Gt) => Operator::Gt,
        Ok(P::Gte) => Operator::Gte,
        Ok(P::Lt) => Operator::Lt,
        Ok(P::Lte) => Operator::Lte,
        Ok(P::In) => Operator::In,
        Ok(P::Like) => Operator::Like,
        Ok(P::Regex) => Operator::Regex,
        Ok(P::Exists) => Operator::Exists,
        Ok(P::NotExists) => Operator::NotExists,
        Ok(P::Unspecified) => {
            return Err(ApiError::invalid(format!(
                "{field} is OPERATOR_UNSPECIFIED; choose an operator"
            )));
        }
        Err(_) => return Err(unknown_enum(field, raw)),
    };
    Ok(op)
}

/// Validates a request's filters into a [`FilterSet`].
pub fn filter_set(filters: &[pb::Filter]) -> Result<FilterSet, ApiError> {
    let mut compiled = Vec::with_capacity(filters.len());
    for (i, filter) in filters.iter().enumerate() {
        let op = operator_from_proto(&format!("filters[{i}].op"), filter.op)?;
        let mut operands = Vec::with_capacity(filter.values.len());
        for (j, value) in filter.values.iter().enumerate() {
            let operand = match &value.value {
                Some(pb::filter_value::Value::StringValue(v)) => Operand::Str(v.clone()),
                Some(pb::filter_value::Value::DoubleValue(v)) => Operand::F64(*v),
                Some(pb::filter_value::Value::IntValue(v)) => Operand::I64(*v),
                Some(pb::filter_value::Value::BoolValue(v)) => Operand::Bool(*v),
                None => {
                    return Err(ApiError::invalid(format!(
                        "filters[{i}].values[{j}] is not set; set one of its value fields"
                    )));
                }
            };
            operands.push(operand);
        }
        let filter = Filter::new(&filter.field, op, operands)
            .map_err(|reason| ApiError::invalid(format!("filters[{i}]: {reason}")))?;
        compiled.push(filter);
    }
    Ok(FilterSet::new(compiled))
}
