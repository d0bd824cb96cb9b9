//! A small seeded generator (xorshift64*), so every fuzz run can be replayed from its seed.

/// Deterministic pseudo-random numbers.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value; 0 is remapped).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// One element of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// A u32 biased towards the values that break index arithmetic.
    pub fn nasty_u32(&mut self, capacity: u32) -> u32 {
        let special = [
            0,
            1,
            7,
            8,
            u32::MAX,
            u32::MAX - 7,
            0x8000_0000,
            0x7FFF_FFFF,
            capacity,
            capacity + 8,
            capacity.wrapping_sub(8),
            capacity / 4,
            capacity / 4 - 8,
            capacity / 4 + 8,
            capacity * 2,
            1_417_435_350,
        ];
        if self.below(3) == 0 {
            self.next_u32()
        } else {
            *self.pick(&special)
        }
    }
}
