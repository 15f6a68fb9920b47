//! Weights to and from safetensors bytes, in the Hugging Face Llama naming and layout:
//! `model.layers.{i}.self_attn.q_proj.weight` with linear weights stored `[out, in]`,
//! `model.embed_tokens.weight` `[V, D]`, `lm_head.weight` only when untied. Our module paths
//! already use these names; the only changes are the `model.` prefix and transposing linear
//! weights, since burn stores them `[in, out]`.
//!
//! This module does no file IO: callers own paths and atomic writes.

use std::collections::{BTreeMap, HashMap};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::transformer::Transformer;

/// Why a safetensors payload cannot be loaded into a model.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("not a valid safetensors file (truncated or corrupt?): {0}")]
    Format(String),
    #[error("tensor `{name}` is missing from the checkpoint")]
    Missing { name: String },
    #[error("tensor `{name}` has shape {found:?} in the checkpoint but the model expects {expected:?}; the checkpoint was written for another architecture")]
    Shape { name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("tensor `{name}` has dtype {dtype}; only F32, F16 and BF16 are supported")]
    Dtype { name: String, dtype: String },
    #[error("the checkpoint has tensors the model does not: {names:?}; it was written for another architecture")]
    Unused { names: Vec<String> },
    #[error("tensor `{name}` cannot be read: {message}")]
    Read { name: String, message: String },
}

/// Named tensors a model can be loaded from, in the Hugging Face names and layout (linear
/// weights `[out, in]`): a safetensors file, the shards of a sharded checkpoint, or an adapter
/// over another format (GGUF) that renames and converts.
pub trait TensorSource {
    /// Every tensor name the source holds.
    fn names(&self) -> Vec<String>;
    /// Shape of `name` (outermost first), if the source holds it.
    fn shape(&self, name: &str) -> Option<Vec<usize>>;
    /// Values of `name` as f32, row-major.
    fn read(&self, name: &str) -> Result<Vec<f32>, WeightsError>;
}

impl TensorSource for SafeTensors<'_> {
    fn names(&self) -> Vec<String> {
        SafeTensors::names(self).into_iter().map(str::to_string).collect()
    }
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.tensor(name).ok().map(|v| v.shape().to_vec())
    }
    fn read(&self, name: &str) -> Result<Vec<f32>, WeightsError> {
        let view = self.tensor(name).map_err(|_| WeightsError::Missing { name: name.into() })?;
        to_f32(&view, name)
    }
}

/// The shards of one checkpoint: a name is read from the shard that holds it.
impl TensorSource for [SafeTensors<'_>] {
    fn names(&self) -> Vec<String> {
        self.iter().flat_map(TensorSource::names).collect()
    }
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.iter().find_map(|s| TensorSource::shape(s, name))
    }
    fn read(&self, name: &str) -> Result<Vec<f32>, WeightsError> {
        match self.iter().find(|s| s.tensor(name).is_ok()) {
            Some(s) => TensorSource::read(s, name),
            None => Err(WeightsError::Missing { name: name.into() }),
        }
    }
}

/// Hugging Face name of the parameter at burn path `path`, and whether it is a linear weight
/// (stored transposed).
fn hf_name(path: &str) -> (String, bool) {
    let linear = path.ends_with("_proj.weight")
        || path.ends_with("_proj_with_mqa.weight")
        || path.ends_with(".moe.gate.weight")
        || path == "lm_head.weight";
    let name = if path.starts_with("lm_head") { path.to_string() } else { format!("model.{path}") };
    (name, linear)
}

struct Collect<'a> {
    path: Vec<String>,
    /// Collect these gradients instead of the parameter values.
    grads: Option<&'a GradientsParams>,
    out: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl ModuleVisitor for Collect<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let (name, linear) = hf_name(&self.path.join("."));
        let mut t = match self.grads {
            None => p.val(),
            Some(g) => match g.get::<D>(p.id) {
                Some(g) => g,
                None => return,
            },
        };
        if linear && D == 2 {
            t = t.transpose();
        }
        let shape = t.dims().to_vec();
        let data = t.try_into_vec_as::<f32>().expect("float parameters read as f32");
        self.out.push((name, shape, data));
    }
}

/// All parameters as `(hf_name, shape, values)`, in module order.
pub fn named_tensors(model: &Transformer) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut c = Collect { path: Vec::new(), grads: None, out: Vec::new() };
    model.visit(&mut c);
    c.out
}

/// Gradients of all parameters as `(hf_name, shape, values)`, in the same names and layout as
/// [`named_tensors`]; parameters without a gradient are left out.
pub fn named_grads(model: &Transformer, grads: &GradientsParams) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut c = Collect { path: Vec::new(), grads: Some(grads), out: Vec::new() };
    model.visit(&mut c);
    c.out
}

/// Serialise every parameter as F32 safetensors bytes, with `metadata` in the header.
pub fn to_safetensors(model: &Transformer, metadata: &HashMap<String, String>) -> Vec<u8> {
    tensors_to_safetensors(&named_tensors(model), metadata)
}

/// Serialise `(hf_name, shape, values)` tensors (as [`named_tensors`] gives them) as F32
/// safetensors bytes, with `metadata` in the header.
pub fn tensors_to_safetensors(
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    metadata: &HashMap<String, String>,
) -> Vec<u8> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, v)| (n.clone(), s.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let views: BTreeMap<String, TensorView<'_>> = bytes
        .iter()
        .map(|(n, s, b)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), b).expect("shape matches data")))
        .collect();
    let mut meta = metadata.clone();
    meta.entry("format".into()).or_insert_with(|| "pt".into());
    safetensors::serialize(views, Some(meta)).expect("serialising in-memory tensors cannot fail")
}

fn to_f32(view: &TensorView<'_>, name: &str) -> Result<Vec<f32>, WeightsError> {
    let d = view.data();
    let half = |f: fn(u16) -> f32| d.chunks_exact(2).map(|c| f(u16::from_le_bytes([c[0], c[1]]))).collect();
    match view.dtype() {
        Dtype::F32 => Ok(d.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
        Dtype::BF16 => Ok(half(|b| f32::from_bits((b as u32) << 16))),
        Dtype::F16 => Ok(half(f16_to_f32)),
        other => Err(WeightsError::Dtype { name: name.into(), dtype: format!("{other:?}") }),
    }
}

/// IEEE half to single precision.
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // subnormal: renormalise
            let mut e = 127 - 15 + 1;
            let mut m = m;
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | ((e as u32) << 23) | ((m & 0x3ff) << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

struct Apply<'a> {
    path: Vec<String>,
    st: &'a dyn TensorSource,
    used: Vec<String>,
    errors: Vec<WeightsError>,
}

impl ModuleMapper for Apply<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (name, linear) = hf_name(&self.path.join("."));
        let current = p.val();
        let device = current.device();
        let mut expected = current.dims().to_vec();
        if linear && D == 2 {
            expected.reverse();
        }
        let Some(found) = self.st.shape(&name) else {
            self.errors.push(WeightsError::Missing { name });
            return p;
        };
        self.used.push(name.clone());
        if found != expected {
            self.errors.push(WeightsError::Shape { name, expected, found });
            return p;
        }
        let values = match self.st.read(&name) {
            Ok(v) => v,
            Err(e) => {
                self.errors.push(e);
                return p;
            }
        };
        let mut t = Tensor::<D>::from_data(TensorData::new(values, expected), &device);
        if linear && D == 2 {
            t = t.transpose();
        }
        let id = p.id;
        p.transform_for_load(t, id)
    }
}

/// Load safetensors bytes into `model`, which fixes the architecture: every parameter must be
/// present with the right shape and nothing else may be in the file. Parameter ids are kept.
pub fn load_safetensors(model: Transformer, bytes: &[u8]) -> Result<Transformer, WeightsError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| WeightsError::Format(e.to_string()))?;
    load_from(model, &st)
}

/// Load every parameter of `model` from `source` (same rules as [`load_safetensors`]).
pub fn load_from(model: Transformer, source: &dyn TensorSource) -> Result<Transformer, WeightsError> {
    let mut apply = Apply { path: Vec::new(), st: source, used: Vec::new(), errors: Vec::new() };
    let model = model.map(&mut apply);
    if let Some(e) = apply.errors.into_iter().next() {
        return Err(e);
    }
    let used: std::collections::HashSet<&String> = apply.used.iter().collect();
    let mut unused: Vec<String> = source.names().into_iter().filter(|n| !used.contains(n)).collect();
    if !unused.is_empty() {
        unused.sort();
        return Err(WeightsError::Unused { names: unused });
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.33325195);
        assert_eq!(f16_to_f32(0x0001), 5.9604645e-8);
    }
}
