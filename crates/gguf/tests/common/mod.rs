//! Shared test helpers: a seeded generator (SplitMix64) and test data with outliers.
#![allow(dead_code)]

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, seeded, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// `n` values: normal with standard deviation `scale`, about 0.2% outliers at ±6–12× that, one
/// all-zero 256-block and one constant 256-block (the degenerate cases of every quantiser).
pub fn test_values(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut v: Vec<f32> = (0..n).map(|_| rng.normal() as f32 * scale).collect();
    for _ in 0..n / 500 {
        let i = rng.below(n);
        v[i] = (6.0 + 6.0 * rng.uniform() as f32) * scale * v[i].signum();
    }
    if n >= 768 {
        v[256..512].iter_mut().for_each(|x| *x = 0.0);
        v[512..768].iter_mut().for_each(|x| *x = 0.375 * scale);
    }
    v
}
