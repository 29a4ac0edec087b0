//! The one small deterministic hash of the middle layer (SIP message fingerprints in
//! `call.rs`, transaction keys in `mirror.rs`): foldhash with a fixed seed. Not keyed per
//! run: the values only compare or spread entries, and a fixed function keeps replays
//! deterministic. foldhash reads 16 bytes a step; the FNV-1a loop it replaced read one
//! (a Call-ID and a Via branch went through it twice per message).

use core::hash::{BuildHasher, Hasher};
use foldhash::fast::{FixedState, FoldHasher};

/// The seed of every digest: any constant keeps replays reproducible.
const SEED: u64 = 0x766f_6970_7365_6e73;

/// A digest being written; [`Digest::finish`] gives the value.
pub struct Digest(FoldHasher<'static>);

impl Default for Digest {
    fn default() -> Self {
        Digest::new()
    }
}

impl Digest {
    pub fn new() -> Digest {
        Digest(FixedState::with_seed(SEED).build_hasher())
    }

    /// Adds `b`; its length counts too, so `"ab","c"` and `"a","bc"` differ. (Numbers go
    /// in as bytes: foldhash's integer writes would not keep their place among these.)
    pub fn write(&mut self, b: &[u8]) {
        self.0.write(b);
    }

    pub fn finish(&self) -> u64 {
        self.0.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Digest;

    fn digest(parts: &[&[u8]]) -> u64 {
        let mut h = Digest::new();
        for p in parts {
            h.write(p);
        }
        h.finish()
    }

    #[test]
    fn digests_do_not_depend_on_the_run_or_the_hasher_instance() {
        // A fixed seed (a per-run random one would make replays differ in collisions).
        let a = digest(&[b"INVITE", b"z9hG4bK1"]);
        assert_eq!(a, digest(&[b"INVITE", b"z9hG4bK1"]));
        let std_fixed = {
            use core::hash::{BuildHasher, Hasher};
            let mut h = foldhash::fast::FixedState::with_seed(super::SEED).build_hasher();
            h.write(b"INVITE");
            h.write(b"z9hG4bK1");
            h.finish()
        };
        assert_eq!(a, std_fixed);
    }

    #[test]
    fn where_the_parts_split_matters() {
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"a", b"bc"]));
        assert_ne!(digest(&[b"INVITE"]), digest(&[b"INVITE", b""]));
        assert_ne!(digest(&[b"x"]), digest(&[b"y"]));
        assert_ne!(
            digest(&[&1u32.to_be_bytes(), b"a"]),
            digest(&[b"a", &1u32.to_be_bytes()])
        );
    }
}
