//! `LiveService`: validates a window subscription and streams the
//! subscriber's queue to the client as encoded `WindowUpdate` messages.
//!
//! Neighbours: `super::live_server` routes the gRPC call here and writes
//! the encoded messages to the wire, and `crate::live` computes the
//! updates.
//! A window update is shared by every subscriber of one aggregation, and
//! the first stream that sends it encodes it for all of them.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use prost::Message;
use tonic::{Request, Response, Status};

use super::convert::{duration, filter_set, positive_duration_ns, unknown_enum};
use super::query::{agg_functions, agg_value_to_proto, group_by_keys};
use super::status::ApiError;
use crate::live::window::{EmitMode, WindowSpec, WindowState};
use crate::live::{LiveHub, LiveUpdate, MAX_BACKFILL_WINDOWS};
use crate::model::limits::Limits;
use crate::proto::v1 as pb;

/// Most windows one point may belong to (window / slide).
const MAX_WINDOWS_PER_POINT: i64 = 1_000;

/// Update interval in ON_UPDATE mode when the request leaves it unset.
const DEFAULT_UPDATE_INTERVAL_NS: i64 = 1_000_000_000;

/// Shortest update interval a subscriber may ask for.
const MIN_UPDATE_INTERVAL_NS: i64 = 10_000_000;

pub struct LiveHandler {
    hub: Arc<LiveHub>,
    limits: Arc<Limits>,
}

impl LiveHandler {
    pub fn new(hub: Arc<LiveHub>, limits: Arc<Limits>) -> Self {
        LiveHandler { hub, limits }
    }
}

fn window_spec(
    request: &pb::SubscribeWindowsRequest,
    limits: &Limits,
) -> Result<WindowSpec, ApiError> {
    limits
        .check_metric_name("metric", &request.metric)
        .map_err(ApiError::InvalidArgument)?;

    let window = duration("window", request.window.as_ref())?.ok_or_else(|| {
        ApiError::invalid("window is not set; give the window width, for example 10s")
    })?;
    let window_ns = positive_duration_ns("window", window)?;
    let slide_ns = match duration("slide", request.slide.as_ref())? {
        None => window_ns,
        Some(slide) => positive_duration_ns("slide", slide)?,
    };
    if slide_ns > window_ns {
        return Err(ApiError::invalid(format!(
            "slide is {slide_ns}ns, longer than window {window_ns}ns; slide must not exceed window"
        )));
    }
    if window_ns / slide_ns > MAX_WINDOWS_PER_POINT {
        return Err(ApiError::invalid(format!(
            "window / slide is {}, over the limit of {MAX_WINDOWS_PER_POINT} overlapping windows",
            window_ns / slide_ns
        )));
    }
    let allowed_lateness_ns = match duration("allowed_lateness", request.allowed_lateness.as_ref())?
    {
        None => 0,
        Some(lateness) => i64::try_from(lateness.as_nanos()).map_err(|_| {
            ApiError::invalid(format!(
                "allowed_lateness is {}s, over the limit of {}s (i64::MAX nanoseconds)",
                lateness.as_secs(),
                i64::MAX / 1_000_000_000
            ))
        })?,
    };

    use pb::EmitMode as E;
    let emit = match E::try_from(request.emit) {
        Ok(E::Unspecified | E::OnClose) => EmitMode::OnClose,
        Ok(E::OnUpdate) => {
            let update_interval_ns =
                match duration("update_interval", request.update_interval.as_ref())? {
                    None => DEFAULT_UPDATE_INTERVAL_NS,
                    Some(interval) => positive_duration_ns("update_interval", interval)?,
                };
            if update_interval_ns < MIN_UPDATE_INTERVAL_NS {
                return Err(ApiError::invalid(format!(
                    "update_interval is {update_interval_ns}ns, under the minimum of {MIN_UPDATE_INTERVAL_NS}ns"
                )));
            }
            EmitMode::OnUpdate { update_interval_ns }
        }
        Err(_) => return Err(unknown_enum("emit", request.emit)),
    };

    if request.backfill_windows > MAX_BACKFILL_WINDOWS {
        return Err(ApiError::invalid(format!(
            "backfill_windows is {}, over the limit of {MAX_BACKFILL_WINDOWS}",
            request.backfill_windows
        )));
    }

    Ok(WindowSpec {
        metric: request.metric.clone(),
        filters: filter_set(&request.filters)?,
        group_by: group_by_keys(&request.group_by, limits.max_tag_key_bytes)?,
        window_ns,
        slide_ns,
        functions: agg_functions(&request.aggregations)?,
        allowed_lateness_ns,
        emit,
    })
}

fn update_to_proto(update: &LiveUpdate) -> pb::WindowUpdate {
    let kind = match update {
        LiveUpdate::Window(shared) => {
            let window = &shared.result;
            pb::window_update::Kind::Window(pb::Window {
                start_unix_nano: window.start_ns,
                end_unix_nano: window.end_ns,
                group: window.group.iter().cloned().collect(),
                count: window.count,
                values: window
                    .values
                    .iter()
                    .cloned()
                    .map(agg_value_to_proto)
                    .collect(),
                state: match window.state {
                    WindowState::Partial => pb::WindowState::Partial,
                    WindowState::Final => pb::WindowState::Final,
                    WindowState::Revision => pb::WindowState::Revision,
                } as i32,
                revision: window.revision,
            })
        }
        LiveUpdate::Heartbeat {
            watermark_ns,
            late_points,
        } => pb::window_update::Kind::Heartbeat(pb::Heartbeat {
            watermark_unix_nano: *watermark_ns,
            late_points: *late_points,
        }),
        LiveUpdate::Gap { dropped } => pb::window_update::Kind::Gap(pb::Gap {
            windows_dropped: *dropped,
        }),
    };
    pb::WindowUpdate { kind: Some(kind) }
}

/// Encodes an update as a protobuf `WindowUpdate`. A window update is
/// encoded once, and every subscriber it goes to sends the same bytes.
/// Heartbeats and gaps are rare, so each subscriber encodes its own.
fn encode_update(update: &LiveUpdate) -> Bytes {
    match update {
        LiveUpdate::Window(shared) => shared
            .encoded
            .get_or_init(|| Bytes::from(update_to_proto(update).encode_to_vec()))
            .clone(),
        LiveUpdate::Heartbeat { .. } | LiveUpdate::Gap { .. } => {
            Bytes::from(update_to_proto(update).encode_to_vec())
        }
    }
}

/// Encoded `WindowUpdate` messages of one subscriber.
pub type EncodedUpdateStream = Pin<Box<dyn Stream<Item = Result<Bytes, Status>> + Send>>;

impl LiveHandler {
    /// Handles `SubscribeWindows`: validates the request, subscribes and
    /// returns the subscriber's stream of encoded updates.
    pub async fn subscribe_windows(
        &self,
        request: Request<pb::SubscribeWindowsRequest>,
    ) -> Result<Response<EncodedUpdateStream>, Status> {
        let request = request.into_inner();
        let spec = window_spec(&request, &self.limits)?;

        // Equal requests share one aggregation; backfill is per subscriber.
        let mut shared = request.clone();
        shared.backfill_windows = 0;
        let key = shared.encode_to_vec();

        let hub = self.hub.clone();
        let backfill = request.backfill_windows;
        let subscription = tokio::task::spawn_blocking(move || hub.subscribe(key, spec, backfill))
            .await
            .map_err(|e| ApiError::Internal(format!("subscribe failed: {e}")))?
            .map_err(ApiError::from)?;
        tracing::debug!(metric = %request.metric, "live subscriber connected");

        // The subscription lives inside the stream; when the client goes
        // away, tonic drops the stream and the subscription unsubscribes.
        let stream = futures::stream::unfold(subscription, |subscription| async move {
            let update = subscription.next().await?;
            Some((Ok(encode_update(&update)), subscription))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::AggValue;
    use crate::live::SharedWindow;
    use crate::live::window::WindowResult;

    fn final_window() -> LiveUpdate {
        LiveUpdate::Window(Arc::new(SharedWindow::new(WindowResult {
            start_ns: 1_000,
            end_ns: 2_000,
            group: vec![("host".into(), "a".into())],
            count: 3,
            values: vec![AggValue::Number(1.5)],
            state: WindowState::Final,
            revision: 0,
        })))
    }

    #[test]
    fn window_update_encoded_once_and_shared() {
        let update = final_window();
        let first = encode_update(&update);
        let second = encode_update(&update.clone());
        assert_eq!(first, update_to_proto(&update).encode_to_vec());
        // Both subscribers send the same buffer, not an equal copy.
        assert_eq!(first.as_ptr(), second.as_ptr());
        let decoded = pb::WindowUpdate::decode(first).unwrap();
        assert_eq!(decoded, update_to_proto(&update));
    }

    #[test]
    fn heartbeat_and_gap_encode_as_window_update() {
        for update in [
            LiveUpdate::Heartbeat {
                watermark_ns: 5,
                late_points: 2,
            },
            LiveUpdate::Gap { dropped: 7 },
        ] {
            let bytes = encode_update(&update);
            let decoded = pb::WindowUpdate::decode(bytes).unwrap();
            assert_eq!(decoded, update_to_proto(&update));
        }
    }
}
