//! Input limits and the checks that enforce them. Every check returns a
//! message that names the field, the rejected value and the limit, so the
//! gRPC layer can pass it to the client unchanged.

/// Configurable input limits. The defaults are the documented ones.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_metric_name_bytes: usize,
    pub max_tags_per_point: usize,
    pub max_tag_key_bytes: usize,
    pub max_tag_value_bytes: usize,
    pub max_string_value_bytes: usize,
    /// Largest encoded gRPC message the server decodes.
    pub max_message_bytes: usize,
    /// Largest number of points one QueryPoints call returns.
    pub max_query_points: usize,
    /// Largest number of buckets one Aggregate call may produce per group.
    pub max_buckets: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_metric_name_bytes: 256,
            max_tags_per_point: 32,
            max_tag_key_bytes: 256,
            max_tag_value_bytes: 1024,
            max_string_value_bytes: 64 * 1024,
            max_message_bytes: 16 * 1024 * 1024,
            max_query_points: 1_000_000,
            max_buckets: 1_000_000,
        }
    }
}

/// Shortens a rejected value for an error message, so a 10 MB string does
/// not come back in the error.
pub fn excerpt(value: &str) -> String {
    const MAX_CHARS: usize = 64;
    if value.chars().count() <= MAX_CHARS {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(MAX_CHARS).collect();
        format!("{head:?}... ({} bytes)", value.len())
    }
}

impl Limits {
    /// Checks a metric name: non-empty, `[A-Za-z_:][A-Za-z0-9_.:-]*`, and
    /// at most `max_metric_name_bytes` long.
    pub fn check_metric_name(&self, field: &str, name: &str) -> Result<(), String> {
        if name.is_empty() {
            return Err(format!("{field} is empty; a metric name is required"));
        }
        if name.len() > self.max_metric_name_bytes {
            // The excerpt of a name this long ends with its length.
            return Err(format!(
                "{field} {} is over the limit of {} bytes",
                excerpt(name),
                self.max_metric_name_bytes
            ));
        }
        let mut chars = name.chars();
        let first = chars.next().unwrap_or('_');
        let first_ok = first.is_ascii_alphabetic() || first == '_' || first == ':';
        let rest_ok =
            chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
        if !first_ok || !rest_ok {
            return Err(format!(
                "{field} {} is invalid; a metric name must match [A-Za-z_:][A-Za-z0-9_.:-]*",
                excerpt(name)
            ));
        }
        Ok(())
    }

    /// Checks the tags of one point or series.
    pub fn check_tags<'a>(
        &self,
        field: &str,
        tags: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), String> {
        if tags.len() > self.max_tags_per_point {
            return Err(format!(
                "{field} has {} tags, over the limit of {}",
                tags.len(),
                self.max_tags_per_point
            ));
        }
        for (key, value) in tags {
            if key.is_empty() {
                return Err(format!(
                    "{field} has an empty tag key; tag keys must be non-empty"
                ));
            }
            if key.len() > self.max_tag_key_bytes {
                return Err(format!(
                    "{field} key {} is {} bytes long, over the limit of {} bytes",
                    excerpt(key),
                    key.len(),
                    self.max_tag_key_bytes
                ));
            }
            if value.len() > self.max_tag_value_bytes {
                return Err(format!(
                    "{field}[{key:?}] value {} is {} bytes long, over the limit of {} bytes",
                    excerpt(value),
                    value.len(),
                    self.max_tag_value_bytes
                ));
            }
        }
        Ok(())
    }

    /// Checks a string value's length.
    pub fn check_string_value(&self, field: &str, value: &str) -> Result<(), String> {
        if value.len() > self.max_string_value_bytes {
            return Err(format!(
                "{field} is {} bytes long, over the limit of {} bytes",
                value.len(),
                self.max_string_value_bytes
            ));
        }
        Ok(())
    }
}

/// Largest accepted timestamp. Ranges are half-open with an int64 end,
/// so a point at `i64::MAX` could never be inside a query range.
pub const MAX_TIMESTAMP_NS: i64 = i64::MAX - 1;

/// Checks that a timestamp can be queried: it must be below `i64::MAX`.
pub fn check_timestamp(field: &str, time_ns: i64) -> Result<(), String> {
    if time_ns > MAX_TIMESTAMP_NS {
        return Err(format!(
            "{field} {time_ns} is out of range; the maximum is {MAX_TIMESTAMP_NS} because query ranges end before i64::MAX"
        ));
    }
    Ok(())
}

/// Rejects NaN, which has no place in ordered aggregations. Infinities are
/// allowed and follow IEEE arithmetic.
pub fn check_double_value(field: &str, value: f64) -> Result<(), String> {
    if value.is_nan() {
        return Err(format!("{field} is NaN; NaN values are not accepted"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_name_rules() {
        let limits = Limits::default();
        let cases: &[(&str, bool)] = &[
            ("cpu", true),
            ("_x", true),
            (":x", true),
            ("a.b-c:d_9", true),
            ("", false),
            ("9lives", false),
            ("-x", false),
            ("has space", false),
            ("tag=x", false),
            ("é", false),
        ];
        for (name, ok) in cases {
            assert_eq!(
                limits.check_metric_name("metric", name).is_ok(),
                *ok,
                "name {name:?}"
            );
        }
    }

    #[test]
    fn metric_name_length_limit() {
        let limits = Limits::default();
        assert!(limits.check_metric_name("metric", &"a".repeat(256)).is_ok());
        let err = limits
            .check_metric_name("metric", &"a".repeat(257))
            .unwrap_err();
        assert!(err.contains("257 bytes"), "{err}");
        assert!(err.contains("256"), "{err}");
    }

    #[test]
    fn tag_limits() {
        let limits = Limits::default();
        let many: Vec<(String, String)> = (0..33).map(|i| (format!("k{i}"), "v".into())).collect();
        let err = limits
            .check_tags("tags", many.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .unwrap_err();
        assert!(err.contains("33 tags"), "{err}");

        let long_value = [("k".to_string(), "v".repeat(1025))];
        let err = limits
            .check_tags(
                "tags",
                long_value.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .unwrap_err();
        assert!(err.contains("1025 bytes"), "{err}");

        let empty_key = [(String::new(), "v".to_string())];
        assert!(
            limits
                .check_tags(
                    "tags",
                    empty_key.iter().map(|(k, v)| (k.as_str(), v.as_str()))
                )
                .is_err()
        );
    }

    #[test]
    fn nan_rejected_infinity_accepted() {
        assert!(check_double_value("value", f64::NAN).is_err());
        assert!(check_double_value("value", f64::INFINITY).is_ok());
        assert!(check_double_value("value", f64::NEG_INFINITY).is_ok());
    }
}
