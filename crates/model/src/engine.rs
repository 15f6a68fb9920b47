//! Everything that is specific to the tensor engine (burn 0.22.1) and not to a model: device
//! selection, seeding, the compute thread pool, forced parameter initialisation and stable
//! parameter ids. An engine upgrade should touch this file and little else.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::prelude::*;

/// Which compute backend to run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// burn's `flex` CPU backend (always available).
    Cpu,
    /// burn's wgpu backend (Vulkan/Metal); needs the `wgpu` cargo feature.
    Wgpu,
    /// burn's CUDA backend; needs the `cuda` cargo feature.
    Cuda,
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" | "flex" => Ok(Backend::Cpu),
            "wgpu" | "vulkan" => Ok(Backend::Wgpu),
            "cuda" => Ok(Backend::Cuda),
            other => Err(format!("unknown backend `{other}` (expected cpu, wgpu or cuda)")),
        }
    }
}

/// Build a plain (inference) device for `backend`, or explain which cargo feature is missing.
pub fn device(backend: Backend) -> Result<Device, String> {
    match backend {
        Backend::Cpu => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        Backend::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(not(feature = "wgpu"))]
        Backend::Wgpu => {
            Err("this binary was built without the `wgpu` feature (cargo build --release --features wgpu)".into())
        }
        #[cfg(feature = "cuda")]
        Backend::Cuda => Ok(Device::cuda(0)),
        #[cfg(not(feature = "cuda"))]
        Backend::Cuda => {
            Err("this binary was built without the `cuda` feature (cargo build --release --features cuda)".into())
        }
    }
}

/// The autodiff (training) version of a device.
pub fn training_device(dev: &Device) -> Device {
    dev.clone().autodiff()
}

/// Set the size of the global compute thread pool. Must run before the first tensor op; later
/// calls are ignored (the pool is global). Returns whether this call set it.
pub fn set_threads(threads: usize) -> bool {
    if threads == 0 {
        return false;
    }
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().is_ok()
}

/// Compute threads of the CPU backend (the size of the global rayon pool).
pub fn threads() -> usize {
    rayon::current_num_threads()
}

/// Seed the engine's random generator (initialisation, `random`, `categorical`).
///
/// The CPU backend keeps one generator per process, so a seed followed by draws is only
/// reproducible if no other thread draws in between: use [`with_seed`] for that.
pub fn seed(dev: &Device, seed: u64) {
    dev.seed(seed);
}

static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Seed the generator and run `draw` while no other caller of `with_seed` can draw, so that
/// concurrent runs in one process (parallel tests, several trainings) each get exactly the
/// values their seed implies.
pub fn with_seed<R>(dev: &Device, seed: u64, draw: impl FnOnce() -> R) -> R {
    let _guard = SEEDED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    dev.seed(seed);
    draw()
}

/// burn draws parameter values lazily (on first use), so seeding before `init` is not enough
/// for reproducibility. This visitor touches every parameter to draw it now.
struct Materialise;

impl ModuleVisitor for Materialise {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let _ = p.val();
    }
}

/// Draw every lazily-initialised parameter of `module` now, in a fixed order.
pub fn materialise<M: Module>(module: &M) {
    module.visit(&mut Materialise);
}

/// Give every parameter an id derived from its path in the module tree (FNV-1a of
/// `layers.0.attn.wq.weight`, ...). burn keys optimiser state by `ParamId`, and fresh ids are
/// random; stable ids let optimiser state saved by one process attach to a model whose weights
/// were loaded from safetensors in another.
pub fn stable_param_ids<M: Module>(module: M) -> M {
    module.map(&mut StableIds { path: Vec::new() })
}

struct StableIds {
    path: Vec<String>,
}

fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

impl ModuleMapper for StableIds {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, mut param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.id = ParamId::from(fnv1a(&self.path.join(".")));
        param
    }
}
