//! The one fixed-capacity table every layer reuses (calls, media endpoints, RTP streams,
//! IP fragments, TCP streams).
//!
//! Why not `heapless::IndexMap`: its storage lives inline, so a table of a few thousand
//! call records cannot even be built on a thread stack. This table allocates its storage
//! **once**, at construction, and never again:
//!
//! * `slots` holds the entries; freed slots go on a free list; iteration is in slot order,
//!   so output order never depends on the hash seed (replays stay byte-identical);
//! * `index` maps a key to its slot. It is a `HashMap` created with room for twice the
//!   capacity while holding at most `capacity` keys: hashbrown then always rehashes
//!   tombstones in place and never reallocates (checked by the zero-allocation test).
//!   Its hasher is foldhash with a per-process random seed: several times faster than
//!   std's SipHash on these short keys, and hostile keys cannot be precomputed to collide.
//!
//! When the table is full, [`Table::insert_or_evict`] asks the caller's eviction rule for a
//! victim: the entry with the lowest [`Evict::Score`]; entries scored `None` are never
//! evicted. Every insert, eviction, rejection and removal is counted in [`TableStats`].

use serde::Serialize;
use std::collections::HashMap;
use std::hash::Hash;

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
}

/// The table. `K` is the lookup key, `V` the record.
pub struct Table<K, V> {
    name: &'static str,
    slots: Vec<Option<(K, V)>>,
    free: Vec<u32>,
    index: HashMap<K, u32, foldhash::fast::RandomState>,
    stats: TableStats,
}

/// Result of [`Table::insert_or_evict`].
#[derive(Debug, PartialEq, Eq)]
pub enum Inserted<K, V> {
    /// Stored in a free slot.
    Stored,
    /// Stored after evicting this entry (returned so the caller can report it).
    Evicted(K, V),
    /// Not stored: the table is full and every entry is protected. The record comes back.
    Rejected(K, V),
}

impl<K: Hash + Eq + Clone, V> Table<K, V> {
    /// Allocates all storage for `capacity` entries now; nothing is allocated later.
    pub fn new(name: &'static str, capacity: usize) -> Self {
        let capacity = capacity.clamp(1, u32::MAX as usize / 2);
        let mut slots = Vec::with_capacity(capacity);
        slots.resize_with(capacity, || None);
        // Free list popped from the end: hand out slot 0 first.
        let free: Vec<u32> = (0..capacity as u32).rev().collect();
        Table {
            name,
            slots,
            free,
            index: HashMap::with_capacity_and_hasher(capacity * 2, Default::default()),
            stats: TableStats {
                capacity: capacity as u32,
                ..TableStats::default()
            },
        }
    }

    /// Heap bytes a table of `capacity` entries allocates (slots, free list, index), so a
    /// board's capacities can be checked against its memory before anything is allocated.
    pub fn memory_bytes(capacity: usize) -> usize {
        let capacity = capacity.clamp(1, u32::MAX as usize / 2);
        // hashbrown: buckets = next power of two of 8/7 of the requested capacity; each
        // bucket holds (K, u32) plus one control byte.
        let buckets = (capacity * 2 * 8 / 7).next_power_of_two();
        capacity * std::mem::size_of::<Option<(K, V)>>()
            + capacity * std::mem::size_of::<u32>()
            + buckets * (std::mem::size_of::<(K, u32)>() + 1)
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

    pub fn contains(&self, k: &K) -> bool {
        self.index.contains_key(k)
    }

    pub fn get(&self, k: &K) -> Option<&V> {
        let slot = *self.index.get(k)?;
        self.slots.get(slot as usize)?.as_ref().map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        let slot = *self.index.get(k)?;
        self.slots.get_mut(slot as usize)?.as_mut().map(|(_, v)| v)
    }

    /// Slot number of a key: stable while the entry lives; usable as a cheap handle.
    pub fn slot_of(&self, k: &K) -> Option<u32> {
        self.index.get(k).copied()
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
        let slot = self.index.remove(k)?;
        let (_, v) = self.slots.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        Some(v)
    }

    /// Removes by slot; returns the entry.
    pub fn remove_slot(&mut self, slot: u32) -> Option<(K, V)> {
        let (k, v) = self.slots.get_mut(slot as usize)?.take()?;
        self.index.remove(&k);
        self.free.push(slot);
        Some((k, v))
    }

    /// Inserts `(k, v)`; if `k` is present its value is replaced. When the table is full,
    /// `score` ranks the existing entries: the lowest `Some(score)` is evicted (ties: the
    /// lowest slot, so the choice is deterministic); `None` marks an entry that must not be
    /// evicted. The new entry is rejected only if every entry is protected.
    pub fn insert_or_evict<S: Ord>(
        &mut self,
        k: K,
        v: V,
        score: impl Fn(&K, &V) -> Option<S>,
    ) -> Inserted<K, V> {
        if let Some(slot) = self.index.get(&k).copied() {
            if let Some(entry) = self.slots.get_mut(slot as usize) {
                *entry = Some((k, v));
            }
            return Inserted::Stored;
        }
        let mut evicted = None;
        if self.free.is_empty() {
            let victim = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, e)| {
                    let (ek, ev) = e.as_ref()?;
                    score(ek, ev).map(|s| (s, i))
                })
                .min();
            match victim {
                Some((_, i)) => {
                    evicted = self.remove_slot(i as u32);
                    self.stats.evicted += 1;
                }
                None => {
                    self.stats.rejected += 1;
                    return Inserted::Rejected(k, v);
                }
            }
        }
        let Some(slot) = self.free.pop() else {
            self.stats.rejected += 1;
            return Inserted::Rejected(k, v);
        };
        self.index.insert(k.clone(), slot);
        if let Some(entry) = self.slots.get_mut(slot as usize) {
            *entry = Some((k, v));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn score(_: &u32, v: &(bool, u32)) -> Option<u32> {
        // (protected, age): protected entries are never evicted; oldest first otherwise.
        if v.0 { None } else { Some(v.1) }
    }

    #[test]
    fn full_table_evicts_lowest_score_and_counts_it() {
        let mut t: Table<u32, (bool, u32)> = Table::new("t", 3);
        assert_eq!(t.insert_or_evict(1, (false, 5), score), Inserted::Stored);
        assert_eq!(t.insert_or_evict(2, (false, 1), score), Inserted::Stored);
        assert_eq!(t.insert_or_evict(3, (true, 0), score), Inserted::Stored);
        assert_eq!(
            t.insert_or_evict(4, (false, 9), score),
            Inserted::Evicted(2, (false, 1))
        );
        assert!(t.contains(&4) && !t.contains(&2));
        let s = t.stats();
        assert_eq!((s.len, s.inserted, s.evicted, s.high_water), (3, 4, 1, 3));
    }

    #[test]
    fn protected_entries_make_a_full_table_reject() {
        let mut t: Table<u32, (bool, u32)> = Table::new("t", 2);
        t.insert_or_evict(1, (true, 0), score);
        t.insert_or_evict(2, (true, 0), score);
        assert_eq!(
            t.insert_or_evict(3, (false, 0), score),
            Inserted::Rejected(3, (false, 0))
        );
        assert_eq!(t.stats().rejected, 1);
    }

    #[test]
    fn iteration_follows_slot_order_and_slots_are_reused() {
        let mut t: Table<&str, u8> = Table::new("t", 4);
        for (i, k) in ["a", "b", "c"].into_iter().enumerate() {
            t.insert_or_evict(k, i as u8, |_, _| Some(0));
        }
        assert_eq!(t.remove(&"b"), Some(1));
        t.insert_or_evict("d", 9, |_, _| Some(0));
        let keys: Vec<_> = t.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["a", "d", "c"]);
        assert_eq!(t.next_slot(0), Some(0));
        assert_eq!(t.next_slot(3), None);
    }

    #[test]
    fn replacing_an_existing_key_keeps_its_slot() {
        let mut t: Table<u8, u8> = Table::new("t", 1);
        t.insert_or_evict(7, 1, |_, _| None::<u8>);
        assert_eq!(t.insert_or_evict(7, 2, |_, _| None::<u8>), Inserted::Stored);
        assert_eq!(t.get(&7), Some(&2));
        assert_eq!(t.stats().inserted, 1);
    }
}
