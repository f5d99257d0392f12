//! The server clock. Window closing and retention age are measured from
//! it, never from the newest stored timestamp.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::model::TimestampNs;

/// Returns the current wall-clock time in nanoseconds since the Unix epoch.
pub fn now_ns() -> TimestampNs {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(elapsed) => i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX),
        Err(before_epoch) => -i64::try_from(before_epoch.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}
