//! xorshift64*: a small seeded generator, the same on every platform, for
//! the tests and benches that need reproducible random input (hashes, bit
//! flips, kill points).

use hashgate::PdqHash;

/// A seeded xorshift64* generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is taken as 1: xorshift never leaves 0).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// The next 64 random bits.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A uniformly random PDQ hash.
    pub fn pdq(&mut self) -> PdqHash {
        let mut bytes = [0u8; 32];
        for chunk in bytes.chunks_exact_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        PdqHash(bytes)
    }

    /// `centre` with exactly `bits` distinct bits flipped (at most 256).
    pub fn near(&mut self, centre: &PdqHash, bits: u32) -> PdqHash {
        let mut flipped = std::collections::BTreeSet::new();
        while flipped.len() < bits.min(256) as usize {
            flipped.insert(self.below(256));
        }
        let mut hash = *centre;
        for bit in flipped {
            hash.0[bit / 8] ^= 1 << (bit % 8);
        }
        hash
    }

    /// `centre` with `bits` bits flipped, spread as evenly as possible over
    /// the 16 chunks of 16 bits: the worst case for multi-index hashing,
    /// where no chunk is left with fewer differences than the pigeonhole
    /// bound.
    pub fn near_spread(&mut self, centre: &PdqHash, bits: u32) -> PdqHash {
        self.near_spread_over(centre, bits, 16)
    }

    /// As [`Rng::near_spread`], over the first `chunks` chunks only: the
    /// differences piled on some chunks and none on the others.
    pub fn near_spread_over(&mut self, centre: &PdqHash, bits: u32, chunks: usize) -> PdqHash {
        let mut order: Vec<usize> = (0..chunks).collect();
        for i in (1..chunks).rev() {
            order.swap(i, self.below(i + 1));
        }
        let mut flipped = std::collections::BTreeSet::new();
        for i in 0..bits.min(16 * chunks as u32) as usize {
            let chunk = order[i % chunks];
            while !flipped.insert(16 * chunk + self.below(16)) {}
        }
        let mut hash = *centre;
        for bit in flipped {
            hash.0[bit / 8] ^= 1 << (bit % 8);
        }
        hash
    }
}
