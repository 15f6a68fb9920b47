//! The 32-element ("legacy") quantisations: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1.
//!
//! Each (crate-private) function handles one block; [`crate::quantize`] and [`crate::dequantize`]
//! check lengths and call them. Dequantisation mirrors ggml-quants.c's
//! `dequantize_row_q{8_0,4_0,4_1,5_0,5_1}`; quantisation mirrors `quantize_row_*_ref`, including
//! its conventions, so the bytes match ggml's and gguf-py's:
//!
//! - Q8_0: d = max|x| / 127, q = round(x / d) (half away from zero).
//! - Q4_0: d = x* / −8 where x* is the value of largest magnitude (sign kept), so x* maps to
//!   q = 0 and the other values to trunc(x/d + 8.5) clamped to 15. Q5_0 likewise with 16 / 31.
//! - Q4_1: d = (max − min) / 15, m = min, q = trunc((x − min)/d + 0.5) clamped to 15. Q5_1
//!   likewise with 31.
//!
//! `1/d` is computed from the f32 `d`, before `d` is rounded to f16, as ggml does.
//! Quantisers return `Err(scale)` when a scale overflows f16.

use super::{f16_at, put_f16};
use crate::types::QK;

const HALF: usize = QK / 2;

/// One Q8_0 block (34 bytes) to 32 values.
pub(crate) fn dequantize_q8_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for (out, &q) in y.iter_mut().zip(&b[2..2 + QK]) {
        *out = (q as i8) as f32 * d;
    }
}

/// One Q4_0 block (18 bytes) to 32 values.
pub(crate) fn dequantize_q4_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for (j, &q) in b[2..2 + HALF].iter().enumerate() {
        y[j] = ((q & 0x0F) as i32 - 8) as f32 * d;
        y[j + HALF] = ((q >> 4) as i32 - 8) as f32 * d;
    }
}

/// One Q4_1 block (20 bytes) to 32 values.
pub(crate) fn dequantize_q4_1(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let m = f16_at(b, 2);
    for (j, &q) in b[4..4 + HALF].iter().enumerate() {
        y[j] = (q & 0x0F) as f32 * d + m;
        y[j + HALF] = (q >> 4) as f32 * d + m;
    }
}

/// One Q5_0 block (22 bytes) to 32 values: the fifth bit of element `j` is bit `j` of `qh`.
pub(crate) fn dequantize_q5_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    for (j, &q) in b[6..6 + HALF].iter().enumerate() {
        let high0 = (((qh >> j) & 1) << 4) as u8;
        let high1 = (((qh >> (j + HALF)) & 1) << 4) as u8;
        y[j] = (((q & 0x0F) | high0) as i32 - 16) as f32 * d;
        y[j + HALF] = (((q >> 4) | high1) as i32 - 16) as f32 * d;
    }
}

/// One Q5_1 block (24 bytes) to 32 values.
pub(crate) fn dequantize_q5_1(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let m = f16_at(b, 2);
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    for (j, &q) in b[8..8 + HALF].iter().enumerate() {
        let high0 = (((qh >> j) & 1) << 4) as u8;
        let high1 = (((qh >> (j + HALF)) & 1) << 4) as u8;
        y[j] = ((q & 0x0F) | high0) as f32 * d + m;
        y[j + HALF] = ((q >> 4) | high1) as f32 * d + m;
    }
}

/// 32 values to one Q8_0 block.
pub(crate) fn quantize_q8_0(x: &[f32], b: &mut [u8]) -> Result<(), f32> {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(b, 0, d)?;
    for (out, &v) in b[2..2 + QK].iter_mut().zip(x) {
        *out = ((v * id).round() as i8) as u8;
    }
    Ok(())
}

/// The value of largest magnitude, sign kept (the first one on ties, as ggml).
fn signed_absmax(x: &[f32]) -> f32 {
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

/// The smallest and largest value.
fn min_max(x: &[f32]) -> (f32, f32) {
    x.iter().fold((f32::MAX, -f32::MAX), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

/// 32 values to one Q4_0 block.
pub(crate) fn quantize_q4_0(x: &[f32], b: &mut [u8]) -> Result<(), f32> {
    let d = signed_absmax(x) / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(b, 0, d)?;
    let code = |v: f32| ((v * id + 8.5) as i8).min(15) as u8;
    for j in 0..HALF {
        b[2 + j] = code(x[j]) | (code(x[j + HALF]) << 4);
    }
    Ok(())
}

/// 32 values to one Q4_1 block.
pub(crate) fn quantize_q4_1(x: &[f32], b: &mut [u8]) -> Result<(), f32> {
    let (min, max) = min_max(x);
    let d = (max - min) / 15.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(b, 0, d)?;
    put_f16(b, 2, min)?;
    let code = |v: f32| (((v - min) * id + 0.5) as i8).min(15) as u8;
    for j in 0..HALF {
        b[4 + j] = code(x[j]) | (code(x[j + HALF]) << 4);
    }
    Ok(())
}

/// Packs 32 five-bit codes: low nibbles into `qs` (element j and j + 16 share byte j), fifth
/// bits into the little-endian u32 `qh` (bit j for element j).
fn pack_5bit(codes: &[u8; QK], qh: &mut [u8], qs: &mut [u8]) {
    let mut high = 0u32;
    for j in 0..HALF {
        let (c0, c1) = (codes[j], codes[j + HALF]);
        qs[j] = (c0 & 0x0F) | ((c1 & 0x0F) << 4);
        high |= (((c0 >> 4) & 1) as u32) << j;
        high |= (((c1 >> 4) & 1) as u32) << (j + HALF);
    }
    qh.copy_from_slice(&high.to_le_bytes());
}

/// 32 values to one Q5_0 block.
pub(crate) fn quantize_q5_0(x: &[f32], b: &mut [u8]) -> Result<(), f32> {
    let d = signed_absmax(x) / -16.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(b, 0, d)?;
    let mut codes = [0u8; QK];
    for (c, &v) in codes.iter_mut().zip(x) {
        *c = ((v * id + 16.5) as i8).min(31) as u8;
    }
    let (qh, qs) = b[2..].split_at_mut(4);
    pack_5bit(&codes, qh, qs);
    Ok(())
}

/// 32 values to one Q5_1 block.
pub(crate) fn quantize_q5_1(x: &[f32], b: &mut [u8]) -> Result<(), f32> {
    let (min, max) = min_max(x);
    let d = (max - min) / 31.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(b, 0, d)?;
    put_f16(b, 2, min)?;
    let mut codes = [0u8; QK];
    for (c, &v) in codes.iter_mut().zip(x) {
        *c = (((v - min) * id + 0.5) as i8).min(31) as u8;
    }
    let (qh, qs) = b[4..].split_at_mut(4);
    pack_5bit(&codes, qh, qs);
    Ok(())
}
