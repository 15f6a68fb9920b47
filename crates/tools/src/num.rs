//! Size bounds on big numbers, shared by `calc` and `run`.
//!
//! Every number a tool holds has at most a configured number of bits. Sums, differences,
//! products and quotients of two bounded numbers are cheap to compute and are checked after the
//! fact; a power is the one operation whose result can be astronomically large from small
//! inputs, so its size is bounded *before* it is computed.

use num_bigint::BigInt;
use num_traits::{Signed, ToPrimitive};

/// The exponent as a `u32` if `x^exponent` can fit in `max_bits`, for `|x|` of `base_bits`
/// bits, `base_bits >= 2` (bases 0, 1 and -1 are handled by the caller). `None` means the result
/// would certainly have more than `max_bits` bits.
///
/// `|x| >= 2^(base_bits - 1)`, so `|x|^e` has at least `(base_bits - 1) * e + 1` bits; that
/// lower bound is what is checked. The result may still exceed the bound by up to a factor
/// `base_bits / (base_bits - 1) <= 2`, which the caller checks after computing it (cheaply:
/// at most twice the bound).
pub(crate) fn pow_exponent(base_bits: u64, exponent: &BigInt, max_bits: u64) -> Option<u32> {
    debug_assert!(base_bits >= 2);
    let e = exponent.abs().to_u64()?;
    let lower = (base_bits - 1).checked_mul(e)?.checked_add(1)?;
    if lower > max_bits {
        return None;
    }
    u32::try_from(e).ok()
}

/// Whether `n` has at most `max_bits` bits.
pub(crate) fn fits(n: &BigInt, max_bits: u64) -> bool {
    n.bits() <= max_bits
}

/// Whether a decimal literal `int.frac` certainly has a numerator or denominator of more than
/// `max_bits` bits, decided from its digits alone, before they are parsed (parsing is quadratic
/// in the number of digits, so a long literal is refused without it).
///
/// An integer part with `d` significant digits is at least `10^(d-1)`, more than `2^(3(d-1))`.
/// A fractional part with `k` digits after its trailing zeros are dropped leaves, in lowest
/// terms, a denominator of at least `2^k` (the numerator, ending in a nonzero digit, cannot
/// cancel both the 2s and the 5s of `10^k`).
pub(crate) fn literal_too_big(int: &str, frac: &str, max_bits: u64) -> bool {
    let significant = int.trim_start_matches('0').len() as u64;
    let decimals = frac.trim_end_matches('0').len() as u64;
    significant.saturating_sub(1).saturating_mul(3) > max_bits || decimals > max_bits
}
