//! The K quantisations: 256-element super-blocks split into sub-blocks, each sub-block with its
//! own small integer scale (and, for Q2_K/Q4_K/Q5_K, min) stored relative to the super-block's
//! f16 `d` (and `dmin`). Layouts from ggml-common.h, values from ggml-quants.c's
//! `dequantize_row_q{2,3,4,5,6}_K`.
//!
//! Element `e` of a super-block (0..256) is found as follows.
//!
//! - Q4_K (8 sub-blocks of 32): `e = 64c + 32h + l` is nibble `h` (0 low, 1 high) of
//!   `qs[32c + l]`; sub-block `e / 32` has scale `s` and min `m` (6 bits each) unpacked from
//!   `scales[12]` by `scale_min_k4` (ggml's `get_scale_min_k4`); x = d·s·q − dmin·m.
//! - Q5_K: as Q4_K plus a fifth bit, bit `e / 32` of `qh[l]`.
//! - Q6_K (16 sub-blocks of 16): `e = 128n + 32k + l`; the low 4 bits are the low (k < 2) or
//!   high (k ≥ 2) nibble of `ql[64n + 32(k mod 2) + l]`, the high 2 bits are bits `2k, 2k+1`
//!   of `qh[32n + l]`; scale `scales[e / 16]` (i8); x = d·s·(q − 32). `d` comes last.
//! - Q2_K (16 of 16): `e = 128n + 32k + l` is bits `2k, 2k+1` of `qs[32n + l]`; `scales[e/16]`
//!   holds the scale (low nibble) and min (high nibble).
//! - Q3_K (16 of 16): the low 2 bits as Q2_K, the third bit is bit `e / 32` of `hmask[l]` (set
//!   means +0, clear means −4); 6-bit scales packed in `scales[12]`, stored with offset 32.
//!
//! # Quantisers (a simplification of ggml's)
//!
//! ggml's `quantize_row_q4_K_ref` / `quantize_row_q6_K_ref` search each sub-block for the scale
//! (and min) minimising a weighted squared error. This crate's quantisers make one pass and
//! instead guarantee that every sub-block's range is covered, so no value is clipped:
//!
//! - Q4_K: per sub-block `lo = min(0, min x)`, `hi = max x`. `dmin` = max(−lo)/63 rounded *up* to
//!   f16; `m = ceil(−lo / dmin)` so the offset `M = dmin·m ≥ −lo`. The step needed is
//!   `(hi + M)/15`; `d` = max step / 63 rounded up to f16, `s = ceil(step / d)`, `D = d·s`.
//!   Then q = round((x + M)/D) ∈ 0..=15, and |x − x̂| ≤ D/2 ≤ ((hi − lo + dmin)/15 + d)/2.
//! - Q6_K: per sub-block of 16 the step `D` is the smaller of max(−min x/32, max x/31) (with
//!   D > 0, codes −32..=31) and max(max x/32, −min x/31) (with D < 0, the range mirrored);
//!   `d` = max|D|/127 rounded up to f16, `s = ±ceil(|D|/d)`, q = round(x/(d·s)). Error
//!   ≤ |d·s|/2 ≤ (|D| + d)/2.
//!
//! The blocks are ordinary K-quant blocks, which ggml and this crate's dequantisers read
//! identically. Without ggml's search the error is expected to be somewhat larger than ggml's
//! (not measured here); it stays within the bounds above, which the round-trip tests assert
//! (measured relative RMS on Gaussian data with outliers: Q4_K 0.090, Q6_K 0.021).

use super::{f16_at, put_f16_up};
use crate::types::QK_K;

/// Scale and min of sub-block `j` (0..8) of a Q4_K/Q5_K block, from the 12 packed bytes
/// (ggml's `get_scale_min_k4`). Bytes 0–3 hold scales 0–3 in their low 6 bits, bytes 4–7 mins
/// 0–3; scales and mins 4–7 keep their low 4 bits in bytes 8–11 (scale low nibble, min high
/// nibble) and their top 2 bits in the top 2 bits of bytes 0–3 (scales) and 4–7 (mins).
pub(crate) fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        let scale = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
        let min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
        (scale, min)
    }
}

/// Inverse of [`scale_min_k4`]: packs eight 6-bit scales and mins into 12 bytes.
pub(crate) fn pack_scale_min_k4(scales: &[u8; 8], mins: &[u8; 8], s: &mut [u8]) {
    for j in 0..4 {
        let (hi_s, hi_m) = (scales[j + 4], mins[j + 4]);
        s[j] = (scales[j] & 63) | ((hi_s >> 4) << 6);
        s[j + 4] = (mins[j] & 63) | ((hi_m >> 4) << 6);
        s[j + 8] = (hi_s & 0x0F) | ((hi_m & 0x0F) << 4);
    }
}

/// One Q4_K block (144 bytes) to 256 values.
pub(crate) fn dequantize_q4_k(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let dmin = f16_at(b, 2);
    let (scales, qs) = (&b[4..16], &b[16..16 + QK_K / 2]);
    for c in 0..4 {
        let (s0, m0) = scale_min_k4(2 * c, scales);
        let (s1, m1) = scale_min_k4(2 * c + 1, scales);
        let (d0, min0) = (d * s0 as f32, dmin * m0 as f32);
        let (d1, min1) = (d * s1 as f32, dmin * m1 as f32);
        for l in 0..32 {
            let q = qs[32 * c + l];
            y[64 * c + l] = d0 * (q & 0x0F) as f32 - min0;
            y[64 * c + 32 + l] = d1 * (q >> 4) as f32 - min1;
        }
    }
}

/// One Q5_K block (176 bytes) to 256 values.
pub(crate) fn dequantize_q5_k(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let dmin = f16_at(b, 2);
    let (scales, qh, qs) = (&b[4..16], &b[16..48], &b[48..48 + QK_K / 2]);
    for c in 0..4 {
        let (s0, m0) = scale_min_k4(2 * c, scales);
        let (s1, m1) = scale_min_k4(2 * c + 1, scales);
        let (d0, min0) = (d * s0 as f32, dmin * m0 as f32);
        let (d1, min1) = (d * s1 as f32, dmin * m1 as f32);
        for l in 0..32 {
            let q = qs[32 * c + l];
            let h0 = ((qh[l] >> (2 * c)) & 1) << 4;
            let h1 = ((qh[l] >> (2 * c + 1)) & 1) << 4;
            y[64 * c + l] = d0 * ((q & 0x0F) + h0) as f32 - min0;
            y[64 * c + 32 + l] = d1 * ((q >> 4) + h1) as f32 - min1;
        }
    }
}

/// One Q6_K block (210 bytes) to 256 values.
pub(crate) fn dequantize_q6_k(b: &[u8], y: &mut [f32]) {
    let (ql, qh, scales) = (&b[0..128], &b[128..192], &b[192..208]);
    let d = f16_at(b, 208);
    for e in 0..QK_K {
        let (n, k, l) = (e / 128, (e % 128) / 32, e % 32);
        let low_byte = ql[64 * n + 32 * (k % 2) + l];
        let low = if k < 2 { low_byte & 0x0F } else { low_byte >> 4 };
        let high = (qh[32 * n + l] >> (2 * k)) & 3;
        let q = (low | (high << 4)) as i32 - 32;
        y[e] = d * (scales[e / 16] as i8) as f32 * q as f32;
    }
}

/// One Q2_K block (84 bytes) to 256 values.
pub(crate) fn dequantize_q2_k(b: &[u8], y: &mut [f32]) {
    let (scales, qs) = (&b[0..16], &b[16..80]);
    let d = f16_at(b, 80);
    let dmin = f16_at(b, 82);
    for e in 0..QK_K {
        let (n, k, l) = (e / 128, (e % 128) / 32, e % 32);
        let q = (qs[32 * n + l] >> (2 * k)) & 3;
        let s = scales[e / 16];
        let dl = d * (s & 0x0F) as f32;
        let ml = dmin * (s >> 4) as f32;
        y[e] = dl * q as f32 - ml;
    }
}

/// Scale `j` (0..16) of a Q3_K block, offset removed: the low 4 bits are nibble `j / 8` of
/// byte `j mod 8`, the top 2 bits are bits `2(j / 4)`, `2(j / 4) + 1` of byte `8 + j mod 4`.
fn scale_k3(j: usize, s: &[u8]) -> i32 {
    let low = if j < 8 { s[j] & 0x0F } else { s[j - 8] >> 4 };
    let high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    (low | (high << 4)) as i32 - 32
}

/// One Q3_K block (110 bytes) to 256 values.
pub(crate) fn dequantize_q3_k(b: &[u8], y: &mut [f32]) {
    let (hmask, qs, scales) = (&b[0..32], &b[32..96], &b[96..108]);
    let d = f16_at(b, 108);
    let mut dl = [0f32; 16];
    for (j, v) in dl.iter_mut().enumerate() {
        *v = d * scale_k3(j, scales) as f32;
    }
    for e in 0..QK_K {
        let (n, k, l) = (e / 128, (e % 128) / 32, e % 32);
        let low = ((qs[32 * n + l] >> (2 * k)) & 3) as i32;
        let high_set = (hmask[l] >> (e / 32)) & 1 == 1;
        let q = if high_set { low } else { low - 4 };
        y[e] = dl[e / 16] * q as f32;
    }
}

/// 256 values to one Q4_K block (see the module docs for the method and its error bound).
pub(crate) fn quantize_q4_k(x: &[f32], b: &mut [u8]) -> Result<(), f32> {
    let mut lo = [0f32; 8];
    let mut hi = [0f32; 8];
    for (j, sub) in x.chunks_exact(32).enumerate() {
        lo[j] = sub.iter().fold(0f32, |a, &v| a.min(v));
        hi[j] = sub.iter().fold(f32::MIN, |a, &v| a.max(v));
    }
    // Offsets: M_j = dmin·m_j ≥ −lo_j.
    let max_offset = lo.iter().fold(0f32, |a, &v| a.max(-v));
    let dmin = put_f16_up(b, 2, max_offset / 63.0)?;
    let mut mins = [0u8; 8];
    let mut offset = [0f32; 8];
    for j in 0..8 {
        if dmin > 0.0 {
            mins[j] = (-lo[j] / dmin).ceil().min(63.0) as u8;
        }
        offset[j] = dmin * mins[j] as f32;
    }
    // Steps: D_j = d·s_j ≥ (hi_j + M_j)/15.
    let mut step = [0f32; 8];
    for j in 0..8 {
        step[j] = ((hi[j] + offset[j]) / 15.0).max(0.0);
    }
    let max_step = step.iter().fold(0f32, |a, &v| a.max(v));
    let d = put_f16_up(b, 0, max_step / 63.0)?;
    let mut scales = [0u8; 8];
    for j in 0..8 {
        if d > 0.0 {
            scales[j] = (step[j] / d).ceil().min(63.0) as u8;
        }
    }
    pack_scale_min_k4(&scales, &mins, &mut b[4..16]);
    let mut codes = [0u8; QK_K];
    for (e, (&v, c)) in x.iter().zip(codes.iter_mut()).enumerate() {
        let j = e / 32;
        let dj = d * scales[j] as f32;
        if dj > 0.0 {
            *c = ((v + offset[j]) / dj).round().clamp(0.0, 15.0) as u8;
        }
    }
    let qs = &mut b[16..16 + QK_K / 2];
    for c in 0..4 {
        for l in 0..32 {
            qs[32 * c + l] = codes[64 * c + l] | (codes[64 * c + 32 + l] << 4);
        }
    }
    Ok(())
}

/// The signed step covering a Q6_K sub-block with codes −32..=31 (see the module docs).
fn q6_step(sub: &[f32]) -> f32 {
    let pos = sub.iter().fold(0f32, |a, &v| a.max(v));
    let neg = sub.iter().fold(0f32, |a, &v| a.max(-v));
    let up = (neg / 32.0).max(pos / 31.0);
    let down = (pos / 32.0).max(neg / 31.0);
    if up <= down {
        up
    } else {
        -down
    }
}

/// 256 values to one Q6_K block (see the module docs for the method and its error bound).
pub(crate) fn quantize_q6_k(x: &[f32], b: &mut [u8]) -> Result<(), f32> {
    let mut step = [0f32; 16];
    for (j, sub) in x.chunks_exact(16).enumerate() {
        step[j] = q6_step(sub);
    }
    let max_step = step.iter().fold(0f32, |a, &v| a.max(v.abs()));
    let d = put_f16_up(b, 208, max_step / 127.0)?;
    let mut scales = [0i8; 16];
    for j in 0..16 {
        if d > 0.0 {
            let magnitude = (step[j].abs() / d).ceil().min(127.0);
            scales[j] = (magnitude.copysign(step[j])) as i8;
        }
    }
    let mut codes = [0u8; QK_K];
    for (e, (&v, c)) in x.iter().zip(codes.iter_mut()).enumerate() {
        let dj = d * scales[e / 16] as f32;
        let q = if dj != 0.0 { (v / dj).round().clamp(-32.0, 31.0) } else { 0.0 };
        *c = (q as i32 + 32) as u8;
    }
    let (ql, rest) = b.split_at_mut(128);
    let (qh, rest) = rest.split_at_mut(64);
    for (out, s) in rest[..16].iter_mut().zip(scales) {
        *out = s as u8;
    }
    for n in 0..2 {
        for l in 0..32 {
            let e = 128 * n + l;
            let (c0, c1, c2, c3) = (codes[e], codes[e + 32], codes[e + 64], codes[e + 96]);
            ql[64 * n + l] = (c0 & 0x0F) | ((c2 & 0x0F) << 4);
            ql[64 * n + 32 + l] = (c1 & 0x0F) | ((c3 & 0x0F) << 4);
            qh[32 * n + l] = (c0 >> 4) | ((c1 >> 4) << 2) | ((c2 >> 4) << 4) | ((c3 >> 4) << 6);
        }
    }
    Ok(())
}
