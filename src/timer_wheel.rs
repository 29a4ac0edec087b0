//! A per-second timer ring for the entries of one [`Table`](crate::table::Table), so the
//! once-a-second work visits only what is due instead of every slot.
//!
//! Why a ring and not the table's LRU lists: an entry's deadline is not one fixed
//! duration after its last touch. A call's depends on its state (setup 180 s, media grace
//! 30 s, no media 3600 s, linger 32 s, demotion 10 s, media-health thresholds), a stream's
//! on whether its call ended (2 s or 30 s) and on whether it had packets this second. A
//! class list would have to be walked past entries with a longer timeout.
//!
//! Each slot of the table has one link here (prev, next, due second), allocated at start;
//! bucket `due % BUCKETS` holds an intrusive doubly-linked list of the slots due that
//! second (or a later lap of the ring). Schedule and cancel are O(1) by slot number;
//! [`TimerWheel::pop_due`] looks at the buckets of the seconds that passed and only at
//! the entries in them. Deadlines are lazy: the owner schedules an entry no later than the
//! first second anything could happen to it, re-checks it when it pops and schedules it
//! again, so a touch that only moves a deadline later (a packet, a message) costs nothing.

/// "No slot" in the lists (the same value as `table::NIL`; not imported: same layer).
const NIL: u32 = u32::MAX;

/// Seconds the ring covers in one lap (a power of two). Longer deadlines wait in their
/// bucket and are looked at once per lap.
pub const BUCKETS: usize = 4096;
/// `due` of an entry that is not scheduled.
const UNSCHEDULED: u64 = u64::MAX;

#[derive(Debug, Clone, Copy)]
struct Link {
    prev: u32,
    next: u32,
    due: u64,
}

const NONE: Link = Link {
    prev: NIL,
    next: NIL,
    due: UNSCHEDULED,
};

pub struct TimerWheel {
    links: Vec<Link>,
    heads: Vec<u32>,
    /// The first second not yet popped: an entry scheduled earlier pops at the next pop.
    next: u64,
    /// Entries looked at by [`TimerWheel::pop_due`], ever (the O(due) claim, checked by
    /// tests).
    work: u64,
}

/// The second (of packet time) at which `now > from + after` can first hold, from
/// microseconds (saturating: a garbage timestamp never wraps or panics).
pub fn second_after(from_us: u64, after_us: u64) -> u64 {
    from_us.saturating_add(after_us) / 1_000_000
}

impl TimerWheel {
    /// Room for slots `0..capacity`; all storage allocated now.
    pub fn new(capacity: usize) -> TimerWheel {
        TimerWheel {
            links: vec![NONE; capacity.max(1)],
            heads: vec![NIL; BUCKETS],
            next: 0,
            work: 0,
        }
    }

    /// Heap bytes `new(capacity)` allocates.
    pub fn memory_bytes(capacity: usize) -> usize {
        capacity.max(1) * core::mem::size_of::<Link>() + BUCKETS * core::mem::size_of::<u32>()
    }

    /// Entries looked at while popping, since construction.
    pub fn work(&self) -> u64 {
        self.work
    }

    /// When `slot` is due (`None`: not scheduled).
    pub fn due(&self, slot: u32) -> Option<u64> {
        self.links
            .get(slot as usize)
            .map(|l| l.due)
            .filter(|&d| d != UNSCHEDULED)
    }

    /// Schedules `slot` for second `due` (replacing any earlier schedule). A second
    /// already popped means the next pop. O(1).
    pub fn schedule(&mut self, slot: u32, due: u64) {
        if slot as usize >= self.links.len() {
            return;
        }
        self.cancel(slot);
        let due = due.max(self.next).min(UNSCHEDULED - 1);
        let b = (due as usize) & (BUCKETS - 1);
        let Some(&head) = self.heads.get(b) else {
            return;
        };
        if let Some(l) = self.links.get_mut(slot as usize) {
            *l = Link {
                prev: NIL,
                next: head,
                due,
            };
        }
        if let Some(h) = self.links.get_mut(head as usize) {
            h.prev = slot;
        }
        if let Some(h) = self.heads.get_mut(b) {
            *h = slot;
        }
    }

    /// Schedules `slot` for second `due` unless it is already due by then. O(1), and
    /// nothing but a comparison when it is (the common case on the packet path).
    pub fn schedule_by(&mut self, slot: u32, due: u64) {
        let due = due.max(self.next);
        if self.due(slot).is_some_and(|d| d <= due) {
            return;
        }
        self.schedule(slot, due);
    }

    /// Unschedules `slot`. O(1).
    pub fn cancel(&mut self, slot: u32) {
        let Some(&Link { prev, next, due }) = self.links.get(slot as usize) else {
            return;
        };
        if due == UNSCHEDULED {
            return;
        }
        match self.links.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => {
                let b = (due as usize) & (BUCKETS - 1);
                if let Some(h) = self.heads.get_mut(b) {
                    *h = next;
                }
            }
        }
        if let Some(n) = self.links.get_mut(next as usize) {
            n.prev = prev;
        }
        if let Some(l) = self.links.get_mut(slot as usize) {
            *l = NONE;
        }
    }

    /// Unschedules every slot due at or before second `now` and appends it to `out`, in
    /// no particular order (the caller sorts to keep slot order). Looks only at the
    /// buckets of the seconds since the last pop (each bucket at most once, however far
    /// time jumped) and at the entries in them.
    ///
    /// `out` must have room for every slot (capacity): then it never reallocates.
    pub fn pop_due(&mut self, now: u64, out: &mut Vec<u32>) {
        if now < self.next {
            return;
        }
        let span = (now - self.next).saturating_add(1);
        let buckets = if span >= BUCKETS as u64 {
            BUCKETS
        } else {
            span as usize
        };
        let first = self.next as usize;
        for i in 0..buckets {
            let b = first.wrapping_add(i) & (BUCKETS - 1);
            let mut at = self.heads.get(b).copied().unwrap_or(NIL);
            while let Some(&l) = self.links.get(at as usize) {
                self.work += 1;
                if l.due <= now {
                    if out.len() < out.capacity() {
                        self.cancel(at);
                        out.push(at);
                    } else {
                        // Cannot happen with room for every slot; never lose an entry.
                        debug_assert!(false, "timer pop buffer too small");
                        self.schedule(at, now.saturating_add(1));
                    }
                }
                at = l.next;
            }
        }
        self.next = now.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn popped(w: &mut TimerWheel, now: u64) -> Vec<u32> {
        let mut out = Vec::with_capacity(w.links.len());
        w.pop_due(now, &mut out);
        out.sort_unstable();
        out
    }

    #[test]
    fn entries_pop_in_the_second_they_are_due_and_only_once() {
        let mut w = TimerWheel::new(8);
        w.schedule(3, 10);
        w.schedule(1, 10);
        w.schedule(5, 12);
        assert_eq!(popped(&mut w, 9), [] as [u32; 0]);
        assert_eq!(popped(&mut w, 10), [1, 3]);
        assert_eq!(popped(&mut w, 11), [] as [u32; 0]);
        assert_eq!(popped(&mut w, 12), [5]);
        assert_eq!(w.due(5), None);
    }

    #[test]
    fn rescheduling_cancelling_and_schedule_by_keep_the_lists_consistent() {
        let mut w = TimerWheel::new(8);
        for s in 0..8 {
            w.schedule(s, 20);
        }
        w.cancel(0); // a head
        w.cancel(4); // a middle
        w.schedule(7, 30); // the tail moves away
        w.schedule_by(6, 40); // later: no change
        assert_eq!(w.due(6), Some(20));
        w.schedule_by(5, 15); // earlier: moved
        assert_eq!(popped(&mut w, 15), [5]);
        assert_eq!(popped(&mut w, 20), [1, 2, 3, 6]);
        assert_eq!(popped(&mut w, 30), [7]);
        // A second already popped means the next pop.
        w.schedule(2, 3);
        assert_eq!(popped(&mut w, 31), [2]);
    }

    #[test]
    fn deadlines_beyond_one_lap_wait_and_a_jump_looks_at_each_bucket_once() {
        let mut w = TimerWheel::new(4);
        let far = BUCKETS as u64 * 3 + 7;
        w.schedule(0, far);
        w.schedule(1, 7);
        assert_eq!(popped(&mut w, 7), [1]);
        assert_eq!(popped(&mut w, far - 1), [] as [u32; 0]);
        assert_eq!(popped(&mut w, far), [0]);
        // Jumping a million seconds visits each of the ring's buckets once, not a million.
        w.schedule(2, far + 5);
        let before = w.work();
        assert_eq!(popped(&mut w, far + 1_000_000), [2]);
        assert_eq!(w.work() - before, 1);
    }

    #[test]
    fn idle_entries_cost_nothing_until_due() {
        let mut w = TimerWheel::new(10_000);
        for s in 0..10_000 {
            w.schedule(s, 100);
        }
        for now in 1..100 {
            assert!(popped(&mut w, now).is_empty());
        }
        assert_eq!(w.work(), 0);
        assert_eq!(popped(&mut w, 100).len(), 10_000);
        assert_eq!(w.work(), 10_000);
    }

    #[test]
    fn out_of_range_slots_and_huge_deadlines_are_harmless() {
        let mut w = TimerWheel::new(2);
        w.schedule(9, 1);
        w.cancel(9);
        assert_eq!(w.due(9), None);
        w.schedule(0, u64::MAX);
        assert_eq!(popped(&mut w, u64::MAX - 1), [0]);
        assert_eq!(second_after(u64::MAX, 5), u64::MAX / 1_000_000);
    }
}
