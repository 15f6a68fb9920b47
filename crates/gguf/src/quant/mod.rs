//! Dequantisation and quantisation of ggml tensor data.
//!
//! Data is a sequence of blocks; a block of type `T` holds `T.block_size()` elements in
//! `T.type_size()` bytes, all little-endian. Dequantisation follows ggml's reference
//! `dequantize_row_*` in ggml/src/ggml-quants.c value for value (same float operations in the
//! same order, so results are bit-identical to ggml's scalar code and to gguf-py's
//! `gguf.quants.dequantize`):
//!
//! | type | block | bytes | layout                                            | value          |
//! |------|-------|-------|---------------------------------------------------|----------------|
//! | F32  | 1     | 4     | f32                                               | x              |
//! | F16  | 1     | 2     | f16                                               | x              |
//! | BF16 | 1     | 2     | bf16 (upper half of an f32)                       | x              |
//! | Q8_0 | 32    | 34    | `f16 d, i8 qs[32]`                                | d·q            |
//! | Q4_0 | 32    | 18    | `f16 d, u8 qs[16] (nibbles)`                      | d·(q − 8)      |
//! | Q4_1 | 32    | 20    | `f16 d, f16 m, u8 qs[16]`                         | d·q + m        |
//! | Q5_0 | 32    | 22    | `f16 d, u32 qh, u8 qs[16]`                        | d·(q − 16)     |
//! | Q5_1 | 32    | 24    | `f16 d, f16 m, u32 qh, u8 qs[16]`                 | d·q + m        |
//! | Q2_K | 256   | 84    | `u8 scales[16], u8 qs[64], f16 d, f16 dmin`       | d·s·q − dmin·m |
//! | Q3_K | 256   | 110   | `u8 hmask[32], u8 qs[64], u8 scales[12], f16 d`   | d·(s − 32)·q   |
//! | Q4_K | 256   | 144   | `f16 d, f16 dmin, u8 scales[12], u8 qs[128]`      | d·s·q − dmin·m |
//! | Q5_K | 256   | 176   | `f16 d, f16 dmin, u8 scales[12], qh[32], qs[128]` | d·s·q − dmin·m |
//! | Q6_K | 256   | 210   | `u8 ql[128], u8 qh[64], i8 scales[16], f16 d`     | d·s·(q − 32)   |
//!
//! In the 32-element types, byte `j` of `qs` holds element `j` in its low nibble and element
//! `j + 16` in its high nibble (not elements `2j`, `2j + 1`). The K types are detailed in
//! [`kquants`].
//!
//! Quantisation: Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 follow ggml's `quantize_row_*_ref` exactly
//! (bit-identical bytes). Q4_K and Q6_K use a simpler one-pass quantiser than ggml's iterative
//! search; see [`kquants`] for it and its error bound.

pub mod kquants;
pub mod legacy;

use half::{bf16, f16};

use crate::error::{Error, Result};
use crate::types::GgmlType;

const DEQUANTIZABLE: &str = "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K";
const QUANTIZABLE: &str = "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q6_K";

/// Dequantises `bytes` of type `dtype` to f32, exactly as ggml's reference code does.
///
/// Fails when the type is not supported or `bytes` is not a whole number of blocks.
pub fn dequantize(dtype: GgmlType, bytes: &[u8]) -> Result<Vec<f32>> {
    dequantize_named(dtype, bytes, "data")
}

/// [`dequantize`] with a description of the data (e.g. "tensor `x`") for error messages.
pub(crate) fn dequantize_named(dtype: GgmlType, bytes: &[u8], what: &str) -> Result<Vec<f32>> {
    if !dtype.can_dequantize() {
        return Err(Error::Unsupported {
            op: format!("dequantising {what}"),
            dtype,
            id: dtype.id(),
            supported: DEQUANTIZABLE,
        });
    }
    let type_size = dtype.type_size();
    if !bytes.len().is_multiple_of(type_size) {
        return Err(Error::NotBlockMultiple {
            what: format!("byte length of {what} (bytes per block, not elements)"),
            dtype,
            len: bytes.len() as u64,
            block: type_size as u64,
        });
    }
    let block_size = dtype.block_size();
    let mut out = vec![0f32; bytes.len() / type_size * block_size];
    let blocks = bytes.chunks_exact(type_size).zip(out.chunks_exact_mut(block_size));
    let decode: fn(&[u8], &mut [f32]) = match dtype {
        GgmlType::F32 => |b, y| y[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        GgmlType::F16 => |b, y| y[0] = f16_at(b, 0),
        GgmlType::BF16 => |b, y| y[0] = bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32(),
        GgmlType::Q8_0 => legacy::dequantize_q8_0,
        GgmlType::Q4_0 => legacy::dequantize_q4_0,
        GgmlType::Q4_1 => legacy::dequantize_q4_1,
        GgmlType::Q5_0 => legacy::dequantize_q5_0,
        GgmlType::Q5_1 => legacy::dequantize_q5_1,
        GgmlType::Q2_K => kquants::dequantize_q2_k,
        GgmlType::Q3_K => kquants::dequantize_q3_k,
        GgmlType::Q4_K => kquants::dequantize_q4_k,
        GgmlType::Q5_K => kquants::dequantize_q5_k,
        GgmlType::Q6_K => kquants::dequantize_q6_k,
        _ => unreachable!("can_dequantize() lists exactly the types matched here"),
    };
    for (block, y) in blocks {
        decode(block, y);
    }
    Ok(out)
}

/// Quantises `values` to `dtype`, block by block.
///
/// `values.len()` must be a multiple of the type's block size (for a tensor: its row length
/// must be, so that no block straddles two rows). Quantised types refuse NaN and infinities and
/// block scales beyond f16's range; F32, F16 and BF16 convert any value (round to nearest even).
pub fn quantize(dtype: GgmlType, values: &[f32]) -> Result<Vec<u8>> {
    if !dtype.can_quantize() {
        return Err(Error::Unsupported { op: "quantising".to_string(), dtype, id: dtype.id(), supported: QUANTIZABLE });
    }
    let block_size = dtype.block_size();
    if !values.len().is_multiple_of(block_size) {
        return Err(Error::NotBlockMultiple {
            what: "number of values to quantise".to_string(),
            dtype,
            len: values.len() as u64,
            block: block_size as u64,
        });
    }
    match dtype {
        GgmlType::F32 => return Ok(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        GgmlType::F16 => return Ok(values.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect()),
        GgmlType::BF16 => return Ok(values.iter().flat_map(|&v| bf16::from_f32(v).to_le_bytes()).collect()),
        _ => {}
    }
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite { dtype, index, value: values[index] });
    }
    let encode: fn(&[f32], &mut [u8]) -> Result<(), f32> = match dtype {
        GgmlType::Q8_0 => legacy::quantize_q8_0,
        GgmlType::Q4_0 => legacy::quantize_q4_0,
        GgmlType::Q4_1 => legacy::quantize_q4_1,
        GgmlType::Q5_0 => legacy::quantize_q5_0,
        GgmlType::Q5_1 => legacy::quantize_q5_1,
        GgmlType::Q4_K => kquants::quantize_q4_k,
        GgmlType::Q6_K => kquants::quantize_q6_k,
        _ => unreachable!("can_quantize() lists exactly the types matched here"),
    };
    let type_size = dtype.type_size();
    let mut out = vec![0u8; values.len() / block_size * type_size];
    let blocks = values.chunks_exact(block_size).zip(out.chunks_exact_mut(type_size));
    for (block, (x, y)) in blocks.enumerate() {
        encode(x, y).map_err(|scale| Error::ScaleOverflow { dtype, block, scale })?;
    }
    Ok(out)
}

/// The f16 at byte `at` of `b`, as f32.
pub(crate) fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// Rounds `v` to f16 (nearest even, as ggml's `GGML_FP32_TO_FP16`), writes it at byte `at` of
/// `b` and returns the stored value as f32; `Err(v)` when it overflows to infinity.
pub(crate) fn put_f16(b: &mut [u8], at: usize, v: f32) -> Result<f32, f32> {
    let h = f16::from_f32(v);
    if h.is_infinite() && v.is_finite() {
        return Err(v);
    }
    b[at..at + 2].copy_from_slice(&h.to_le_bytes());
    Ok(h.to_f32())
}

/// The smallest f16 not below `v` (`v ≥ 0`), written at byte `at` of `b`; returned as f32.
/// Rounding scales up rather than to nearest keeps every value inside the range they cover.
pub(crate) fn put_f16_up(b: &mut [u8], at: usize, v: f32) -> Result<f32, f32> {
    let mut h = f16::from_f32(v);
    if h.to_f32() < v {
        h = f16::from_bits(h.to_bits() + 1);
    }
    if h.is_infinite() {
        return Err(v);
    }
    b[at..at + 2].copy_from_slice(&h.to_le_bytes());
    Ok(h.to_f32())
}
