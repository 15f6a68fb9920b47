//! The crate's error type: every way reading, writing, dequantising or quantising can fail,
//! each saying what was wrong and where (byte offset, key or tensor name).

use std::path::PathBuf;

use crate::types::GgmlType;
use crate::value::ValueType;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be opened, read or mapped.
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },

    /// The file (or its temporary sibling) could not be written, synced or renamed into place.
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },

    /// The first four bytes are not `GGUF`.
    #[error("not a GGUF file: it starts with bytes {found:02x?}, expected \"GGUF\" (47 47 55 46)")]
    BadMagic { found: [u8; 4] },

    /// A version this reader does not handle (only 2 and 3 are; version 1 used 32-bit lengths).
    #[error("unsupported GGUF version {version}: this reader handles versions 2 and 3{hint}")]
    UnsupportedVersion { version: u32, hint: &'static str },

    /// The file ends before a field that the header says is there.
    #[error("file truncated at byte {offset}: reading {what} needs {needed} bytes, only {available} remain")]
    Truncated { offset: u64, what: String, needed: u64, available: u64 },

    /// A count or length larger than the rest of the file could possibly hold.
    #[error("{what} at byte {offset} is {count}, more than the {remaining} bytes left in the file can hold")]
    CountTooLarge { offset: u64, what: String, count: u64, remaining: u64 },

    /// A string (key, value or tensor name) that is not UTF-8.
    #[error("{what} at byte {offset} is not valid UTF-8: {source}")]
    InvalidUtf8 { offset: u64, what: String, source: std::str::Utf8Error },

    /// A metadata value type id outside 0..=12.
    #[error("{what} at byte {offset} has value type {id}, not a GGUF value type (0..=12)")]
    UnknownValueType { offset: u64, what: String, id: u32 },

    /// A bool byte that is neither 0 nor 1.
    #[error("{what} at byte {offset} is a bool with byte {byte}; GGUF bools are 0 or 1")]
    InvalidBool { offset: u64, what: String, byte: u8 },

    /// Arrays of arrays nested deeper than this reader follows.
    #[error("{what} at byte {offset} nests arrays more than {max} levels deep")]
    TooDeep { offset: u64, what: String, max: usize },

    /// The same metadata key twice (in a file, or added twice to a writer).
    #[error("metadata key `{key}` appears twice")]
    DuplicateKey { key: String },

    /// The same tensor name twice (in a file, or added twice to a writer).
    #[error("tensor `{name}` appears twice")]
    DuplicateTensor { name: String },

    /// `general.alignment` that is zero or not a power of two.
    #[error("general.alignment is {value}; it must be a non-zero power of two (default 32)")]
    BadAlignment { value: u64 },

    /// A tensor with more dimensions than ggml's `GGML_MAX_DIMS`.
    #[error("tensor `{tensor}` has {n_dims} dimensions; ggml allows at most {max}")]
    TooManyDims { tensor: String, n_dims: u64, max: usize },

    /// A shape whose element count or byte size overflows 64 bits.
    #[error("tensor `{tensor}` has dimensions {dims:?} whose size overflows")]
    ShapeOverflow { tensor: String, dims: Vec<u64> },

    /// A ggml type id that ggml never defined.
    #[error("tensor `{tensor}` has ggml type id {id}, which is not a ggml type this crate knows")]
    UnknownGgmlType { tensor: String, id: u32 },

    /// A ggml type that once existed and was removed (its layout is not defined any more).
    #[error(
        "tensor `{tensor}` has ggml type {name} (id {id}), which was removed from ggml; \
         convert the model again with a current llama.cpp"
    )]
    RemovedGgmlType { tensor: String, id: u32, name: &'static str },

    /// A type this crate cannot dequantise or quantise.
    #[error("{op}: ggml type {dtype} (id {id}) is not supported; supported: {supported}")]
    Unsupported { op: String, dtype: GgmlType, id: u32, supported: &'static str },

    /// A length that is not a whole number of blocks.
    #[error("{what}: {len} is not a multiple of the {dtype} block size {block}")]
    NotBlockMultiple { what: String, dtype: GgmlType, len: u64, block: u64 },

    /// A tensor whose data lies (partly) past the end of the file.
    #[error("tensor `{tensor}` data runs from byte {start} to {end}, past the end of the {len}-byte file")]
    TensorOutOfBounds { tensor: String, start: u64, end: u64, len: u64 },

    /// No tensor by that name.
    #[error("no tensor named `{name}` in the file")]
    MissingTensor { name: String },

    /// No metadata key by that name.
    #[error("no metadata key `{key}`")]
    MissingKey { key: String },

    /// A metadata key that holds a different type than asked for.
    #[error("metadata key `{key}` holds {found}, expected {expected}")]
    WrongType { key: String, expected: &'static str, found: String },

    /// A metadata value that does not fit the requested integer type.
    #[error("metadata key `{key}` holds {value}, which does not fit in {target}")]
    OutOfRange { key: String, value: String, target: &'static str },

    /// Quantising a NaN or infinite value.
    #[error("cannot quantise to {dtype}: element {index} is {value}, not finite")]
    NonFinite { dtype: GgmlType, index: usize, value: f32 },

    /// A block scale too large for the f16 field that stores it.
    #[error("cannot quantise to {dtype}: block {block} needs scale {scale}, beyond f16's range (65504)")]
    ScaleOverflow { dtype: GgmlType, block: usize, scale: f32 },

    /// Data whose length does not match the shape given for it.
    #[error("tensor `{tensor}`: shape {shape:?} needs {expected} {unit}, got {got}")]
    ShapeMismatch { tensor: String, shape: Vec<usize>, expected: u64, got: u64, unit: &'static str },

    /// A tensor name longer than llama.cpp accepts (GGML_MAX_NAME − 1 = 63 bytes).
    #[error("tensor name `{name}` is {len} bytes; llama.cpp accepts at most {max}")]
    NameTooLong { name: String, len: usize, max: usize },

    /// A writer value of the wrong type for a key with a fixed type (`general.alignment`: u32).
    #[error("metadata key `{key}` must be {expected}, got {found}")]
    WrongKeyType { key: String, expected: ValueType, found: ValueType },
}
