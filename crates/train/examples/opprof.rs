#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use model::burn::prelude::*;
use model::burn::tensor::activation::{log_softmax, silu, softmax};
use model::burn::tensor::Distribution;
use std::time::Instant;

fn time<F: FnMut() -> f32>(name: &str, mut f: F) {
    for _ in 0..2 {
        f();
    }
    let t0 = Instant::now();
    let n = 10;
    for _ in 0..n {
        f();
    }
    println!("{name:40} {:8.2} ms", t0.elapsed().as_secs_f64() * 1e3 / n as f64);
}

fn main() {
    let threads: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(2);
    model::engine::set_threads(threads);
    let d = Device::flex();
    let r = |s: Vec<usize>| Tensor::<2>::random(s, Distribution::Normal(0.0, 1.0), &d);
    let x = r(vec![2048, 256]);
    let w = r(vec![256, 256]);
    let w2 = r(vec![256, 688]);
    let w3 = r(vec![688, 256]);
    time("matmul 2048x256x256", || x.clone().matmul(w.clone()).slice([0..1, 0..1]).into_scalar::<f32>());
    time("matmul 2048x256x688", || x.clone().matmul(w2.clone()).slice([0..1, 0..1]).into_scalar::<f32>());
    let h = r(vec![2048, 688]);
    time("matmul 2048x688x256", || h.clone().matmul(w3.clone()).slice([0..1, 0..1]).into_scalar::<f32>());
    let q = Tensor::<4>::random([16, 4, 128, 64], Distribution::Normal(0.0, 1.0), &d);
    let k = Tensor::<4>::random([16, 4, 128, 64], Distribution::Normal(0.0, 1.0), &d);
    time("bmm q@kT (16,4,128,64)", || {
        q.clone().matmul(k.clone().swap_dims(2, 3)).slice([0..1, 0..1, 0..1, 0..1]).into_scalar::<f32>()
    });
    let s = Tensor::<4>::random([16, 4, 128, 128], Distribution::Normal(0.0, 1.0), &d);
    time("softmax (16,4,128,128)", || softmax(s.clone(), 3).slice([0..1, 0..1, 0..1, 0..1]).into_scalar::<f32>());
    let mask = Tensor::<2, Bool>::tril_mask([128, 128], 0, &d);
    time("mask_fill (16,4,128,128)", || {
        s.clone()
            .mask_fill(mask.clone().unsqueeze::<4>(), f32::NEG_INFINITY)
            .slice([0..1, 0..1, 0..1, 0..1])
            .into_scalar::<f32>()
    });
    time("bmm p@v", || s.clone().matmul(k.clone()).slice([0..1, 0..1, 0..1, 0..1]).into_scalar::<f32>());
    let lg = r(vec![2048, 512]);
    time("log_softmax (2048,512)", || log_softmax(lg.clone(), 1).slice([0..1, 0..1]).into_scalar::<f32>());
    time("silu (2048,688)", || silu(h.clone()).slice([0..1, 0..1]).into_scalar::<f32>());
    time("exp (2048,688)", || h.clone().exp().slice([0..1, 0..1]).into_scalar::<f32>());
    time("sigmoid (2048,688)", || {
        model::burn::tensor::activation::sigmoid(h.clone()).slice([0..1, 0..1]).into_scalar::<f32>()
    });
    time("silu composed (2048,688)", || {
        let e = h.clone().clamp_min(-80.0).neg().exp() + 1.0;
        (h.clone() / e).slice([0..1, 0..1]).into_scalar::<f32>()
    });
    time("tanh (2048,688)", || h.clone().tanh().slice([0..1, 0..1]).into_scalar::<f32>());
    let w2t = r(vec![688, 256]);
    time("matmul 2048x256x688 (w^T view)", || {
        x.clone().matmul(w2t.clone().transpose()).slice([0..1, 0..1]).into_scalar::<f32>()
    });
    let w4 = r(vec![256, 704]);
    time("matmul 2048x256x704", || x.clone().matmul(w4.clone()).slice([0..1, 0..1]).into_scalar::<f32>());
    let w5 = r(vec![256, 1376]);
    time("matmul 2048x256x1376", || x.clone().matmul(w5.clone()).slice([0..1, 0..1]).into_scalar::<f32>());
    let w6 = r(vec![256, 768]);
    time("matmul 2048x256x768", || x.clone().matmul(w6.clone()).slice([0..1, 0..1]).into_scalar::<f32>());
    let xt = r(vec![256, 2048]);
    time("matmul xT@h 256x2048x688 (wgrad)", || xt.clone().matmul(h.clone()).slice([0..1, 0..1]).into_scalar::<f32>());
    time("matmul x^T view@h (wgrad)", || {
        x.clone().transpose().matmul(h.clone()).slice([0..1, 0..1]).into_scalar::<f32>()
    });
    time("T-trick 688: (w^T @ x^T)^T contiguous", || {
        w2t.clone()
            .matmul(x.clone().transpose())
            .transpose()
            .reshape([1, 2048 * 688])
            .slice([0..1, 0..1])
            .into_scalar::<f32>()
    });
    let wt256 = r(vec![256, 256]);
    time("T-trick 256: (w^T @ x^T)^T contiguous", || {
        wt256
            .clone()
            .matmul(x.clone().transpose())
            .transpose()
            .reshape([1, 2048 * 256])
            .slice([0..1, 0..1])
            .into_scalar::<f32>()
    });
    time("T-trick 256: no copy", || {
        wt256.clone().matmul(x.clone().transpose()).slice([0..1, 0..1]).into_scalar::<f32>()
    });
    time("mul (2048,688)", || (h.clone() * h.clone()).slice([0..1, 0..1]).into_scalar::<f32>());
    let x3 = x.clone().reshape([16, 128, 256]);
    time("rmsnorm (16,128,256)", || {
        let ms = x3.clone().square().mean_dim(2);
        (x3.clone() / (ms + 1e-5).sqrt()).slice([0..1, 0..1, 0..1]).into_scalar::<f32>()
    });
    time("swap+reshape (16,128,4,64)->(16,4,128,64)", || {
        x3.clone()
            .reshape([16, 128, 4, 64])
            .swap_dims(1, 2)
            .reshape([16, 4, 128 * 64])
            .slice([0..1, 0..1, 0..1])
            .into_scalar::<f32>()
    });
    let cos = r(vec![128, 32]);
    time("rope (16,4,128,64)", || {
        let x1 = q.clone().narrow(3, 0, 32);
        let x2 = q.clone().narrow(3, 32, 32);
        let c = cos.clone().unsqueeze::<4>();
        Tensor::cat(vec![x1.clone() * c.clone() - x2.clone() * c.clone(), x1 * c.clone() + x2 * c], 3)
            .slice([0..1, 0..1, 0..1, 0..1])
            .into_scalar::<f32>()
    });
}
