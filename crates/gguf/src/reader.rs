//! [`GgufFile`]: parses a GGUF v2/v3 file (see the crate docs for the layout) and reads its
//! metadata and tensors.
//!
//! Parsing never trusts a count or length: each is checked against the bytes left in the file
//! before anything is allocated, so a corrupt or hostile file yields an [`Error`], not a panic
//! or an out-of-memory abort.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::quant::dequantize_named;
use crate::types::{ggml_type_name, GgmlType};
use crate::value::{Array, Value, ValueType};

/// The magic at the start of every GGUF file.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's `GGML_MAX_DIMS`.
pub const MAX_DIMS: usize = 4;
/// How deep arrays of arrays may nest before the reader refuses the file.
pub const MAX_ARRAY_DEPTH: usize = 16;

/// One tensor's entry in the file's tensor table.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// The tensor's name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` is the innermost (fastest-varying, contiguous) one.
    pub dims: Vec<u64>,
    /// Element type.
    pub dtype: GgmlType,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
    /// Size of the data in bytes.
    pub n_bytes: u64,
}

impl TensorInfo {
    /// The shape in row-major order, outermost first (`dims` reversed): a ggml tensor with
    /// `ne = [in, out]` is an `[out, in]` matrix.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }

    /// The number of elements (1 for a tensor with no dimensions).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// The bytes of an opened file: read into memory, or mapped.
enum Storage {
    Owned(Vec<u8>),
    #[cfg(feature = "mmap")]
    Mapped(memmap2::Mmap),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Owned(v) => v,
            #[cfg(feature = "mmap")]
            Storage::Mapped(m) => m,
        }
    }
}

/// A parsed GGUF file: header, metadata and tensor table, with the tensor data kept in memory
/// (or mapped) and decoded on request.
pub struct GgufFile {
    storage: Storage,
    header: Header,
}

/// Everything parsed from the front of the file.
struct Header {
    version: u32,
    metadata: Vec<(String, Value)>,
    key_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    alignment: u64,
    data_offset: u64,
}

impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.header.version)
            .field("len", &self.storage.bytes().len())
            .field("metadata_keys", &self.header.metadata.len())
            .field("tensors", &self.header.tensors.len())
            .field("alignment", &self.header.alignment)
            .finish()
    }
}

macro_rules! scalar_getters {
    ($($fn_name:ident -> $t:ty, $variant:ident, $label:literal;)*) => {$(
        #[doc = concat!("The ", $label, " at `key`; errors when it is missing or of another type.")]
        pub fn $fn_name(&self, key: &str) -> Result<$t> {
            match self.require(key)? {
                Value::$variant(v) => Ok(v.clone()),
                other => Err(wrong_type(key, $label, other)),
            }
        }
    )*};
}

macro_rules! array_getters {
    ($($fn_name:ident -> $t:ty, $variant:ident, $label:literal;)*) => {$(
        #[doc = concat!("The ", $label, " at `key`; errors when it is missing or of another type.")]
        pub fn $fn_name(&self, key: &str) -> Result<&[$t]> {
            match self.require(key)? {
                Value::Array(Array::$variant(v)) => Ok(v),
                other => Err(wrong_type(key, $label, other)),
            }
        }
    )*};
}

fn wrong_type(key: &str, expected: &'static str, found: &Value) -> Error {
    Error::WrongType { key: key.to_string(), expected, found: found.describe() }
}

impl GgufFile {
    /// Opens and parses the file at `path`. With the `mmap` feature (default) the file is mapped,
    /// so tensor data is only read when asked for; the file must not change while it is open.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile> {
        let path = path.as_ref();
        let read_err = |source| Error::Read { path: path.to_path_buf(), source };
        #[cfg(feature = "mmap")]
        {
            let file = std::fs::File::open(path).map_err(read_err)?;
            let len = file.metadata().map_err(read_err)?.len();
            if len > 0 {
                // SAFETY: the map is read-only and private to this value; as with every mapped
                // file, another process truncating or rewriting it while open is undefined
                // behaviour, which the docs of `open` rule out.
                let map = unsafe { memmap2::Mmap::map(&file) }.map_err(read_err)?;
                return GgufFile::from_storage(Storage::Mapped(map));
            }
        }
        let bytes = std::fs::read(path).map_err(read_err)?;
        GgufFile::from_storage(Storage::Owned(bytes))
    }

    /// Parses a GGUF file held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile> {
        GgufFile::from_storage(Storage::Owned(bytes))
    }

    fn from_storage(storage: Storage) -> Result<GgufFile> {
        let header = parse(storage.bytes())?;
        Ok(GgufFile { storage, header })
    }

    /// The format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.header.version
    }

    /// The data alignment (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.header.alignment
    }

    /// Byte offset of the data section from the start of the file.
    pub fn data_offset(&self) -> u64 {
        self.header.data_offset
    }

    /// All metadata, in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.header.metadata
    }

    /// The value at `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.header.key_index.get(key).map(|&i| &self.header.metadata[i].1)
    }

    fn require(&self, key: &str) -> Result<&Value> {
        self.get(key).ok_or_else(|| Error::MissingKey { key: key.to_string() })
    }

    scalar_getters! {
        get_u8 -> u8, U8, "u8";
        get_i8 -> i8, I8, "i8";
        get_u16 -> u16, U16, "u16";
        get_i16 -> i16, I16, "i16";
        get_u32 -> u32, U32, "u32";
        get_i32 -> i32, I32, "i32";
        get_f32 -> f32, F32, "f32";
        get_bool -> bool, Bool, "bool";
        get_u64 -> u64, U64, "u64";
        get_i64 -> i64, I64, "i64";
        get_f64 -> f64, F64, "f64";
    }

    array_getters! {
        get_str_array -> String, String, "string array";
        get_f32_array -> f32, F32, "f32 array";
        get_i32_array -> i32, I32, "i32 array";
        get_u32_array -> u32, U32, "u32 array";
        get_u8_array -> u8, U8, "u8 array";
    }

    /// The string at `key`; errors when it is missing or of another type.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        match self.require(key)? {
            Value::String(s) => Ok(s),
            other => Err(wrong_type(key, "string", other)),
        }
    }

    /// The array (of any element type) at `key`; errors when it is missing or not an array.
    pub fn get_array(&self, key: &str) -> Result<&Array> {
        match self.require(key)? {
            Value::Array(a) => Ok(a),
            other => Err(wrong_type(key, "array", other)),
        }
    }

    /// The integer at `key` as `usize`, whatever its integer type (writers disagree on u32 vs
    /// u64 for sizes); errors when missing, not an integer, negative or too large.
    pub fn get_usize(&self, key: &str) -> Result<usize> {
        let value = self.require(key)?;
        let n = value.as_integer().ok_or_else(|| wrong_type(key, "an integer", value))?;
        usize::try_from(n).map_err(|_| Error::OutOfRange {
            key: key.to_string(),
            value: n.to_string(),
            target: "usize",
        })
    }

    /// The tensor table, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.header.tensors
    }

    /// The table entry of tensor `name`.
    pub fn tensor(&self, name: &str) -> Result<&TensorInfo> {
        self.header
            .tensor_index
            .get(name)
            .map(|&i| &self.header.tensors[i])
            .ok_or_else(|| Error::MissingTensor { name: name.to_string() })
    }

    /// The raw bytes of tensor `name`, as stored (quantised blocks for quantised types).
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8]> {
        let info = self.tensor(name)?;
        // Bounds were checked when the file was parsed.
        let start = (self.header.data_offset + info.offset) as usize;
        Ok(&self.storage.bytes()[start..start + info.n_bytes as usize])
    }

    /// Tensor `name` dequantised to f32, with its row-major shape (outermost first; see
    /// [`TensorInfo::shape`]). The values are in the same (row-major) order.
    pub fn tensor_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let info = self.tensor(name)?;
        let bytes = self.tensor_bytes(name)?;
        let values = dequantize_named(info.dtype, bytes, &format!("tensor `{name}`"))?;
        Ok((info.shape(), values))
    }
}

/// A position in the file being parsed.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::Truncated {
                offset: self.pos as u64,
                what: what(),
                needed: n,
                available: self.remaining(),
            });
        }
        let bytes = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64, what)?);
        Ok(out)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A u64 count of items each taking at least `min_each` bytes, refused when the rest of
    /// the file cannot hold that many.
    fn count(&mut self, min_each: u64, what: &dyn Fn() -> String) -> Result<usize> {
        let offset = self.pos as u64;
        let count = self.u64(what)?;
        if count > self.remaining() / min_each.max(1) {
            return Err(Error::CountTooLarge { offset, what: what(), count, remaining: self.remaining() });
        }
        Ok(count as usize)
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String> {
        let offset = self.pos as u64;
        let len = self.count(1, &|| format!("length of {}", what()))?;
        let bytes = self.take(len as u64, what)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_string()),
            Err(source) => Err(Error::InvalidUtf8 { offset, what: what(), source }),
        }
    }

    fn value_type(&mut self, what: &dyn Fn() -> String) -> Result<ValueType> {
        let offset = self.pos as u64;
        let id = self.u32(&|| format!("type of {}", what()))?;
        ValueType::from_id(id).ok_or_else(|| Error::UnknownValueType { offset, what: what(), id })
    }

    fn bool(&mut self, what: &dyn Fn() -> String) -> Result<bool> {
        let offset = self.pos as u64;
        match self.array::<1>(what)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            byte => Err(Error::InvalidBool { offset, what: what(), byte }),
        }
    }

    fn value(&mut self, ty: ValueType, what: &dyn Fn() -> String) -> Result<Value> {
        Ok(match ty {
            ValueType::U8 => Value::U8(u8::from_le_bytes(self.array(what)?)),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.array(what)?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array(what)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array(what)?)),
            ValueType::U32 => Value::U32(u32::from_le_bytes(self.array(what)?)),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array(what)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array(what)?)),
            ValueType::U64 => Value::U64(u64::from_le_bytes(self.array(what)?)),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array(what)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array(what)?)),
            ValueType::Bool => Value::Bool(self.bool(what)?),
            ValueType::String => Value::String(self.string(what)?),
            ValueType::Array => Value::Array(self.array_value(what, 1)?),
        })
    }

    /// An array: element type, count, elements. `depth` counts the enclosing arrays.
    fn array_value(&mut self, what: &dyn Fn() -> String, depth: usize) -> Result<Array> {
        if depth > MAX_ARRAY_DEPTH {
            return Err(Error::TooDeep { offset: self.pos as u64, what: what(), max: MAX_ARRAY_DEPTH });
        }
        let ty = self.value_type(&|| format!("element type of {}", what()))?;
        let n = self.count(ty.min_encoded_size(), &|| format!("element count of {}", what()))?;
        let elem = |i: usize| move || format!("element {i} of {}", what());
        macro_rules! fixed {
            ($variant:ident, $t:ty) => {{
                let size = std::mem::size_of::<$t>();
                let bytes = self.take((n * size) as u64, what)?;
                Array::$variant(
                    bytes
                        .chunks_exact(size)
                        .map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk of size_of")))
                        .collect(),
                )
            }};
        }
        Ok(match ty {
            ValueType::U8 => fixed!(U8, u8),
            ValueType::I8 => fixed!(I8, i8),
            ValueType::U16 => fixed!(U16, u16),
            ValueType::I16 => fixed!(I16, i16),
            ValueType::U32 => fixed!(U32, u32),
            ValueType::I32 => fixed!(I32, i32),
            ValueType::F32 => fixed!(F32, f32),
            ValueType::U64 => fixed!(U64, u64),
            ValueType::I64 => fixed!(I64, i64),
            ValueType::F64 => fixed!(F64, f64),
            ValueType::Bool => Array::Bool((0..n).map(|i| self.bool(&elem(i))).collect::<Result<_>>()?),
            ValueType::String => Array::String((0..n).map(|i| self.string(&elem(i))).collect::<Result<_>>()?),
            ValueType::Array => {
                Array::Array((0..n).map(|i| self.array_value(&elem(i), depth + 1)).collect::<Result<_>>()?)
            }
        })
    }

    /// One tensor info: name, n_dims, dims, type, offset.
    fn tensor_info(&mut self, index: usize) -> Result<TensorInfo> {
        let name = self.string(&|| format!("name of tensor #{index}"))?;
        let what = |field: &'static str| {
            let name = name.clone();
            move || format!("{field} of tensor `{name}`")
        };
        let n_dims = self.u32(&what("dimension count"))? as u64;
        if n_dims > MAX_DIMS as u64 {
            return Err(Error::TooManyDims { tensor: name, n_dims, max: MAX_DIMS });
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(self.u64(&what("dimensions"))?);
        }
        let type_id = self.u32(&what("ggml type"))?;
        let offset = self.u64(&what("data offset"))?;
        let dtype = match GgmlType::from_id(type_id) {
            Some(t) => t,
            None => {
                return Err(match ggml_type_name(type_id) {
                    Some(type_name) => Error::RemovedGgmlType { tensor: name, id: type_id, name: type_name },
                    None => Error::UnknownGgmlType { tensor: name, id: type_id },
                })
            }
        };
        let row = dims.first().copied().unwrap_or(1);
        if !row.is_multiple_of(dtype.block_size() as u64) {
            return Err(Error::NotBlockMultiple {
                what: format!("row length (dims[0]) of tensor `{name}`"),
                dtype,
                len: row,
                block: dtype.block_size() as u64,
            });
        }
        let n_bytes = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d)).and_then(|n| dtype.bytes_for(n));
        let Some(n_bytes) = n_bytes else {
            return Err(Error::ShapeOverflow { tensor: name, dims });
        };
        Ok(TensorInfo { name, dims, dtype, offset, n_bytes })
    }
}

/// Parses the header, metadata and tensor table, and checks every tensor's data lies in `buf`.
fn parse(buf: &[u8]) -> Result<Header> {
    let mut c = Cursor { buf, pos: 0 };
    let magic: [u8; 4] = c.array(&|| "magic".to_string())?;
    if magic != MAGIC {
        return Err(Error::BadMagic { found: magic });
    }
    let version = c.u32(&|| "version".to_string())?;
    if version != 2 && version != 3 {
        let hint = if version.swap_bytes() == 2 || version.swap_bytes() == 3 {
            " (this looks like a big-endian file, which is not supported)"
        } else if version == 1 {
            " (version 1 files must be converted with a current llama.cpp)"
        } else {
            ""
        };
        return Err(Error::UnsupportedVersion { version, hint });
    }
    // A tensor info takes at least 24 bytes (name length, n_dims, type, offset); a key/value
    // pair at least 13 (key length, value type, one byte of value).
    let n_tensors = c.u64(&|| "tensor count".to_string())?;
    let n_kv = c.count(13, &|| "metadata key/value count".to_string())?;
    if n_tensors > c.remaining() / 24 {
        return Err(Error::CountTooLarge {
            offset: 8,
            what: "tensor count".to_string(),
            count: n_tensors,
            remaining: c.remaining(),
        });
    }

    let mut metadata = Vec::with_capacity(n_kv);
    let mut key_index = HashMap::with_capacity(n_kv);
    for i in 0..n_kv {
        let key = c.string(&|| format!("key of metadata pair #{i}"))?;
        let what = || format!("value of metadata key `{key}`");
        let ty = c.value_type(&what)?;
        let value = c.value(ty, &what)?;
        if key_index.insert(key.clone(), metadata.len()).is_some() {
            return Err(Error::DuplicateKey { key });
        }
        metadata.push((key, value));
    }

    let alignment = match key_index.get("general.alignment").map(|&i| &metadata[i].1) {
        None => DEFAULT_ALIGNMENT,
        Some(Value::U32(a)) if a.is_power_of_two() => *a as u64,
        Some(Value::U32(a)) => return Err(Error::BadAlignment { value: *a as u64 }),
        Some(other) => return Err(wrong_type("general.alignment", "u32", other)),
    };

    let n_tensors = n_tensors as usize;
    let mut tensors = Vec::with_capacity(n_tensors);
    let mut tensor_index = HashMap::with_capacity(n_tensors);
    for i in 0..n_tensors {
        let info = c.tensor_info(i)?;
        if tensor_index.insert(info.name.clone(), i).is_some() {
            return Err(Error::DuplicateTensor { name: info.name });
        }
        tensors.push(info);
    }

    let data_offset = (c.pos as u64).div_ceil(alignment) * alignment;
    let len = buf.len() as u64;
    for t in &tensors {
        let start = data_offset.checked_add(t.offset);
        let end = start.and_then(|s| s.checked_add(t.n_bytes));
        match (start, end) {
            (Some(_), Some(end)) if end <= len => {}
            _ => {
                return Err(Error::TensorOutOfBounds {
                    tensor: t.name.clone(),
                    start: start.unwrap_or(u64::MAX),
                    end: end.unwrap_or(u64::MAX),
                    len,
                })
            }
        }
    }

    Ok(Header { version, metadata, key_index, tensors, tensor_index, alignment, data_offset })
}
