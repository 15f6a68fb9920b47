//! The model against an independent PyTorch implementation (tests/golden/make_golden.py):
//! identical weights and tokens must give the same logits, loss and gradients.

use std::collections::HashMap;
use std::path::PathBuf;

use model::burn::module::Module;
use model::burn::optim::GradientsParams;
use model::burn::prelude::*;
use model::{engine, weights, ModelConfig, Transformer};
use safetensors::SafeTensors;

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

fn read_f32(st: &SafeTensors, name: &str) -> (Vec<usize>, Vec<f32>) {
    let v = st.tensor(name).unwrap_or_else(|_| panic!("golden file lacks {name}"));
    let data = v.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    (v.shape().to_vec(), data)
}

fn tokens(st: &SafeTensors, name: &str, device: &Device) -> Tensor<2, Int> {
    let (shape, v) = read_f32(st, name);
    let ints: Vec<i64> = v.iter().map(|&x| x as i64).collect();
    Tensor::from_data(TensorData::new(ints, [shape[0], shape[1]]), device)
}

/// max |a - b| / (max |b| + tiny)
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())) + 1e-12;
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn check(arch: &str) {
    let cfg: ModelConfig =
        serde_json::from_str(&std::fs::read_to_string(golden(&format!("{arch}.config.json"))).unwrap()).unwrap();
    cfg.validate().unwrap();
    let device = engine::training_device(&Device::flex());
    let weights_bytes = std::fs::read(golden(&format!("{arch}.weights.safetensors"))).unwrap();
    let model = weights::load_safetensors(Transformer::new(&cfg, &device), &weights_bytes).unwrap();
    let expected_bytes = std::fs::read(golden(&format!("{arch}.expected.safetensors"))).unwrap();
    let exp = SafeTensors::deserialize(&expected_bytes).unwrap();

    let x = tokens(&exp, "tokens", &device);
    let y = tokens(&exp, "targets", &device);
    let logits = model.forward(x.clone());
    let (shape, want) = read_f32(&exp, "logits");
    assert_eq!(logits.dims().to_vec(), shape);
    let got = logits.try_into_vec_as::<f32>().unwrap();
    let e = rel_err(&got, &want);
    assert!(e < 2e-5, "{arch}: logits differ from PyTorch, relative error {e}");

    let loss = model.loss(x, y, None);
    let (_, want_loss) = read_f32(&exp, "loss");
    let got_loss = loss.clone().into_scalar::<f32>();
    assert!(
        (got_loss - want_loss[0]).abs() < 1e-5 * want_loss[0].abs().max(1.0),
        "{arch}: loss {got_loss} vs {}",
        want_loss[0]
    );

    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let named = weights::named_grads(&model, &grads);
    let n_weights = SafeTensors::deserialize(&weights_bytes).unwrap().names().len();
    assert_eq!(named.len(), n_weights, "{arch}: every parameter must receive a gradient");
    for (name, shape, got) in named {
        let (want_shape, want) = read_f32(&exp, &format!("grad.{name}"));
        assert_eq!(shape, want_shape, "{arch}: gradient shape of {name}");
        let e = rel_err(&got, &want);
        assert!(e < 1e-4, "{arch}: gradient of {name} differs from PyTorch, relative error {e}");
    }

    // Export is the exact inverse of import.
    let back = weights::to_safetensors(&model.valid(), &HashMap::new());
    let st_in = SafeTensors::deserialize(&weights_bytes).unwrap();
    let st_out = SafeTensors::deserialize(&back).unwrap();
    for name in st_in.names() {
        assert_eq!(st_in.tensor(name).unwrap().data(), st_out.tensor(name).unwrap().data(), "{name} round trip");
    }
}

#[test]
fn llama_matches_pytorch() {
    check("llama");
}

#[test]
fn variant_architecture_matches_pytorch() {
    // LayerNorm, GELU, learned positions, biases, tied head, QK-norm, parallel residual, MQA.
    check("variant");
}
