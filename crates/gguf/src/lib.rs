//! Reading and writing GGUF, llama.cpp's model file format, with ggml's dequantisation and
//! quantisation. No tensor engine, no network: bytes in, `f32`s out, and back.
//!
//! # The format (GGUF v2/v3, little-endian)
//!
//! Specification: llama.cpp's `docs/gguf.md` (ggml's `docs/gguf.md`, same text). All integers
//! are little-endian; a string is a u64 byte length followed by UTF-8 bytes (no terminator).
//!
//! ```text
//! magic             "GGUF" (47 47 55 46)
//! version           u32: 2 or 3 (v1 had 32-bit lengths; v3 added big-endian files, not read here)
//! tensor_count      u64
//! metadata_kv_count u64
//! metadata          metadata_kv_count × { key: string, value_type: u32, value }
//!                     value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32,
//!                     7 bool (one byte, 0 or 1), 8 string, 9 array, 10 u64, 11 i64, 12 f64;
//!                     array = { element_type: u32, count: u64, count × element } (nestable)
//! tensor infos      tensor_count × { name: string, n_dims: u32 (≤ 4), dims: n_dims × u64,
//!                                    ggml_type: u32, offset: u64 }
//!                     dims in ggml order: dims[0] is the innermost, contiguous dimension
//! padding           zeros up to a multiple of `general.alignment` (u32, default 32)
//! tensor data       each tensor at data_start + offset (offsets are multiples of the alignment)
//! ```
//!
//! A tensor with `dims = [in, out]` is, in row-major terms, an `[out, in]` matrix: this crate's
//! shapes ([`TensorInfo::shape`], [`GgufFile::tensor_f32`], [`GgufWriter::add_tensor_f32`]) are
//! row-major, outermost first, the reverse of `dims`.
//!
//! Tensor data is a sequence of blocks of its ggml type ([`GgmlType`]); the layouts and how
//! they decode are in [`quant`] (after ggml/src/ggml-quants.c and ggml-common.h).
//!
//! # Use
//!
//! ```no_run
//! let file = gguf::GgufFile::open("model.gguf")?;
//! let layers = file.get_usize("llama.block_count")?;
//! let vocab = file.get_str_array("tokenizer.ggml.tokens")?;
//! let (shape, values) = file.tensor_f32("token_embd.weight")?; // shape [vocab, width]
//! # Ok::<(), gguf::Error>(())
//! ```

pub mod error;
pub mod quant;
pub mod reader;
pub mod types;
pub mod value;
pub mod writer;

pub use error::{Error, Result};
pub use quant::{dequantize, quantize};
pub use reader::{GgufFile, TensorInfo, DEFAULT_ALIGNMENT};
pub use types::{ggml_type_name, GgmlType, QK, QK_K};
pub use value::{Array, Value, ValueType};
pub use writer::GgufWriter;
