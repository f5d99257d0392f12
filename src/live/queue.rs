//! A subscriber's bounded queue. When it is full, the oldest update is
//! dropped and counted, and the subscriber receives a `Gap` with that
//! count before the next update. Pushing never blocks, so a slow
//! subscriber cannot slow ingest or other subscribers.

use std::collections::VecDeque;

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::LiveUpdate;

struct QueueState {
    updates: VecDeque<LiveUpdate>,
    /// Updates dropped since the subscriber last took one.
    dropped: u64,
    closed: bool,
}

pub struct SubscriberQueue {
    /// Guards the pending updates; held only for a push or a pop.
    state: Mutex<QueueState>,
    /// Wakes the subscriber's task after a push or close. `notify_one`
    /// keeps a permit when no task is waiting, so no wakeup is lost.
    notify: Notify,
    capacity: usize,
}

impl SubscriberQueue {
    pub fn new(capacity: usize) -> SubscriberQueue {
        SubscriberQueue {
            state: Mutex::new(QueueState {
                updates: VecDeque::with_capacity(capacity.min(1024)),
                dropped: 0,
                closed: false,
            }),
            notify: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    /// Appends an update, dropping the oldest one when the queue is full.
    pub fn push(&self, update: LiveUpdate) {
        self.push_all(std::slice::from_ref(&update));
    }

    /// Appends updates in order, dropping the oldest ones when the queue
    /// is full. One lock and one wakeup cover the whole slice, so the
    /// subscriber's task runs once and sends them together.
    pub fn push_all(&self, updates: &[LiveUpdate]) {
        if updates.is_empty() {
            return;
        }
        let mut state = self.state.lock();
        if state.closed {
            return;
        }
        for update in updates {
            if state.updates.len() >= self.capacity {
                state.updates.pop_front();
                state.dropped += 1;
            }
            state.updates.push_back(update.clone());
        }
        drop(state);
        self.notify.notify_one();
    }

    /// Ends the stream after the pending updates.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.notify.notify_one();
    }

    /// Waits for the next update; `None` once the queue is closed and
    /// drained. A `Gap` comes first when updates were dropped.
    pub async fn next(&self) -> Option<LiveUpdate> {
        loop {
            {
                let mut state = self.state.lock();
                if state.dropped > 0 {
                    let dropped = std::mem::take(&mut state.dropped);
                    return Some(LiveUpdate::Gap { dropped });
                }
                if let Some(update) = state.updates.pop_front() {
                    return Some(update);
                }
                if state.closed {
                    return None;
                }
            }
            self.notify.notified().await;
        }
    }

    pub fn len(&self) -> usize {
        self.state.lock().updates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat(n: u64) -> LiveUpdate {
        LiveUpdate::Heartbeat {
            watermark_ns: n as i64,
            late_points: n,
        }
    }

    #[tokio::test]
    async fn full_queue_drops_oldest_and_reports_gap() {
        let queue = SubscriberQueue::new(2);
        for n in 0..5 {
            queue.push(heartbeat(n));
        }
        assert_eq!(queue.next().await, Some(LiveUpdate::Gap { dropped: 3 }));
        assert_eq!(queue.next().await, Some(heartbeat(3)));
        assert_eq!(queue.next().await, Some(heartbeat(4)));
        queue.close();
        assert_eq!(queue.next().await, None);
    }

    #[tokio::test]
    async fn push_all_keeps_order_and_counts_drops() {
        let queue = SubscriberQueue::new(3);
        queue.push(heartbeat(0));
        let batch: Vec<LiveUpdate> = (1..5).map(heartbeat).collect();
        queue.push_all(&batch);
        assert_eq!(queue.len(), 3);
        assert_eq!(queue.next().await, Some(LiveUpdate::Gap { dropped: 2 }));
        assert_eq!(queue.next().await, Some(heartbeat(2)));
        assert_eq!(queue.next().await, Some(heartbeat(3)));
        assert_eq!(queue.next().await, Some(heartbeat(4)));
    }

    #[tokio::test]
    async fn push_all_after_close_is_ignored() {
        let queue = SubscriberQueue::new(3);
        queue.close();
        queue.push_all(&[heartbeat(1)]);
        assert!(queue.is_empty());
        assert_eq!(queue.next().await, None);
    }
}
