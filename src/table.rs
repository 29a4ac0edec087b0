//! The one fixed-capacity table every layer reuses (calls, media endpoints, RTP streams,
//! IP fragments, TCP streams).
//!
//! Why not `heapless::IndexMap`: its storage lives inline, so a table of a few thousand
//! call records cannot even be built on a thread stack. This table allocates its storage
//! **once**, at construction, writes every page of it then (so resident memory is flat
//! from the first second instead of growing as pages are first used), and never
//! allocates again:
//!
//! * `slots` holds the entries; freed slots go on a free list; iteration is in slot order,
//!   so output order never depends on the hash seed (replays stay byte-identical);
//! * `index` maps a key's hash to its slot number (a `hashbrown::HashTable<u32>`: 4 bytes
//!   a bucket, keys compared in `slots`). It has room for twice the capacity while holding
//!   at most `capacity` slots: hashbrown then always rehashes tombstones in place and never
//!   reallocates (checked by the zero-allocation test). Its hasher is foldhash with a
//!   per-process random seed: hostile keys cannot be precomputed to collide;
//! * every entry is in exactly one of [`CLASSES`] intrusive doubly-linked lists (slot
//!   numbers in `links`, no allocation), least recently used first. The caller gives each
//!   entry an eviction class (lower goes first) and [`Table::touch`]es it on use.
//!
//! When the table is full, [`Table::insert`] evicts the least recently used entry of the
//! lowest non-empty class the caller allows, in O(1): no scan. If all allowed classes are
//! empty the new entry is rejected. Every insert, eviction (by class), rejection and removal
//! is counted in [`TableStats`]. The class lists double as timeout queues: the head of a
//! class is its entry idle longest, so expiry walks only what expires.
// No panic on packet data by construction: every index, unwrap and expect is a checked
// one (`get`, `?`, `let else`); tests may panic.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

use core::hash::{BuildHasher, Hash};
use hashbrown::HashTable;
use serde::Serialize;

/// Eviction classes a table keeps (0 is evicted first).
pub const CLASSES: usize = 5;
/// "No slot" in the intrusive lists.
pub const NIL: u32 = u32::MAX;
/// Page size assumed when writing storage at construction.
pub const PAGE: usize = 4096;

/// Counters every table keeps; published in `summary` and `health`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TableStats {
    pub capacity: u32,
    pub len: u32,
    /// Highest `len` ever seen.
    pub high_water: u32,
    pub inserted: u64,
    /// Entries removed to make room for a new one.
    pub evicted: u64,
    /// New entries refused because the table was full and nothing could be evicted.
    pub rejected: u64,
    /// `evicted`, by the class the victim was in (the table's owner documents its classes).
    #[serde(default)]
    pub evicted_by_class: [u64; CLASSES],
    /// Heap bytes per slot (entry, lists, free list, index), all allocated at start.
    #[serde(default)]
    pub bytes_per_slot: u32,
}

#[derive(Debug, Clone, Copy)]
struct Link {
    prev: u32,
    next: u32,
    class: u8,
}

const UNLINKED: Link = Link {
    prev: NIL,
    next: NIL,
    class: 0,
};

/// The table. `K` is the lookup key, `V` the record.
pub struct Table<K, V> {
    name: &'static str,
    slots: Vec<Option<(K, V)>>,
    links: Vec<Link>,
    heads: [u32; CLASSES],
    tails: [u32; CLASSES],
    free: Vec<u32>,
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    stats: TableStats,
    /// Entries looked at to choose victims, ever (the O(1) claim, checked by tests).
    victim_work: u64,
}

/// Result of [`Table::insert`].
#[derive(Debug, PartialEq, Eq)]
pub enum Inserted<K, V> {
    /// Stored in a free slot.
    Stored,
    /// Stored after evicting this entry (returned so the caller can report it).
    Evicted(K, V),
    /// Not stored: the table is full and nothing may be evicted. The record comes back.
    Rejected(K, V),
}

impl<K: Hash + Eq + Clone, V> Table<K, V> {
    /// Allocates and writes all storage for `capacity` entries now; nothing is allocated
    /// later.
    pub fn new(name: &'static str, capacity: usize) -> Self {
        let capacity = capacity.clamp(1, u32::MAX as usize / 4);
        let mut slots = Vec::with_capacity(capacity);
        slots.resize_with(capacity, || None);
        // Every page now holds a written `None` as long as a slot is at most a page
        // (`track::tracker`'s test `slot_sizes_fit_in_a_page` checks every table's).
        // Free list popped from the end: hand out slot 0 first.
        let free: Vec<u32> = (0..capacity as u32).rev().collect();
        let mut index = HashTable::with_capacity(capacity * 2);
        // Write the bucket array once (spread hashes, then forget them): its pages are
        // resident from now on.
        for i in 0..capacity as u64 {
            index.insert_unique(i.wrapping_mul(0x9E37_79B9_7F4A_7C15), 0u32, |_| 0);
        }
        index.clear();
        Table {
            name,
            slots,
            links: vec![UNLINKED; capacity],
            heads: [NIL; CLASSES],
            tails: [NIL; CLASSES],
            free,
            index,
            hasher: Default::default(),
            victim_work: 0,
            stats: TableStats {
                capacity: capacity as u32,
                bytes_per_slot: Self::memory_bytes(capacity).div_ceil(capacity) as u32,
                ..TableStats::default()
            },
        }
    }

    /// Heap bytes a table of `capacity` entries allocates (slots, lists, free list,
    /// index), so a board's capacities can be checked against its memory before anything
    /// is allocated.
    pub fn memory_bytes(capacity: usize) -> usize {
        let capacity = capacity.clamp(1, u32::MAX as usize / 4);
        // hashbrown: buckets = next power of two of 8/7 of the requested capacity; each
        // bucket holds a u32 plus one control byte.
        let buckets = (capacity * 2 * 8 / 7).next_power_of_two();
        capacity * core::mem::size_of::<Option<(K, V)>>()
            + capacity * core::mem::size_of::<Link>()
            + capacity * core::mem::size_of::<u32>()
            + buckets * (core::mem::size_of::<u32>() + 1)
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
    pub fn len(&self) -> usize {
        self.index.len()
    }
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
    pub fn is_full(&self) -> bool {
        self.free.is_empty()
    }
    pub fn stats(&self) -> TableStats {
        TableStats {
            len: self.len() as u32,
            ..self.stats
        }
    }

    /// Entries examined to choose victims since construction.
    pub fn victim_work(&self) -> u64 {
        self.victim_work
    }

    fn hash(&self, k: &K) -> u64 {
        self.hasher.hash_one(k)
    }

    /// Slot number of a key: stable while the entry lives; usable as a cheap handle.
    pub fn slot_of(&self, k: &K) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(self.hash(k), |&s| key_is(slots, s, k))
            .copied()
    }

    pub fn contains(&self, k: &K) -> bool {
        self.slot_of(k).is_some()
    }

    pub fn get(&self, k: &K) -> Option<&V> {
        self.by_slot(self.slot_of(k)?).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        let slot = self.slot_of(k)?;
        self.by_slot_mut(slot).map(|(_, v)| v)
    }

    pub fn by_slot(&self, slot: u32) -> Option<(&K, &V)> {
        self.slots.get(slot as usize)?.as_ref().map(|(k, v)| (k, v))
    }

    pub fn by_slot_mut(&mut self, slot: u32) -> Option<(&K, &mut V)> {
        self.slots
            .get_mut(slot as usize)?
            .as_mut()
            .map(|(k, v)| (&*k, v))
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        let slot = self.slot_of(k)?;
        self.remove_slot(slot).map(|(_, v)| v)
    }

    /// Removes `k` for a caller that does not want its value (see [`Table::discard_slot`]).
    pub fn discard(&mut self, k: &K) -> bool {
        self.slot_of(k).is_some_and(|slot| self.discard_slot(slot))
    }

    /// Removes by slot, dropping the entry where it lies: moving it out, as
    /// [`Table::remove_slot`] does, copies the whole slot (up to ~1 KB) for nothing when
    /// the caller only wants it gone. Whether there was one.
    pub fn discard_slot(&mut self, slot: u32) -> bool {
        let Some(Some((k, _))) = self.slots.get(slot as usize) else {
            return false;
        };
        let hash = self.hash(k);
        if let Ok(e) = self.index.find_entry(hash, |&s| s == slot) {
            e.remove();
        }
        if let Some(entry) = self.slots.get_mut(slot as usize) {
            *entry = None;
        }
        self.unlink(slot);
        self.free.push(slot);
        true
    }

    /// Removes by slot; returns the entry.
    pub fn remove_slot(&mut self, slot: u32) -> Option<(K, V)> {
        let (k, v) = self.slots.get_mut(slot as usize)?.take()?;
        let hash = self.hash(&k);
        if let Ok(e) = self.index.find_entry(hash, |&s| s == slot) {
            e.remove();
        }
        self.unlink(slot);
        self.free.push(slot);
        Some((k, v))
    }

    /// Inserts `(k, v)` in eviction class `class` (most recently used). If `k` is present
    /// its value is replaced (and re-classed). When the table is full, the least recently
    /// used entry of the lowest non-empty class below `evictable` is evicted; with none,
    /// the new entry is rejected. O(1).
    pub fn insert(&mut self, k: K, v: V, class: u8, evictable: u8) -> Inserted<K, V> {
        let class = class.min(CLASSES as u8 - 1);
        if let Some(slot) = self.slot_of(&k) {
            if let Some(entry) = self.slots.get_mut(slot as usize) {
                *entry = Some((k, v));
            }
            self.set_class(slot, class);
            return Inserted::Stored;
        }
        let mut evicted = None;
        if self.free.is_empty() {
            let victim = (0..(evictable as usize).min(CLASSES))
                .find_map(|c| Some((c, *self.heads.get(c)?)).filter(|(_, h)| *h != NIL));
            self.victim_work += 1;
            let Some((c, slot)) = victim else {
                self.stats.rejected += 1;
                return Inserted::Rejected(k, v);
            };
            evicted = self.remove_slot(slot);
            self.stats.evicted += 1;
            if let Some(n) = self.stats.evicted_by_class.get_mut(c) {
                *n += 1;
            }
        }
        self.store(k, v, class, evicted)
    }

    fn store(&mut self, k: K, v: V, class: u8, evicted: Option<(K, V)>) -> Inserted<K, V> {
        let Some(slot) = self.free.pop() else {
            self.stats.rejected += 1;
            return Inserted::Rejected(k, v);
        };
        let hash = self.hash(&k);
        let Table {
            slots,
            index,
            hasher,
            ..
        } = self;
        index.insert_unique(hash, slot, |&s| {
            slots
                .get(s as usize)
                .and_then(|e| e.as_ref())
                .map_or(0, |(k, _)| hasher.hash_one(k))
        });
        if let Some(entry) = self.slots.get_mut(slot as usize) {
            *entry = Some((k, v));
        }
        self.link_tail(slot, class);
        self.stats.inserted += 1;
        let len = self.index.len() as u32;
        if len > self.stats.high_water {
            self.stats.high_water = len;
        }
        match evicted {
            Some((k, v)) => Inserted::Evicted(k, v),
            None => Inserted::Stored,
        }
    }

    /// Marks an entry just used: it becomes the last of its class to be evicted. O(1).
    pub fn touch(&mut self, slot: u32) {
        if let Some(c) = self.class_of(slot) {
            self.set_class(slot, c);
        }
    }

    /// Moves an entry to class `class` (as its most recently used). O(1).
    pub fn set_class(&mut self, slot: u32, class: u8) {
        if self.by_slot(slot).is_none() {
            return;
        }
        let class = class.min(CLASSES as u8 - 1);
        if self.tails.get(class as usize) == Some(&slot) {
            return; // already the most recent of that class
        }
        self.unlink(slot);
        self.link_tail(slot, class);
    }

    /// The class an entry is in.
    pub fn class_of(&self, slot: u32) -> Option<u8> {
        self.by_slot(slot)?;
        self.links.get(slot as usize).map(|l| l.class)
    }

    /// The least recently used entry of `class` (the next to be evicted or to time out).
    pub fn lru(&self, class: u8) -> Option<u32> {
        self.heads
            .get(class as usize)
            .copied()
            .filter(|&h| h != NIL)
    }

    /// The entry used after `slot` in `slot`'s class.
    pub fn next_lru(&self, slot: u32) -> Option<u32> {
        self.by_slot(slot)?;
        self.links
            .get(slot as usize)
            .map(|l| l.next)
            .filter(|&n| n != NIL)
    }

    fn unlink(&mut self, slot: u32) {
        let Some(&Link { prev, next, class }) = self.links.get(slot as usize) else {
            return;
        };
        let c = class as usize;
        match self.links.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => {
                if self.heads.get(c) == Some(&slot)
                    && let Some(h) = self.heads.get_mut(c)
                {
                    *h = next;
                }
            }
        }
        match self.links.get_mut(next as usize) {
            Some(n) => n.prev = prev,
            None => {
                if self.tails.get(c) == Some(&slot)
                    && let Some(t) = self.tails.get_mut(c)
                {
                    *t = prev;
                }
            }
        }
        if let Some(l) = self.links.get_mut(slot as usize) {
            *l = UNLINKED;
        }
    }

    fn link_tail(&mut self, slot: u32, class: u8) {
        let c = class as usize;
        let (Some(&tail), Some(_)) = (self.tails.get(c), self.links.get(slot as usize)) else {
            return;
        };
        if let Some(l) = self.links.get_mut(slot as usize) {
            *l = Link {
                prev: tail,
                next: NIL,
                class,
            };
        }
        match self.links.get_mut(tail as usize) {
            Some(t) => t.next = slot,
            None => {
                if let Some(h) = self.heads.get_mut(c) {
                    *h = slot;
                }
            }
        }
        if let Some(t) = self.tails.get_mut(c) {
            *t = slot;
        }
    }

    /// Entries in slot order (deterministic for a given input history).
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.slots
            .iter()
            .filter_map(|e| e.as_ref().map(|(k, v)| (k, v)))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.slots
            .iter_mut()
            .filter_map(|e| e.as_mut().map(|(k, v)| (&*k, v)))
    }

    /// Occupied slot numbers, ascending. Lets a caller walk the table while it mutates
    /// other state, without collecting (no allocation).
    pub fn next_slot(&self, from: u32) -> Option<u32> {
        self.slots
            .iter()
            .enumerate()
            .skip(from as usize)
            .find(|(_, e)| e.is_some())
            .map(|(i, _)| i as u32)
    }
}

fn key_is<K: Eq, V>(slots: &[Option<(K, V)>], slot: u32, k: &K) -> bool {
    slots
        .get(slot as usize)
        .and_then(|e| e.as_ref())
        .is_some_and(|(ek, _)| ek == k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_table_evicts_the_least_recently_used_of_the_lowest_class() {
        let mut t: Table<u32, u32> = Table::new("t", 4);
        assert_eq!(t.insert(1, 10, 2, 3), Inserted::Stored);
        assert_eq!(t.insert(2, 20, 1, 3), Inserted::Stored);
        assert_eq!(t.insert(3, 30, 1, 3), Inserted::Stored);
        assert_eq!(t.insert(4, 40, 2, 3), Inserted::Stored);
        // Class 1 goes first, oldest first: 2, then 3; then class 2: 1, then 4.
        assert_eq!(t.insert(5, 50, 3, 3), Inserted::Evicted(2, 20));
        assert_eq!(t.insert(6, 60, 3, 3), Inserted::Evicted(3, 30));
        assert_eq!(t.insert(7, 70, 3, 3), Inserted::Evicted(1, 10));
        assert_eq!(t.insert(8, 80, 3, 3), Inserted::Evicted(4, 40));
        // Only class 3 is left and the caller may evict below 3: rejected.
        assert_eq!(t.insert(9, 90, 0, 3), Inserted::Rejected(9, 90));
        let s = t.stats();
        assert_eq!(s.evicted_by_class, [0, 2, 2, 0, 0]);
        assert_eq!((s.len, s.inserted, s.evicted, s.rejected), (4, 8, 4, 1));
        assert_eq!(s.high_water, 4);
    }

    #[test]
    fn touch_and_set_class_reorder_the_victims() {
        let mut t: Table<u32, ()> = Table::new("t", 3);
        for k in 1..=3 {
            t.insert(k, (), 0, 1);
        }
        t.touch(t.slot_of(&1).unwrap());
        assert_eq!(t.insert(4, (), 0, 1), Inserted::Evicted(2, ()));
        // 3 promoted to class 1: 1 is now the only class-0 entry besides 4, and oldest.
        t.set_class(t.slot_of(&3).unwrap(), 1);
        assert_eq!(t.class_of(t.slot_of(&3).unwrap()), Some(1));
        assert_eq!(t.insert(5, (), 0, 1), Inserted::Evicted(1, ()));
        assert_eq!(t.insert(6, (), 0, 1), Inserted::Evicted(4, ()));
        assert_eq!(t.insert(7, (), 0, 1), Inserted::Evicted(5, ()));
        // Walk a class in LRU order.
        let mut order = vec![];
        let mut at = t.lru(0);
        while let Some(s) = at {
            order.push(*t.by_slot(s).unwrap().0);
            at = t.next_lru(s);
        }
        assert_eq!(order, [6, 7]);
        assert_eq!(t.lru(1).map(|s| *t.by_slot(s).unwrap().0), Some(3));
    }

    #[test]
    fn removing_entries_keeps_the_lists_consistent() {
        let mut t: Table<u32, ()> = Table::new("t", 8);
        for k in 0..8 {
            t.insert(k, (), (k % 2) as u8, 2);
        }
        // Remove a head, a middle and a tail of class 0 (0, 2, 4, 6).
        assert_eq!(t.remove(&0), Some(()));
        assert_eq!(t.remove(&4), Some(()));
        assert_eq!(t.remove(&6), Some(()));
        let mut at = t.lru(0);
        let mut left = vec![];
        while let Some(s) = at {
            left.push(*t.by_slot(s).unwrap().0);
            at = t.next_lru(s);
        }
        assert_eq!(left, [2]);
        t.remove(&2);
        assert_eq!(t.lru(0), None);
        t.insert(9, (), 0, 2);
        assert_eq!(t.lru(0).map(|s| *t.by_slot(s).unwrap().0), Some(9));
    }

    #[test]
    fn a_discarded_entry_is_gone_from_index_lists_and_slots_as_a_removed_one() {
        let mut t: Table<u32, [u8; 512]> = Table::new("t", 3);
        for k in 0..3 {
            t.insert(k, [k as u8; 512], 0, 1);
        }
        let s1 = t.slot_of(&1).unwrap();
        assert!(t.discard_slot(s1));
        assert!(!t.discard_slot(s1), "already empty");
        assert!(t.discard(&0));
        assert!(!t.discard(&0));
        assert_eq!((t.len(), t.get(&1), t.get(&0)), (1, None, None));
        // The lists hold 2 alone; both slots are free for new keys, no eviction.
        assert_eq!(t.lru(0).map(|s| *t.by_slot(s).unwrap().0), Some(2));
        assert_eq!(t.insert(7, [7; 512], 0, 1), Inserted::Stored);
        assert_eq!(t.insert(8, [8; 512], 0, 1), Inserted::Stored);
        assert_eq!(t.get(&2).map(|v| v[0]), Some(2));
    }

    #[test]
    fn eviction_work_does_not_grow_with_the_table() {
        // 20,000 inserts into a full 10,000-entry table, half of it protected in class 4:
        // each eviction looks at one list head, wherever the victims are.
        let mut t: Table<u32, ()> = Table::new("t", 10_000);
        for k in 0..10_000u32 {
            t.insert(k, (), if k % 2 == 0 { 4 } else { 0 }, 4);
        }
        for k in 10_000..30_000u32 {
            assert!(matches!(t.insert(k, (), 0, 4), Inserted::Evicted(..)));
        }
        assert_eq!(t.victim_work(), 20_000);
        assert_eq!(t.stats().evicted_by_class[0], 20_000);
        assert_eq!(t.len(), 10_000);
    }

    #[test]
    fn iteration_follows_slot_order_and_slots_are_reused() {
        let mut t: Table<&str, u8> = Table::new("t", 4);
        for (i, k) in ["a", "b", "c"].into_iter().enumerate() {
            t.insert(k, i as u8, 0, 1);
        }
        assert_eq!(t.remove(&"b"), Some(1));
        t.insert("d", 9, 0, 1);
        let keys: Vec<_> = t.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["a", "d", "c"]);
        assert_eq!(t.next_slot(0), Some(0));
        assert_eq!(t.next_slot(3), None);
    }

    #[test]
    fn replacing_an_existing_key_keeps_its_slot() {
        let mut t: Table<u8, u8> = Table::new("t", 1);
        t.insert(7, 1, 0, 0);
        assert_eq!(t.insert(7, 2, 0, 0), Inserted::Stored);
        assert_eq!(t.get(&7), Some(&2));
        assert_eq!(t.stats().inserted, 1);
    }

    #[test]
    fn many_keys_with_removals_never_lose_an_entry() {
        // Churn far past the capacity with removals in between: the index (in-place
        // tombstone rehash) and the lists must agree with the slots throughout.
        let mut t: Table<u64, u64> = Table::new("t", 512);
        for k in 0..20_000u64 {
            t.insert(k, k, (k % 3) as u8, 3);
            if k % 5 == 0 {
                t.remove(&(k / 2));
            }
        }
        let mut listed = 0;
        for c in 0..CLASSES as u8 {
            let mut at = t.lru(c);
            while let Some(s) = at {
                let (k, v) = t.by_slot(s).unwrap();
                assert_eq!(k, v);
                assert_eq!(t.slot_of(k), Some(s));
                listed += 1;
                at = t.next_lru(s);
            }
        }
        assert_eq!(listed, t.len());
        assert_eq!(t.iter().count(), t.len());
    }

    #[test]
    fn bytes_per_slot_covers_what_the_table_allocates() {
        let t: Table<u64, [u8; 100]> = Table::new("t", 1000);
        let s = t.stats();
        assert_eq!(s.capacity, 1000);
        assert!(s.bytes_per_slot as usize >= 100 + 8 + 12 + 4);
        assert_eq!(
            s.bytes_per_slot as usize,
            Table::<u64, [u8; 100]>::memory_bytes(1000).div_ceil(1000)
        );
    }
}
