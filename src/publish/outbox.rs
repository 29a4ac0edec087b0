//! The store-and-forward queue between the tracker and the network.
//!
//! Bounded both in messages and in bytes, so a long WAN outage costs a fixed amount of
//! memory. When full, the oldest per-second metrics go first, then the oldest call events;
//! a new metric never pushes out a call event. `health` is coalesced to the latest (one
//! slot: only the newest counters matter) and goes last, after every call event, so the
//! NOC always learns the drop counts. Every drop is counted (and reported in `health`).
//! Calls and metrics are kept in two queues so a drop is O(1); a push sequence number
//! restores the overall order when sending.

use crate::publish::payload::OutboxStats;
use crate::publish::topic::Leaf;
use std::collections::VecDeque;

/// What may be dropped first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `calls`: kept as long as anything else can go.
    Call,
    /// `rtp`, `kpi`.
    Metric,
    /// `health`: the latest one only, kept longer than anything else.
    Health,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMsg {
    pub leaf: Leaf,
    pub class: Class,
    /// 0 or 1.
    pub qos: u8,
    pub retain: bool,
    pub payload: Vec<u8>,
    /// Push order (set by the outbox).
    pub order: u64,
}

impl OutMsg {
    pub fn new(leaf: Leaf, class: Class, qos: u8, payload: Vec<u8>) -> OutMsg {
        OutMsg {
            leaf,
            class,
            qos,
            retain: false,
            payload,
            order: 0,
        }
    }
}

#[derive(Debug)]
pub struct Outbox {
    calls: VecDeque<OutMsg>,
    metrics: VecDeque<OutMsg>,
    health: Option<OutMsg>,
    bytes: u64,
    next_order: u64,
    stats: OutboxStats,
}

impl Outbox {
    pub fn new(max_messages: u32, max_bytes: u64) -> Outbox {
        let max_messages = max_messages.max(1);
        Outbox {
            // Capacity reserved up front only for a modest share: most of the time the queue
            // is nearly empty, and the byte bound is what caps memory.
            calls: VecDeque::with_capacity((max_messages as usize).min(1024)),
            metrics: VecDeque::with_capacity((max_messages as usize).min(1024)),
            health: None,
            bytes: 0,
            next_order: 0,
            stats: OutboxStats {
                capacity: max_messages,
                capacity_bytes: max_bytes,
                ..OutboxStats::default()
            },
        }
    }

    pub fn len(&self) -> usize {
        self.calls.len() + self.metrics.len() + usize::from(self.health.is_some())
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn stats(&self) -> OutboxStats {
        OutboxStats {
            depth: self.len() as u32,
            depth_bytes: self.bytes,
            ..self.stats
        }
    }

    /// Counts messages the network side got through.
    pub fn count_sent(&mut self, n: u64) {
        self.stats.sent += n;
    }

    /// Adds a message at the back, dropping per the policy if full. Never blocks.
    pub fn push(&mut self, mut msg: OutMsg) {
        msg.order = self.next_order;
        self.next_order += 1;
        self.insert(msg, false);
    }

    /// Puts back messages that were handed to the network but not acknowledged, ahead of
    /// everything else and in their original order (pass them oldest first).
    pub fn requeue_front(&mut self, msgs: impl DoubleEndedIterator<Item = OutMsg>) {
        for m in msgs.rev() {
            self.insert(m, true);
        }
    }

    fn insert(&mut self, msg: OutMsg, front: bool) {
        let size = msg.payload.len() as u64;
        if size > self.stats.capacity_bytes {
            self.count_drop(msg.class);
            return;
        }
        if msg.class == Class::Health {
            match &self.health {
                // A requeued health older than the queued one is superseded by it.
                Some(h) if h.order > msg.order => return,
                Some(_) => {
                    if let Some(old) = self.health.take() {
                        self.bytes -= old.payload.len() as u64;
                    }
                }
                None => {}
            }
        }
        while self.len() as u32 >= self.stats.capacity
            || self.bytes + size > self.stats.capacity_bytes
        {
            let victim = if !self.metrics.is_empty() {
                self.metrics.pop_front()
            } else if msg.class != Class::Metric && !self.calls.is_empty() {
                self.calls.pop_front()
            } else if msg.class != Class::Metric {
                // Nothing but the health slot (a capacity of one): the newer one stays.
                self.health.take()
            } else {
                // Only call events and health queued: the new metric is the one to go.
                None
            };
            match victim {
                Some(v) => {
                    self.bytes -= v.payload.len() as u64;
                    self.count_drop(v.class);
                }
                None => {
                    self.count_drop(msg.class);
                    return;
                }
            }
        }
        self.bytes += size;
        let q = match msg.class {
            Class::Call => &mut self.calls,
            Class::Metric => &mut self.metrics,
            Class::Health => {
                self.health = Some(msg);
                self.stats.high_water = self.stats.high_water.max(self.len() as u32);
                return;
            }
        };
        if front {
            q.push_front(msg);
        } else {
            q.push_back(msg);
        }
        self.stats.high_water = self.stats.high_water.max(self.len() as u32);
    }

    fn count_drop(&mut self, class: Class) {
        match class {
            Class::Call => self.stats.dropped_calls += 1,
            Class::Metric | Class::Health => self.stats.dropped_metrics += 1,
        }
    }

    /// The oldest message of the queues and the health slot.
    pub fn pop(&mut self) -> Option<OutMsg> {
        let order = |m: Option<&OutMsg>| m.map_or(u64::MAX, |m| m.order);
        let (c, m, h) = (
            order(self.calls.front()),
            order(self.metrics.front()),
            order(self.health.as_ref()),
        );
        let m = if c == u64::MAX && m == u64::MAX && h == u64::MAX {
            None
        } else if c <= m && c <= h {
            self.calls.pop_front()
        } else if m <= h {
            self.metrics.pop_front()
        } else {
            self.health.take()
        }?;
        self.bytes -= m.payload.len() as u64;
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(b: u8) -> OutMsg {
        OutMsg::new(Leaf::Calls, Class::Call, 1, vec![b; 10])
    }
    fn metric(b: u8) -> OutMsg {
        OutMsg::new(Leaf::Rtp, Class::Metric, 0, vec![b; 10])
    }
    fn drain(o: &mut Outbox) -> Vec<u8> {
        std::iter::from_fn(|| o.pop())
            .map(|m| m.payload[0])
            .collect()
    }

    #[test]
    fn messages_leave_in_push_order_across_classes() {
        let mut o = Outbox::new(10, 1000);
        o.push(call(1));
        o.push(metric(2));
        o.push(call(3));
        assert_eq!(drain(&mut o), vec![1, 2, 3]);
        assert_eq!(o.bytes(), 0);
    }

    #[test]
    fn when_full_oldest_metrics_go_before_any_call() {
        let mut o = Outbox::new(4, 1000);
        o.push(metric(1));
        o.push(call(2));
        o.push(metric(3));
        o.push(call(4));
        o.push(call(5)); // drops metric 1
        o.push(call(6)); // drops metric 3
        o.push(call(7)); // only calls left: drops call 2
        assert_eq!(drain(&mut o), vec![4, 5, 6, 7]);
        let s = o.stats();
        assert_eq!((s.dropped_metrics, s.dropped_calls), (2, 1));
    }

    #[test]
    fn a_new_metric_never_pushes_out_a_call() {
        let mut o = Outbox::new(2, 1000);
        o.push(call(1));
        o.push(call(2));
        o.push(metric(3));
        assert_eq!(drain(&mut o), vec![1, 2]);
        assert_eq!(o.stats().dropped_metrics, 1);
    }

    #[test]
    fn byte_bound_holds_as_well_as_the_message_bound() {
        let mut o = Outbox::new(100, 35);
        for i in 0..5 {
            o.push(call(i));
        }
        assert!(o.bytes() <= 35);
        assert_eq!(drain(&mut o), vec![2, 3, 4]);
        assert_eq!(o.stats().dropped_calls, 2);
        o.push(OutMsg::new(Leaf::Calls, Class::Call, 1, vec![0; 36]));
        assert_eq!(o.stats().dropped_calls, 3);
    }

    fn health(b: u8) -> OutMsg {
        OutMsg::new(Leaf::Health, Class::Health, 0, vec![b; 10])
    }

    #[test]
    fn health_is_coalesced_to_the_latest_in_its_place_in_time() {
        let mut o = Outbox::new(10, 1000);
        o.push(call(1));
        o.push(health(2));
        o.push(metric(3));
        o.push(health(4));
        o.push(call(5));
        assert_eq!(o.len(), 4);
        assert_eq!(o.bytes(), 40);
        assert_eq!(drain(&mut o), vec![1, 3, 4, 5]);
        assert_eq!(o.stats().dropped_metrics, 0, "coalescing is not a drop");
    }

    #[test]
    fn when_full_health_outlasts_every_call_event() {
        let mut o = Outbox::new(3, 1000);
        o.push(health(1));
        o.push(call(2));
        o.push(metric(3));
        o.push(call(4)); // drops metric 3
        o.push(call(5)); // drops call 2, not the health
        o.push(call(6)); // drops call 4
        o.push(health(7)); // replaces health 1: nothing dropped
        assert_eq!(drain(&mut o), vec![5, 6, 7]);
        let s = o.stats();
        assert_eq!((s.dropped_metrics, s.dropped_calls), (1, 2));
    }

    #[test]
    fn a_requeued_health_older_than_the_queued_one_is_superseded() {
        let mut o = Outbox::new(10, 1000);
        o.push(health(1));
        let old = o.pop().unwrap();
        o.push(health(2));
        o.requeue_front(std::iter::once(old));
        assert_eq!(drain(&mut o), vec![2]);
    }

    #[test]
    fn requeued_messages_go_out_first_in_their_order() {
        let mut o = Outbox::new(10, 1000);
        o.push(call(1));
        o.push(call(2));
        o.push(metric(3));
        let a = o.pop().unwrap();
        let b = o.pop().unwrap();
        o.push(call(4));
        o.requeue_front(vec![a, b].into_iter());
        assert_eq!(drain(&mut o), vec![1, 2, 3, 4]);
    }
}
