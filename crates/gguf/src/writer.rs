//! [`GgufWriter`]: builds a GGUF v3 file from metadata and tensors.
//!
//! Layout written (see the crate docs): header, metadata in insertion order, tensor infos in
//! insertion order, zero padding to the alignment, then each tensor's data padded with zeros to
//! the alignment, so every offset is a multiple of it (as gguf-py and llama.cpp write).

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::quant::quantize;
use crate::reader::{DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS};
use crate::types::GgmlType;
use crate::value::{Array, Value, ValueType};

/// The format version written.
pub const VERSION: u32 = 3;
/// The longest tensor name llama.cpp accepts (`GGML_MAX_NAME` − 1).
pub const MAX_NAME_LEN: usize = 63;

/// A tensor waiting to be written.
struct PendingTensor {
    name: String,
    /// ggml order (innermost first).
    dims: Vec<u64>,
    dtype: GgmlType,
    bytes: Vec<u8>,
}

/// Collects metadata and tensors, then writes them as a GGUF v3 file.
///
/// ```
/// use gguf::{GgmlType, GgufFile, GgufWriter};
/// let mut w = GgufWriter::new();
/// w.add_metadata("general.architecture", "llama")?;
/// w.add_tensor_f32("w", &[2, 32], &vec![0.5; 64], GgmlType::Q8_0)?;
/// let file = GgufFile::from_bytes(w.to_bytes())?;
/// assert_eq!(file.tensor_f32("w")?.0, vec![2, 32]);
/// # Ok::<(), gguf::Error>(())
/// ```
#[derive(Default)]
pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    keys: HashSet<String>,
    tensors: Vec<PendingTensor>,
    names: HashSet<String>,
    alignment: Option<u64>,
}

impl GgufWriter {
    /// An empty writer (alignment 32 unless `general.alignment` is added).
    pub fn new() -> GgufWriter {
        GgufWriter::default()
    }

    /// Adds a metadata pair; keys are written in the order added. `general.alignment` must be a
    /// u32 power of two and sets the data alignment.
    pub fn add_metadata(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Result<()> {
        let key = key.into();
        let value = value.into();
        if self.keys.contains(&key) {
            return Err(Error::DuplicateKey { key });
        }
        if key == "general.alignment" {
            match value {
                Value::U32(a) if a.is_power_of_two() => self.alignment = Some(a as u64),
                Value::U32(a) => return Err(Error::BadAlignment { value: a as u64 }),
                ref other => {
                    return Err(Error::WrongKeyType { key, expected: ValueType::U32, found: other.value_type() })
                }
            }
        }
        self.keys.insert(key.clone());
        self.metadata.push((key, value));
        Ok(())
    }

    /// Adds a tensor from f32 values in row-major order with row-major `shape` (outermost first,
    /// as [`crate::GgufFile::tensor_f32`] returns it), converted or quantised to `dtype`. The
    /// last dimension (the row) must be a multiple of `dtype`'s block size.
    pub fn add_tensor_f32(
        &mut self,
        name: impl Into<String>,
        shape: &[usize],
        values: &[f32],
        dtype: GgmlType,
    ) -> Result<()> {
        let name = name.into();
        let dims = self.check_tensor(&name, shape, dtype)?;
        let n = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        if n != Some(values.len() as u64) {
            return Err(Error::ShapeMismatch {
                tensor: name,
                shape: shape.to_vec(),
                expected: n.unwrap_or(u64::MAX),
                got: values.len() as u64,
                unit: "values",
            });
        }
        let bytes = quantize(dtype, values)?;
        self.push(name, dims, dtype, bytes);
        Ok(())
    }

    /// Adds a tensor from its raw bytes in `dtype`'s encoding, with row-major `shape`.
    pub fn add_tensor_bytes(
        &mut self,
        name: impl Into<String>,
        shape: &[usize],
        dtype: GgmlType,
        bytes: Vec<u8>,
    ) -> Result<()> {
        let name = name.into();
        let dims = self.check_tensor(&name, shape, dtype)?;
        let expected = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).and_then(|n| dtype.bytes_for(n));
        let Some(expected) = expected else {
            return Err(Error::ShapeOverflow { tensor: name, dims });
        };
        if expected != bytes.len() as u64 {
            return Err(Error::ShapeMismatch {
                tensor: name,
                shape: shape.to_vec(),
                expected,
                got: bytes.len() as u64,
                unit: "bytes",
            });
        }
        self.push(name, dims, dtype, bytes);
        Ok(())
    }

    /// Checks name and shape; returns the dims in ggml order.
    fn check_tensor(&self, name: &str, shape: &[usize], dtype: GgmlType) -> Result<Vec<u64>> {
        if name.len() > MAX_NAME_LEN {
            return Err(Error::NameTooLong { name: name.to_string(), len: name.len(), max: MAX_NAME_LEN });
        }
        if self.names.contains(name) {
            return Err(Error::DuplicateTensor { name: name.to_string() });
        }
        if shape.len() > MAX_DIMS {
            return Err(Error::TooManyDims { tensor: name.to_string(), n_dims: shape.len() as u64, max: MAX_DIMS });
        }
        let row = shape.last().copied().unwrap_or(1);
        if !row.is_multiple_of(dtype.block_size()) {
            return Err(Error::NotBlockMultiple {
                what: format!("row length (last dimension) of tensor `{name}`"),
                dtype,
                len: row as u64,
                block: dtype.block_size() as u64,
            });
        }
        Ok(shape.iter().rev().map(|&d| d as u64).collect())
    }

    fn push(&mut self, name: String, dims: Vec<u64>, dtype: GgmlType, bytes: Vec<u8>) {
        self.names.insert(name.clone());
        self.tensors.push(PendingTensor { name, dims, dtype, bytes });
    }

    fn alignment(&self) -> u64 {
        self.alignment.unwrap_or(DEFAULT_ALIGNMENT)
    }

    /// Writes the file to `out`.
    pub fn write_to(&self, mut out: impl Write) -> std::io::Result<()> {
        let mut head = Vec::new();
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&VERSION.to_le_bytes());
        head.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        head.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            put_string(&mut head, key);
            head.extend_from_slice(&value.value_type().id().to_le_bytes());
            put_value(&mut head, value);
        }
        let align = self.alignment();
        let mut offset = 0u64;
        for t in &self.tensors {
            put_string(&mut head, &t.name);
            head.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                head.extend_from_slice(&d.to_le_bytes());
            }
            head.extend_from_slice(&t.dtype.id().to_le_bytes());
            head.extend_from_slice(&offset.to_le_bytes());
            offset += (t.bytes.len() as u64).div_ceil(align) * align;
        }
        pad(&mut head, align);
        out.write_all(&head)?;
        let zeros = vec![0u8; align as usize];
        for t in &self.tensors {
            out.write_all(&t.bytes)?;
            let padding = (t.bytes.len() as u64).div_ceil(align) * align - t.bytes.len() as u64;
            out.write_all(&zeros[..padding as usize])?;
        }
        out.flush()
    }

    /// The file as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out).expect("writing to a Vec<u8> cannot fail");
        out
    }

    /// Writes the file to `path` atomically: to a temporary file in the same folder, synced,
    /// then renamed over `path`, so readers see the old file or the whole new one.
    pub fn write_file(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let file_name = path.file_name().ok_or_else(|| Error::Write {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"),
        })?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(file_name);
        tmp_name.push(format!(".tmp-{}", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        let result = self.write_tmp(&tmp).and_then(|()| {
            std::fs::rename(&tmp, path).map_err(|source| Error::Write { path: path.to_path_buf(), source })
        });
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
            return result;
        }
        sync_parent(path);
        Ok(())
    }

    fn write_tmp(&self, tmp: &Path) -> Result<()> {
        let err = |source| Error::Write { path: tmp.to_path_buf(), source };
        let file = std::fs::File::create(tmp).map_err(err)?;
        let mut buffered = std::io::BufWriter::new(file);
        self.write_to(&mut buffered).map_err(err)?;
        let file = buffered.into_inner().map_err(|e| err(e.into_error()))?;
        file.sync_all().map_err(err)
    }
}

/// Makes the rename durable where the platform allows syncing a directory (best effort).
fn sync_parent(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn pad(buf: &mut Vec<u8>, align: u64) {
    let len = (buf.len() as u64).div_ceil(align) * align;
    buf.resize(len as usize, 0);
}

fn put_string(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn put_value(buf: &mut Vec<u8>, value: &Value) {
    match value {
        Value::U8(v) => buf.push(*v),
        Value::I8(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::U16(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::I16(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::U32(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::I32(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::F32(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::Bool(v) => buf.push(*v as u8),
        Value::String(s) => put_string(buf, s),
        Value::Array(a) => put_array(buf, a),
        Value::U64(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::I64(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::F64(v) => buf.extend_from_slice(&v.to_le_bytes()),
    }
}

fn put_array(buf: &mut Vec<u8>, a: &Array) {
    buf.extend_from_slice(&a.element_type().id().to_le_bytes());
    buf.extend_from_slice(&(a.len() as u64).to_le_bytes());
    macro_rules! each {
        ($v:expr) => {
            for x in $v {
                buf.extend_from_slice(&x.to_le_bytes());
            }
        };
    }
    match a {
        Array::U8(v) => buf.extend_from_slice(v),
        Array::I8(v) => each!(v),
        Array::U16(v) => each!(v),
        Array::I16(v) => each!(v),
        Array::U32(v) => each!(v),
        Array::I32(v) => each!(v),
        Array::F32(v) => each!(v),
        Array::U64(v) => each!(v),
        Array::I64(v) => each!(v),
        Array::F64(v) => each!(v),
        Array::Bool(v) => buf.extend(v.iter().map(|&b| b as u8)),
        Array::String(v) => v.iter().for_each(|s| put_string(buf, s)),
        Array::Array(v) => v.iter().for_each(|inner| put_array(buf, inner)),
    }
}
