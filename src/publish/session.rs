//! The delivery state, sans-IO (rumqttc's `MqttState` to our driver's `EventLoop`): what is
//! queued, what was handed to the client, what was written and awaits its PUBACK, keyed
//! by packet id. The driver reports what the connection did; this decides what to send.
//!
//! Our outbox, not rumqttc's session, is the store. A message handed to the client is
//! `handed` until the client reports writing it (`Outgoing::Publish(pkid)`, in hand
//! order); a QoS 0 message is then done, a QoS 1 one is `inflight` under that packet id
//! until its PUBACK, in any order. When the connection drops, everything not done goes
//! back to the front of the outbox in its original order, and nothing learnt on the old
//! connection (ids, pending writes) is applied to the new one: the driver clears rumqttc's
//! replay list and its queued events.
//!
//! rumqttc numbers QoS 1 publishes 1, 2, … `PKID_SPAN` and round again, per connection,
//! in the order it takes them from its channel; an id still awaiting its ack when the
//! count comes round again would "collide" (rumqttc then holds that message back and
//! reports it out of order). So a QoS 1 message is handed only while fewer than
//! `PKID_SPAN` QoS 1 messages were handed since the oldest one still unacknowledged: the
//! ids in use are then all distinct, and each `Outgoing::Publish(pkid)` names the
//! message handed in that position. A broker restart that loses the session loses
//! nothing, at the price of possible duplicates (QoS 1 is at-least-once; `seq` lets
//! consumers drop them).

use crate::publish::outbox::{Class, OutMsg, Outbox};
use crate::publish::payload::OutboxStats;
use crate::publish::topic::Leaf;
use std::collections::{BTreeMap, VecDeque};

/// rumqttc's packet ids on one connection run 1..=this (its `inflight` option).
pub const PKID_SPAN: u16 = 100;

struct Handed {
    msg: OutMsg,
    /// Position among the QoS 1 messages handed on this connection.
    q1_no: u64,
    /// The online status sent on connect: re-made on the next connect, never requeued.
    online: bool,
}

pub struct Session {
    outbox: Outbox,
    /// Handed to the client, not yet written, oldest first.
    handed: VecDeque<Handed>,
    /// Written with QoS 1, awaiting PUBACK.
    inflight: BTreeMap<u16, Handed>,
    /// The online status to send first on the current connection.
    online_due: bool,
    online: Vec<u8>,
    max_unacked: usize,
    connected: bool,
    connections: u64,
    /// QoS 1 messages handed on this connection.
    q1_handed: u64,
}

/// Connection and queue figures for `health`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Link {
    pub outbox: OutboxStats,
    pub connected: bool,
    pub connections: u64,
}

impl Session {
    /// `online` is the retained status (re)sent first on every connect; at most
    /// `max_unacked` messages are with the client at once.
    pub fn new(outbox: Outbox, online: Vec<u8>, max_unacked: usize) -> Session {
        Session {
            outbox,
            handed: VecDeque::with_capacity(max_unacked),
            inflight: BTreeMap::new(),
            online_due: false,
            online,
            max_unacked: max_unacked.max(1),
            connected: false,
            connections: 0,
            q1_handed: 0,
        }
    }

    /// Queues a message (never blocks; the outbox drops per its policy when full).
    pub fn push(&mut self, m: OutMsg) {
        self.outbox.push(m);
    }

    /// Replaces the retained online status (what the mirror delivers changed).
    pub fn set_online(&mut self, bytes: Vec<u8>) {
        self.online = bytes;
    }

    /// CONNACK: the online status goes first, then the backlog in order.
    pub fn connected(&mut self) {
        self.connected = true;
        self.connections += 1;
        self.online_due = true;
        self.q1_handed = 0;
    }

    /// The connection is gone: all that was not done is queued again, oldest first.
    pub fn disconnected(&mut self) {
        self.connected = false;
        self.online_due = false;
        let mut back: Vec<OutMsg> = std::mem::take(&mut self.inflight)
            .into_values()
            .chain(self.handed.drain(..))
            .filter(|h| !h.online)
            .map(|h| h.msg)
            .collect();
        back.sort_by_key(|m| m.order);
        self.outbox.requeue_front(back.into_iter());
    }

    /// The next message to hand to the client, if connected and under the bound. The
    /// driver hands it, or gives it back with [`unhand`](Self::unhand).
    pub fn hand(&mut self) -> Option<&OutMsg> {
        if !self.connected || self.handed.len() + self.inflight.len() >= self.max_unacked {
            return None;
        }
        // Both the status and any call event are QoS 1: stop while an id could collide.
        let oldest = self
            .handed
            .iter()
            .chain(self.inflight.values())
            .filter(|h| h.msg.qos > 0)
            .map(|h| h.q1_no)
            .min();
        if oldest.is_some_and(|o| self.q1_handed - o >= u64::from(PKID_SPAN) - 1) {
            return None;
        }
        let mut h = if std::mem::take(&mut self.online_due) {
            let mut m = OutMsg::new(Leaf::Status, Class::Call, 1, self.online.clone());
            m.retain = true;
            Handed {
                msg: m,
                q1_no: 0,
                online: true,
            }
        } else {
            Handed {
                msg: self.outbox.pop()?,
                q1_no: 0,
                online: false,
            }
        };
        if h.msg.qos > 0 {
            h.q1_no = self.q1_handed;
            self.q1_handed += 1;
        }
        self.handed.push_back(h);
        self.handed.back().map(|h| &h.msg)
    }

    /// The client could not take the last message from [`hand`](Self::hand).
    pub fn unhand(&mut self) {
        if let Some(h) = self.handed.pop_back() {
            if h.msg.qos > 0 {
                self.q1_handed -= 1;
            }
            if h.online {
                self.online_due = true;
            } else {
                self.outbox.requeue_front(std::iter::once(h.msg));
            }
        }
    }

    /// The client wrote the oldest handed message, with this packet id (0 for QoS 0).
    pub fn written(&mut self, pkid: u16) {
        let Some(h) = self.handed.pop_front() else {
            return;
        };
        if h.msg.qos == 0 {
            self.outbox.count_sent(1);
        } else if let Some(old) = self.inflight.insert(pkid, h) {
            // An id still awaiting its ack was reused: keep both, the old one goes again.
            self.outbox.requeue_front(std::iter::once(old.msg));
        }
    }

    /// PUBACK: that message is delivered. Unknown ids (not ours on this connection) are
    /// ignored; returns whether it was one.
    pub fn acked(&mut self, pkid: u16) -> bool {
        let done = self.inflight.remove(&pkid).is_some();
        if done {
            self.outbox.count_sent(1);
        }
        done
    }

    /// Everything not delivered, oldest first (the status excepted), leaving the session
    /// empty: what a stop with the broker down spools.
    pub fn take_pending(&mut self) -> Vec<OutMsg> {
        let connected = self.connected;
        self.disconnected();
        self.connected = connected;
        std::iter::from_fn(|| self.outbox.pop()).collect()
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Queued plus with the client.
    pub fn pending(&self) -> usize {
        self.outbox.len() + self.handed.len() + self.inflight.len()
    }

    pub fn queued(&self) -> usize {
        self.outbox.len()
    }

    pub fn link(&self) -> Link {
        let mut s = self.outbox.stats();
        let with_client = self.handed.iter().chain(self.inflight.values());
        for h in with_client {
            s.depth += 1;
            s.depth_bytes += h.msg.payload.len() as u64;
        }
        Link {
            outbox: s,
            connected: self.connected,
            connections: self.connections,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(b: u8) -> OutMsg {
        OutMsg::new(Leaf::Calls, Class::Call, 1, vec![b])
    }
    fn metric(b: u8) -> OutMsg {
        OutMsg::new(Leaf::Rtp, Class::Metric, 0, vec![b])
    }
    fn session(max_unacked: usize) -> Session {
        Session::new(Outbox::new(16, 1 << 20), b"online".to_vec(), max_unacked)
    }
    /// Hands everything it may; returns the payloads' first bytes (`o` for the status).
    fn hand_all(s: &mut Session) -> Vec<u8> {
        std::iter::from_fn(|| s.hand().map(|m| m.payload[0])).collect()
    }

    #[test]
    fn nothing_is_handed_before_connack_and_the_status_goes_first() {
        let mut s = session(8);
        s.push(call(1));
        assert!(s.hand().is_none());
        s.connected();
        assert_eq!(hand_all(&mut s), [b'o', 1]);
    }

    #[test]
    fn acks_out_of_order_complete_the_right_messages() {
        let mut s = session(8);
        s.connected();
        for b in 1..=3 {
            s.push(call(b));
        }
        hand_all(&mut s);
        for pkid in 1..=4 {
            s.written(pkid); // status = 1, calls 1..3 = 2..4
        }
        assert!(s.acked(3));
        assert!(s.acked(1));
        assert!(!s.acked(3), "an id is completed once");
        assert!(!s.acked(42), "an unknown id is ignored");
        assert_eq!(s.link().outbox.sent, 2);
        // Reconnect: only the unacknowledged calls 1 and 3 (ids 2 and 4) go again, in order.
        s.disconnected();
        s.connected();
        assert_eq!(hand_all(&mut s), [b'o', 1, 3]);
    }

    #[test]
    fn reconnect_resends_unacked_and_unwritten_in_their_order() {
        let mut s = session(8);
        s.connected();
        s.push(call(1));
        s.push(metric(2));
        s.push(call(3));
        s.push(call(4));
        hand_all(&mut s);
        s.written(1); // status
        s.written(2); // call 1: written, never acknowledged
        s.written(0); // metric 2, QoS 0: done on write
        // call 3 and call 4 were handed but never written (the flush failed).
        s.disconnected();
        s.push(call(5));
        s.connected();
        assert_eq!(hand_all(&mut s), [b'o', 1, 3, 4, 5]);
        assert_eq!(
            s.link().outbox.sent,
            1,
            "only the QoS 0 metric counted as sent"
        );
    }

    #[test]
    fn ids_from_a_dead_connection_do_not_complete_new_messages() {
        let mut s = session(8);
        s.connected();
        s.push(call(1));
        hand_all(&mut s);
        s.written(7);
        s.written(8);
        s.disconnected();
        s.connected();
        hand_all(&mut s);
        // A PUBACK for the old id 8 cannot complete anything now: nothing is written yet.
        assert!(!s.acked(8));
        s.written(1);
        s.written(2);
        assert!(s.acked(2));
        assert_eq!(s.pending(), 1, "the status (id 1) still awaits its ack");
    }

    #[test]
    fn at_most_max_unacked_are_with_the_client() {
        let mut s = session(2);
        s.connected();
        for b in 1..=5 {
            s.push(call(b));
        }
        assert_eq!(hand_all(&mut s), [b'o', 1]);
        s.written(1);
        s.written(2);
        assert!(s.hand().is_none());
        s.acked(2);
        assert_eq!(hand_all(&mut s), [2]);
    }

    #[test]
    fn an_unacked_message_stops_handing_before_its_packet_id_comes_round_again() {
        let mut s = Session::new(Outbox::new(200, 1 << 20), b"online".to_vec(), 8);
        s.connected();
        for b in 0..120u8 {
            s.push(call(b));
        }
        // The status (id 1) is never acknowledged; every call is, as soon as written.
        let mut pkid = 0u16;
        let mut handed = 0;
        while s.hand().is_some() {
            handed += 1;
            pkid = pkid % PKID_SPAN + 1;
            s.written(pkid);
            if pkid != 1 {
                assert!(s.acked(pkid));
            }
        }
        assert_eq!(
            handed,
            usize::from(PKID_SPAN) - 1,
            "ids 1..=99 in use once each"
        );
        assert!(s.acked(1));
        assert!(
            s.hand().is_some(),
            "the window moves on with the oldest ack"
        );
    }

    #[test]
    fn take_pending_returns_unacked_unwritten_and_queued_in_order() {
        let mut s = session(8);
        s.connected();
        for b in 1..=4 {
            s.push(call(b));
        }
        s.hand();
        s.hand();
        s.hand();
        s.written(1); // status
        s.written(2); // call 1, never acked
        let p: Vec<u8> = s.take_pending().iter().map(|m| m.payload[0]).collect();
        assert_eq!(p, [1, 2, 3, 4]);
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn unhanded_message_goes_first_next_time() {
        let mut s = session(8);
        s.connected();
        s.push(call(1));
        s.push(call(2));
        assert_eq!(s.hand().map(|m| m.payload[0]), Some(b'o'));
        s.unhand();
        assert_eq!(s.hand().map(|m| m.payload[0]), Some(b'o'));
        assert_eq!(s.hand().map(|m| m.payload[0]), Some(1));
        s.unhand();
        assert_eq!(hand_all(&mut s), [1, 2]);
    }

    #[test]
    fn a_full_outbox_drops_metrics_first_and_counts_them() {
        let mut s = Session::new(Outbox::new(16, 1 << 20), vec![0], 8);
        s.push(call(0));
        for b in 1..=20 {
            s.push(metric(b));
        }
        let l = s.link();
        assert_eq!(l.outbox.depth, 16);
        assert_eq!(l.outbox.dropped_metrics, 5);
        assert_eq!(l.outbox.dropped_calls, 0);
        s.connected();
        let out = hand_all(&mut s);
        assert_eq!(
            out[..3],
            [0, 0, 6],
            "status, the call, then the oldest metric kept"
        );
    }
}
