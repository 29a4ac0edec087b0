//! FNV-1a, 64 bit: the one small deterministic hash of the middle layer (SIP message
//! fingerprints in `call.rs`, transaction keys in `mirror.rs`). Not keyed: the values only
//! compare or spread entries, and a fixed function keeps replays deterministic.

/// FNV-1a state; `.0` is the hash so far.
pub struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv::new()
    }
}

impl Fnv {
    pub fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub fn write(&mut self, b: &[u8]) {
        for x in b {
            self.0 ^= u64::from(*x);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Fnv;

    #[test]
    fn matches_the_published_fnv1a_64_test_vectors() {
        assert_eq!(Fnv::new().0, 0xcbf2_9ce4_8422_2325);
        let mut h = Fnv::new();
        h.write(b"a");
        assert_eq!(h.0, 0xaf63_dc4c_8601_ec8c);
        let mut h = Fnv::new();
        h.write(b"foobar");
        assert_eq!(h.0, 0x8594_4171_f739_67e8);
    }

    #[test]
    fn writing_in_pieces_equals_writing_at_once() {
        let mut a = Fnv::new();
        a.write(b"INVITE");
        a.write(b"z9hG4bK");
        let mut b = Fnv::new();
        b.write(b"INVITEz9hG4bK");
        assert_eq!(a.0, b.0);
    }
}
