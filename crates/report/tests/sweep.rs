//! The sweeps' fits, best-learning-rate search, JSON contract and renderings.

use report::sweep::{
    fit_power_law, fit_power_law_offset, LrPoint, LrSweep, ScalePoint, ScaleSweep, SweepError, SWEEP_FORMAT_VERSION,
};

const WIDTHS: [usize; 3] = [64, 128, 256];

/// Learning rates 2^-12 ..= 2^-2, one per octave.
fn lr_grid() -> Vec<f64> {
    (-12..=-2).map(|e| 2f64.powi(e)).collect()
}

/// A loss that is a parabola in log2(lr) with its minimum at `2^optimum`.
fn parabola(lr: f64, optimum: f64, floor: f64) -> f64 {
    floor + 0.05 * (lr.log2() - optimum).powi(2)
}

/// Under standard parameterisation the optimum moves down one octave per doubling of width
/// (2 octaves over 64..256); under muP it stays at 2^-7.
fn lr_sweep() -> LrSweep {
    let mut points = Vec::new();
    for (i, &width) in WIDTHS.iter().enumerate() {
        let floor = 3.0 - 0.2 * i as f64;
        for lr in lr_grid() {
            for (parameterisation, optimum) in [("standard", -6.0 - i as f64), ("mup", -7.0)] {
                points.push(LrPoint {
                    parameterisation: parameterisation.into(),
                    width,
                    lr,
                    loss: parabola(lr, optimum, floor),
                    params: width * width * 12,
                });
            }
        }
    }
    LrSweep {
        format: SWEEP_FORMAT_VERSION,
        base_width: 64,
        steps: 200,
        tokens_per_step: 4096,
        seed: 7,
        points,
        seconds: 12.5,
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn power_law_recovers_exact_coefficients() {
    let x: Vec<f64> = [1e3, 3e3, 1e4, 3e4, 1e5, 3e5].to_vec();
    let y: Vec<f64> = x.iter().map(|x| 5.0 * x.powf(-0.3)).collect();
    let fit = fit_power_law(&x, &y, "params").expect("six positive points fit");
    assert_eq!(fit.x, "params");
    assert_eq!(fit.points, 6);
    assert_eq!(fit.offset, 0.0);
    assert!(close(fit.coefficient, 5.0, 1e-9), "a = {}", fit.coefficient);
    assert!(close(fit.exponent, 0.3, 1e-9), "alpha = {}", fit.exponent);
    assert!(fit.exponent_stderr < 1e-9, "stderr = {}", fit.exponent_stderr);
    assert!(close(fit.r2, 1.0, 1e-9));
    assert!(fit.rmse_log < 1e-9);
    assert!(close(fit.predict(2e4), 5.0 * 2e4f64.powf(-0.3), 1e-12));
    assert!(fit.equation().contains("loss ≈ 5.000 · N^−0.300"), "{}", fit.equation());
}

#[test]
fn power_law_on_noisy_points_has_an_honest_interval() {
    let x: Vec<f64> = (0..10).map(|i| 1e3 * 2f64.powi(i)).collect();
    // Deterministic multiplicative noise of up to ±4%.
    let y: Vec<f64> =
        x.iter().enumerate().map(|(i, x)| 5.0 * x.powf(-0.3) * (0.04 * (1.7 * i as f64 + 0.3).sin()).exp()).collect();
    let fit = fit_power_law(&x, &y, "params").expect("ten positive points fit");
    assert!(fit.exponent_stderr > 0.0);
    assert!(fit.exponent_stderr < 0.05, "stderr {} is too wide to mean anything", fit.exponent_stderr);
    // 95% interval with n - 2 = 8 degrees of freedom: t = 2.306.
    let half = 2.306 * fit.exponent_stderr;
    assert!(
        fit.exponent - half <= 0.3 && 0.3 <= fit.exponent + half,
        "alpha = {} ± {} does not contain 0.3",
        fit.exponent,
        half
    );
    assert!(fit.exponent != 0.3, "noise should move the estimate");
    assert!(fit.r2 < 1.0 && fit.r2 > 0.9, "r2 = {}", fit.r2);
    assert!(fit.rmse_log > 0.0);
}

#[test]
fn power_law_needs_three_positive_points() {
    assert!(fit_power_law(&[1.0, 2.0], &[3.0, 2.0], "params").is_none());
    // Only (1, 1) and (4, 2) are positive.
    assert!(fit_power_law(&[1.0, 2.0, 3.0, 4.0], &[1.0, 0.0, -1.0, 2.0], "params").is_none());
    assert!(fit_power_law(&[1.0, -2.0, 0.0, 4.0], &[1.0, 2.0, 3.0, 2.0], "params").is_none());
    assert!(fit_power_law(&[1.0, 2.0, f64::NAN, 4.0], &[1.0, 2.0, 3.0, f64::INFINITY], "params").is_none());
    // Mismatched lengths and no spread in x.
    assert!(fit_power_law(&[1.0, 2.0, 3.0], &[1.0, 2.0], "params").is_none());
    assert!(fit_power_law(&[2.0, 2.0, 2.0], &[1.0, 2.0, 3.0], "params").is_none());
    // A bad point among good ones is skipped, not fatal.
    let fit = fit_power_law(&[1.0, 2.0, 4.0, 8.0], &[4.0, -1.0, 1.0, 0.5], "params").expect("three good points");
    assert_eq!(fit.points, 3);
    assert!(close(fit.exponent, 1.0, 1e-9));
}

#[test]
fn offset_power_law_recovers_the_floor() {
    // x from 1 to 1e4: the power term stays above 1% of the floor, inside the offset grid's range.
    let x: Vec<f64> = (0..9).map(|i| 10f64.powf(i as f64 / 2.0)).collect();
    let y: Vec<f64> = x.iter().map(|x| 1.5 + 10.0 * x.powf(-0.5)).collect();
    let fit = fit_power_law_offset(&x, &y, "params").expect("nine positive points fit");
    assert!(close(fit.offset, 1.5, 0.02), "offset = {}", fit.offset);
    assert!(close(fit.exponent, 0.5, 0.05), "alpha = {}", fit.exponent);
    assert!(close(fit.coefficient, 10.0, 1.0), "a = {}", fit.coefficient);
    let plain = fit_power_law(&x, &y, "params").expect("plain fit");
    let (rss_offset, rss_plain) = (fit.residual_sum_of_squares(&x, &y), plain.residual_sum_of_squares(&x, &y));
    assert!(rss_offset < rss_plain, "offset rss {rss_offset} not below plain {rss_plain}");
    assert!(fit.r2 > plain.r2);
    assert!(fit.equation().starts_with("loss ≈ 1.50"), "{}", fit.equation());
    // Four points are needed.
    assert!(fit_power_law_offset(&x[..3], &y[..3], "params").is_none());
}

#[test]
fn best_lr_and_drift_tell_mup_from_standard() {
    let sweep = lr_sweep();
    let best = sweep.best();
    assert_eq!(best.len(), 6);
    for (i, &width) in WIDTHS.iter().enumerate() {
        let sp = best.iter().find(|b| b.parameterisation == "standard" && b.width == width).expect("standard row");
        assert_eq!(sp.lr, 2f64.powf(-6.0 - i as f64), "standard width {width}");
        assert!(close(sp.lr_fit.log2(), -6.0 - i as f64, 1e-9));
        assert!(!sp.at_edge);
        let mup = best.iter().find(|b| b.parameterisation == "mup" && b.width == width).expect("mup row");
        assert_eq!(mup.lr, 2f64.powi(-7), "mup width {width}");
        assert!(close(mup.loss, 3.0 - 0.2 * i as f64, 1e-12));
    }
    let drift = sweep.drift();
    assert_eq!(drift.len(), 2);
    assert_eq!(drift[0].0, "standard");
    assert_eq!(drift[1].0, "mup");
    assert!(close(drift[0].1, 2.0, 1e-9), "standard drift {}", drift[0].1);
    assert!(close(drift[1].1, 0.0, 1e-9), "mup drift {}", drift[1].1);
}

#[test]
fn parabola_finds_an_off_grid_optimum() {
    let points = lr_grid()
        .into_iter()
        .map(|lr| LrPoint { parameterisation: "mup".into(), width: 64, lr, loss: parabola(lr, -7.4, 2.0), params: 1 })
        .collect();
    let sweep = LrSweep { points, ..lr_sweep() };
    let best = sweep.best();
    assert_eq!(best.len(), 1);
    assert_eq!(best[0].lr, 2f64.powi(-7), "grid optimum");
    assert!(close(best[0].lr_fit.log2(), -7.4, 0.1), "refined optimum 2^{}", best[0].lr_fit.log2());
    assert!(best[0].lr_fit < best[0].lr);

    // At the edge of the grid there is nothing to fit: lr_fit = lr, and it is flagged.
    let points = lr_grid()
        .into_iter()
        .map(|lr| LrPoint { parameterisation: "mup".into(), width: 64, lr, loss: parabola(lr, -1.0, 2.0), params: 1 })
        .collect();
    let best = LrSweep { points, ..lr_sweep() }.best();
    assert_eq!(best[0].lr, 2f64.powi(-2));
    assert_eq!(best[0].lr_fit, best[0].lr);
    assert!(best[0].at_edge);
}

/// Standard width 64: the true optimum (2^-6) diverged, 2^-5 is -inf, 2^-4 is +inf.
fn with_divergence() -> LrSweep {
    let mut sweep = lr_sweep();
    for p in &mut sweep.points {
        if p.parameterisation == "standard" && p.width == 64 {
            let e = p.lr.log2().round() as i32;
            p.loss = match e {
                -6 => f64::NAN,
                -5 => f64::NEG_INFINITY,
                -4 => f64::INFINITY,
                _ => p.loss,
            };
        }
    }
    sweep
}

#[test]
fn diverged_runs_are_never_best_and_round_trip_as_nan() {
    let sweep = with_divergence();
    let best = sweep.best();
    let b = best.iter().find(|b| b.parameterisation == "standard" && b.width == 64).expect("row still has finite runs");
    assert!(b.loss.is_finite());
    assert_eq!(b.lr, 2f64.powi(-7), "next best finite point");
    // Its right neighbour diverged: no parabola, lr_fit stays on the grid.
    assert_eq!(b.lr_fit, b.lr);

    // A width where every run diverged has no best point.
    let mut all_div = lr_sweep();
    all_div.points.retain(|p| p.width == 64 && p.parameterisation == "mup");
    for p in &mut all_div.points {
        p.loss = f64::NAN;
    }
    assert!(all_div.best().is_empty());
    assert!(all_div.drift().is_empty());
    assert!(all_div.to_markdown().contains("No run reached a finite loss"));
    assert!(all_div.to_svg().expect("draws").starts_with("<svg"));

    let json = sweep.to_json();
    assert!(json.contains("null"));
    let back = LrSweep::from_json(&json).expect("reads back");
    assert_eq!(back.points.len(), sweep.points.len());
    for (a, b) in sweep.points.iter().zip(&back.points) {
        assert_eq!(a.parameterisation, b.parameterisation);
        assert_eq!((a.width, a.params), (b.width, b.params));
        assert_eq!(a.lr.to_bits(), b.lr.to_bits());
        if a.loss.is_finite() {
            assert_eq!(a.loss.to_bits(), b.loss.to_bits());
        } else {
            assert!(b.loss.is_nan(), "{} came back as {}", a.loss, b.loss);
        }
    }
    assert_eq!(back.best(), sweep.best());
}

#[test]
fn lr_json_rejects_other_formats_and_garbage() {
    let mut sweep = lr_sweep();
    sweep.format = SWEEP_FORMAT_VERSION + 1;
    assert!(matches!(LrSweep::from_json(&sweep.to_json()), Err(SweepError::UnsupportedFormat { kind: "lr", .. })));
    let err = LrSweep::from_json("{\"format\": 1}").expect_err("missing fields");
    assert!(matches!(err, SweepError::Json { kind: "lr", .. }));
    assert!(err.to_string().contains("ascent sweep lr"));
    assert!(LrSweep::from_json("not json").is_err());
}

#[test]
fn lr_markdown_marks_best_and_diverged() {
    let md = with_divergence().to_markdown();
    assert!(md.contains("## standard parameterisation"));
    assert!(md.contains("## muP"));
    assert!(md.contains("| div |"), "{md}");
    // mup width 64: best at 2^-7 with loss 3.000, in bold; 2^-6 beside it at 3.050, not bold.
    assert!(md.contains("**3.000**"), "{md}");
    assert!(md.contains("| 3.050 |"));
    assert!(md.contains("| 7.81e-3 |"), "lr column header 2^-7: {md}");
    assert!(md.contains("standard parameterisation: 1."), "drift line: {md}");
    assert!(md.contains("muP: 0.00 octaves across widths 64–256"), "{md}");
    assert!(md.contains("muP's optimum moves"));
}

#[test]
fn lr_svg_has_both_panels_and_every_width() {
    let svg = with_divergence().to_svg().expect("draws");
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    assert!(svg.trim_end().ends_with("</svg>"));
    for w in WIDTHS {
        assert!(svg.contains(&format!("width {w}")), "no label for width {w}");
    }
    assert!(svg.contains("standard parameterisation"));
    assert!(svg.contains("muP"));
    assert!(svg.contains("diverged"));
    assert!(svg.contains("learning rate"));
}

#[test]
fn lr_write_all_writes_three_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("nested");
    let sweep = with_divergence();
    sweep.write_all(&out).expect("writes");
    let json = std::fs::read_to_string(out.join("lr-sweep.json")).expect("json written");
    assert_eq!(LrSweep::from_json(&json).expect("parses").points.len(), sweep.points.len());
    assert_eq!(std::fs::read_to_string(out.join("lr-sweep.md")).expect("md written"), sweep.to_markdown());
    assert!(std::fs::read_to_string(out.join("lr-sweep.svg")).expect("svg written").starts_with("<svg"));
    let names: Vec<String> = std::fs::read_dir(&out)
        .expect("lists")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "no temporary file left behind: {names:?}");
}

/// Five models whose loss follows 1.5 + 30 · N^-0.3 exactly; the middle one stored no bits.
fn scale_sweep() -> ScaleSweep {
    let points: Vec<ScalePoint> = [(64usize, 2usize), (96, 3), (128, 4), (192, 6), (256, 8)]
        .iter()
        .map(|&(d, l)| {
            let params = 12 * d * d * l;
            let total = params + 2 * 512 * d;
            ScalePoint {
                name: format!("d{d}-l{l}"),
                d_model: d,
                n_layers: l,
                params,
                total_params: total,
                tokens: 2_000_000,
                flops: 6.0 * params as f64 * 2e6,
                loss: 1.5 + 30.0 * (params as f64).powf(-0.3),
                knowledge_bits: if d == 128 { f64::NAN } else { 0.8 * total as f64 },
                seconds: 10.0 + d as f64 / 10.0,
            }
        })
        .collect();
    let fits = ScaleSweep::fit_points(&points);
    ScaleSweep { format: SWEEP_FORMAT_VERSION, seed: 3, points, fits, seconds: 99.0 }
}

#[test]
fn scale_fits_pick_the_saturating_form_when_it_is_better() {
    let sweep = scale_sweep();
    let params: Vec<&_> = sweep.fits.iter().filter(|f| f.x == "params").collect();
    assert_eq!(params.len(), 2, "plain and offset fits on params: {:?}", sweep.fits);
    assert_eq!(params[0].offset, 0.0);
    assert!(close(params[1].offset, 1.5, 0.02), "offset {}", params[1].offset);
    assert!(close(params[1].exponent, 0.3, 0.05), "alpha {}", params[1].exponent);
    assert!(sweep.fits.iter().any(|f| f.x == "flops"));

    // On an exact plain power law the offset form earns nothing and is left out.
    let mut plain = sweep.clone();
    for p in &mut plain.points {
        p.loss = 5.0 * (p.params as f64).powf(-0.3);
    }
    let fits = ScaleSweep::fit_points(&plain.points);
    assert!(fits.iter().all(|f| f.offset == 0.0), "{fits:?}");
    assert_eq!(fits.len(), 2);
}

#[test]
fn scale_bits_per_param() {
    let sweep = scale_sweep();
    let per = sweep.bits_per_param();
    assert_eq!(per.len(), 5);
    assert_eq!(per[0].0, "d64-l2");
    assert!(close(per[0].1, 0.8, 1e-12));
    assert!(per[2].1.is_nan());
}

#[test]
fn scale_json_round_trip() {
    let sweep = scale_sweep();
    let json = sweep.to_json();
    let back = ScaleSweep::from_json(&json).expect("reads back");
    assert!(back.points[2].knowledge_bits.is_nan());
    assert_eq!(back.to_json(), json);
    assert_eq!(back.fits, sweep.fits);
    let mut finite = sweep.clone();
    finite.points[2].knowledge_bits = 1.0;
    assert_eq!(ScaleSweep::from_json(&finite.to_json()).expect("reads back"), finite);
    // A fit written before the offset existed reads as a plain law.
    let old = json.replace("\"offset\": 0.0,", "");
    assert_ne!(old, json);
    assert_eq!(ScaleSweep::from_json(&old).expect("reads old").fits[0].offset, 0.0);
    let mut future = sweep;
    future.format = 99;
    assert!(matches!(ScaleSweep::from_json(&future.to_json()), Err(SweepError::UnsupportedFormat { found: 99, .. })));
}

#[test]
fn scale_markdown_and_svg() {
    let sweep = scale_sweep();
    let md = sweep.to_markdown();
    assert!(md.contains("loss ≈ "), "{md}");
    assert!(md.contains("1.500 + 30.00 · N^−0.300 (α = 0.300 ±"), "{md}");
    assert!(md.contains("· C^−"), "flops fit: {md}");
    assert!(md.contains("`d64-l2`"));
    assert!(md.contains("| 0.800 |"), "bits per param: {md}");
    assert!(md.contains("| 1.2e12 |"), "FLOPs in scientific notation: {md}");
    assert!(md.contains("Physics of Language Models 3.3"));

    let svg = sweep.to_svg().expect("draws");
    assert!(svg.starts_with("<svg"));
    assert!(svg.contains("2 bits per parameter"));
    assert!(svg.contains("N^−0.300"), "fit equation in the legend");

    let dir = tempfile::tempdir().expect("temp dir");
    sweep.write_all(dir.path()).expect("writes");
    for name in ["scale-sweep.json", "scale-sweep.md", "scale-sweep.svg"] {
        assert!(dir.path().join(name).is_file(), "{name} missing");
    }

    // An empty sweep still renders.
    let empty = ScaleSweep { points: Vec::new(), fits: Vec::new(), ..scale_sweep() };
    assert!(empty.to_svg().expect("draws").starts_with("<svg"));
    assert!(empty.to_markdown().contains("No fit"));
}
