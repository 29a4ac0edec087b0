//! Per-call lists of a call's streams and endpoints, so that closing or forgetting a call
//! costs its own entries, not a walk of the whole stream or endpoint table.
//!
//! The call table hands the media side a [`CallRef`]: the call's serial and its slot in
//! the call table. The list heads live here in an array indexed by that slot (allocated
//! once, sized to the call table; one for streams, one for endpoints); the links live in the members themselves (a [`Chain`]
//! in each stream and endpoint), as slot numbers of their own table. A head is valid only
//! for the serial that opened it, so a reused call slot never adopts a previous call's
//! entries.

use crate::table::{NIL, Table};

/// A call as the media side knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallRef {
    pub serial: u64,
    /// The call's slot in the call table.
    pub slot: u32,
}

/// A member's links in its call's list (slot numbers in the member's own table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Chain {
    prev: u32,
    next: u32,
}

impl Chain {
    pub const NONE: Chain = Chain {
        prev: NIL,
        next: NIL,
    };
}

/// Something that can be on a call's list.
pub(super) trait Member {
    /// The call whose list it is on (if any).
    fn owner(&self) -> Option<CallRef>;
    fn chain(&mut self) -> &mut Chain;
}

#[derive(Debug, Clone, Copy)]
struct Heads {
    serial: u64,
    first: u32,
}

const EMPTY: Heads = Heads {
    serial: 0,
    first: NIL,
};

pub(super) struct CallLinks {
    heads: Vec<Heads>,
}

impl CallLinks {
    pub fn new(calls: usize) -> CallLinks {
        CallLinks {
            heads: vec![EMPTY; calls.max(1)],
        }
    }

    pub fn memory_bytes(calls: usize) -> usize {
        calls.max(1) * core::mem::size_of::<Heads>()
    }

    fn head(&mut self, call: CallRef) -> Option<&mut u32> {
        let h = self.heads.get_mut(call.slot as usize)?;
        (h.serial == call.serial).then_some(&mut h.first)
    }

    /// Call `call` now owns its slot's lists. If another call owned them, its first
    /// members are returned so the caller can detach them (see [`CallLinks::first`]).
    pub fn open(&mut self, call: CallRef) -> Option<CallRef> {
        let h = self.heads.get_mut(call.slot as usize)?;
        if h.serial == call.serial {
            return None;
        }
        let previous = (h.serial != 0 && h.first != NIL).then_some(CallRef {
            serial: h.serial,
            slot: call.slot,
        });
        if previous.is_none() {
            *h = Heads {
                serial: call.serial,
                first: NIL,
            };
        }
        previous
    }

    /// Releases a call's lists once they are empty (its slot may then be reopened).
    pub fn release(&mut self, call: CallRef) {
        if let Some(h) = self.heads.get_mut(call.slot as usize)
            && h.serial == call.serial
            && h.first == NIL
        {
            *h = EMPTY;
        }
    }

    /// The first member of a call's list.
    pub fn first(&self, call: CallRef) -> Option<u32> {
        let h = self.heads.get(call.slot as usize)?;
        (h.serial == call.serial && h.first != NIL).then_some(h.first)
    }

    /// The member after `slot` on its call's list.
    pub fn next<K: core::hash::Hash + Eq + Clone, V: Member>(
        t: &mut Table<K, V>,
        slot: u32,
    ) -> Option<u32> {
        let n = t.by_slot_mut(slot)?.1.chain().next;
        (n != NIL).then_some(n)
    }

    /// Puts the entry at `slot` first on its owner's list (if its owner's lists are open).
    pub fn push<K: core::hash::Hash + Eq + Clone, V: Member>(
        &mut self,
        t: &mut Table<K, V>,
        slot: u32,
    ) {
        let Some(owner) = t.by_slot(slot).and_then(|(_, v)| v.owner()) else {
            return;
        };
        let Some(head) = self.head(owner) else {
            return;
        };
        let old = *head;
        *head = slot;
        if let Some((_, v)) = t.by_slot_mut(slot) {
            *v.chain() = Chain {
                prev: NIL,
                next: old,
            };
        }
        if let Some((_, v)) = t.by_slot_mut(old) {
            v.chain().prev = slot;
        }
    }

    /// Takes the entry at `slot` (still in `t`) off its owner's list.
    pub fn unlink<K: core::hash::Hash + Eq + Clone, V: Member>(
        &mut self,
        t: &mut Table<K, V>,
        slot: u32,
    ) {
        let Some((_, v)) = t.by_slot_mut(slot) else {
            return;
        };
        let owner = v.owner();
        let chain = core::mem::replace(v.chain(), Chain::NONE);
        self.splice_out(t, slot, owner, chain);
    }

    /// Takes `removed`, just removed from `slot` of `t` (which may already hold its
    /// replacement, not yet on any list), off its owner's list.
    pub fn unlink_removed<K: core::hash::Hash + Eq + Clone, V: Member>(
        &mut self,
        t: &mut Table<K, V>,
        slot: u32,
        removed: &mut V,
    ) {
        let owner = removed.owner();
        let chain = core::mem::replace(removed.chain(), Chain::NONE);
        self.splice_out(t, slot, owner, chain);
    }

    fn splice_out<K: core::hash::Hash + Eq + Clone, V: Member>(
        &mut self,
        t: &mut Table<K, V>,
        slot: u32,
        owner: Option<CallRef>,
        chain: Chain,
    ) {
        if let Some((_, p)) = t.by_slot_mut(chain.prev) {
            p.chain().next = chain.next;
        } else if let Some(head) = owner.and_then(|o| self.head(o))
            && *head == slot
        {
            *head = chain.next;
        }
        if let Some((_, n)) = t.by_slot_mut(chain.next) {
            n.chain().prev = chain.prev;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct M {
        owner: Option<CallRef>,
        chain: Chain,
    }

    impl Member for M {
        fn owner(&self) -> Option<CallRef> {
            self.owner
        }
        fn chain(&mut self) -> &mut Chain {
            &mut self.chain
        }
    }

    fn call(serial: u64, slot: u32) -> CallRef {
        CallRef { serial, slot }
    }

    fn members(links: &CallLinks, t: &mut Table<u32, M>, c: CallRef) -> Vec<u32> {
        let mut v = vec![];
        let mut at = links.first(c);
        while let Some(s) = at {
            v.push(*t.by_slot(s).unwrap().0);
            at = CallLinks::next(t, s);
        }
        v
    }

    fn add(links: &mut CallLinks, t: &mut Table<u32, M>, k: u32, c: CallRef) {
        let m = M {
            owner: Some(c),
            chain: Chain::NONE,
        };
        if let crate::table::Inserted::Evicted(_, mut gone) = t.insert(k, m, 0, 1) {
            let slot = t.slot_of(&k).unwrap();
            links.unlink_removed(t, slot, &mut gone);
        }
        let slot = t.slot_of(&k).unwrap();
        links.push(t, slot);
    }

    #[test]
    fn each_call_lists_only_its_own_members_through_removals_and_evictions() {
        let mut t: Table<u32, M> = Table::new("t", 6);
        let mut links = CallLinks::new(4);
        let (a, b) = (call(1, 0), call(2, 3));
        links.open(a);
        links.open(b);
        for k in [10, 11, 12] {
            add(&mut links, &mut t, k, a);
        }
        for k in [20, 21, 22] {
            add(&mut links, &mut t, k, b);
        }
        assert_eq!(members(&links, &mut t, a), [12, 11, 10]);
        assert_eq!(members(&links, &mut t, b), [22, 21, 20]);
        // A middle member leaves.
        let s = t.slot_of(&11).unwrap();
        links.unlink(&mut t, s);
        t.remove_slot(s);
        assert_eq!(members(&links, &mut t, a), [12, 10]);
        // Full table: the least recently used (10, a's last) is evicted for b's 23.
        add(&mut links, &mut t, 24, b);
        add(&mut links, &mut t, 23, b);
        assert!(!t.contains(&10));
        assert_eq!(members(&links, &mut t, a), [12]);
        assert_eq!(members(&links, &mut t, b), [23, 24, 22, 21, 20]);
    }

    #[test]
    fn a_reused_call_slot_never_adopts_the_previous_calls_members() {
        let mut t: Table<u32, M> = Table::new("t", 4);
        let mut links = CallLinks::new(2);
        let old = call(7, 1);
        links.open(old);
        add(&mut links, &mut t, 1, old);
        let new = call(8, 1);
        assert_eq!(
            links.open(new),
            Some(old),
            "the old call's members are reported"
        );
        assert_eq!(links.first(new), None);
        // Detach the old call's members, then the slot is the new call's.
        while let Some(s) = links.first(old) {
            links.unlink(&mut t, s);
        }
        links.release(old);
        assert_eq!(links.open(new), None);
        add(&mut links, &mut t, 2, new);
        assert_eq!(members(&links, &mut t, new), [2]);
        assert_eq!(links.first(old), None);
    }
}
