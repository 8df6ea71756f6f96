//! SGD, Adam and AdamW against golden trajectories from torch.optim itself.
//!
//! The fixtures in tests/fixtures were written by `scripts/torch_fixtures.py` with PyTorch
//! 2.15 (float32, CPU, `foreach=False`): initial parameters, the gradient of every step, and
//! the parameters after every step, with the learning rate halved half-way. Two tensors: 37
//! random normals, and 16 values at the edges of f32 (0, +-1e-30, +-1e30, +-65504, +-3e38,
//! subnormals) whose gradients include 0, 1e30 (g * g overflows) and a subnormal.

mod common;

use std::collections::HashMap;

use common::*;
use ndarray::{Array1, ArrayD};
use wgpu_optim::{
    cpu, Adam, AdamConfig, AdamW, AdamWConfig, Context, Layout, Optimizer, ParamSet, Sgd, SgdConfig,
};

/// Tolerance `TORCH_8ULP`: after every step, |ours - torch| <= 8 ULP of the largest finite
/// magnitude the parameter has had so far (errors made while it was large are carried as it
/// shrinks), or <= 1e-37 absolute. A GPU that flushes subnormals to zero stays within that
/// floor here: the subnormal parameters either take ordinary updates or stay put (0 against
/// 1e-40), and the subnormal gradient meets a parameter of 1, which it cannot move. PyTorch fuses some multiply-adds
/// on its vectorised CPU path and divides by scalars through a reciprocal, WGSL allows a few ULP
/// in division and sqrt, and the differences compound over the steps of a trajectory.
const TORCH_ULP: f32 = 8.0;

#[derive(Clone, Copy, Debug)]
enum Config {
    Sgd(SgdConfig),
    Adam(AdamConfig),
    AdamW(AdamWConfig),
}

struct Tensor {
    name: String,
    init: Vec<f32>,
    grads: Vec<Vec<f32>>,
    params: Vec<Vec<f32>>,
}

struct Fixture {
    name: String,
    config: Config,
    rates: Vec<f64>,
    tensors: Vec<Tensor>,
}

fn load(name: &str) -> Fixture {
    let path = format!(
        "{}/tests/fixtures/{name}.safetensors",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).expect("header");
    let meta: HashMap<String, String> = header.metadata().clone().expect("metadata");
    let file = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let f = |key: &str| -> f64 { meta[key].parse().expect(key) };
    let b = |key: &str| meta[key] == "true";
    let rates: Vec<f64> = meta["lr_per_step"]
        .split(',')
        .map(|r| r.parse().expect("lr"))
        .collect();
    let lr = rates[0];
    let config = match meta["optimizer"].as_str() {
        "sgd" => Config::Sgd(SgdConfig {
            lr,
            momentum: f("momentum"),
            dampening: f("dampening"),
            weight_decay: f("weight_decay"),
            nesterov: b("nesterov"),
            maximize: b("maximize"),
        }),
        kind @ ("adam" | "adamw") => {
            let adam = AdamConfig {
                lr,
                beta1: f("beta1"),
                beta2: f("beta2"),
                eps: f("eps"),
                weight_decay: f("weight_decay"),
                amsgrad: b("amsgrad"),
                maximize: b("maximize"),
                decoupled_weight_decay: false,
            };
            if kind == "adam" {
                Config::Adam(adam)
            } else {
                Config::AdamW(adam.into())
            }
        }
        other => panic!("unknown optimizer {other}"),
    };
    let read = |key: String| -> Vec<f32> {
        let view = file.tensor(&key).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(view.dtype(), safetensors::Dtype::F32, "{key}");
        view.data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    let tensors = ["random", "extreme"]
        .iter()
        .map(|&t| Tensor {
            name: t.to_owned(),
            init: read(format!("{t}/init")),
            grads: (1..=rates.len())
                .map(|k| read(format!("{t}/grad/{k}")))
                .collect(),
            params: (1..=rates.len())
                .map(|k| read(format!("{t}/param/{k}")))
                .collect(),
        })
        .collect();
    Fixture {
        name: name.to_owned(),
        config,
        rates,
        tensors,
    }
}

const FIXTURES: &[&str] = &[
    "sgd_plain",
    "sgd_weight_decay",
    "sgd_momentum",
    "sgd_dampening",
    "sgd_nesterov",
    "sgd_maximize",
    "sgd_all",
    "adam_default",
    "adam_weight_decay",
    "adam_amsgrad",
    "adam_maximize",
    "adam_all",
    "adamw_default",
    "adamw_amsgrad",
    "adamw_maximize",
];

fn layout(fixture: &Fixture) -> Layout {
    fixture
        .tensors
        .iter()
        .fold(Layout::builder(), |b, t| {
            b.tensor(t.name.clone(), &[t.init.len()])
        })
        .build()
        .expect("layout")
}

fn array(values: &[f32]) -> ArrayD<f32> {
    Array1::from_vec(values.to_vec()).into_dyn()
}

/// Deviation of `got` from torch's `want` in ULP of the step's magnitude (see `TORCH_ULP`);
/// non-finite values must match exactly.
fn deviation(got: f32, want: f32, scale: f32) -> f32 {
    if !want.is_finite() || !got.is_finite() {
        let same = (want.is_nan() && got.is_nan()) || want == got;
        return if same { 0.0 } else { f32::INFINITY };
    }
    let err = (got - want).abs();
    if err <= 1e-37 {
        return 0.0;
    }
    err / ulp(scale.max(want.abs()))
}

/// Largest finite magnitude of element `i` of `t` up to and including step `k` (0-based).
fn magnitude(t: &Tensor, k: usize, i: usize) -> f32 {
    std::iter::once(&t.init)
        .chain(&t.params[..=k])
        .map(|p| p[i])
        .filter(|p| p.is_finite())
        .fold(0.0f32, |m, p| m.max(p.abs()))
}

/// Walks the trajectory, calling `step(k, lr)` after loading step k's gradients with
/// `load_grads`, and returns the worst deviation in ULP.
fn follow(
    fixture: &Fixture,
    mut load_grads: impl FnMut(&str, &[f32]),
    mut step: impl FnMut(f64),
    mut params: impl FnMut(&str) -> Vec<f32>,
) -> f32 {
    let mut worst = 0.0f32;
    for (k, &lr) in fixture.rates.iter().enumerate() {
        for t in &fixture.tensors {
            load_grads(&t.name, &t.grads[k]);
        }
        step(lr);
        for t in &fixture.tensors {
            let got = params(&t.name);
            for (i, (&g, &w)) in got.iter().zip(&t.params[k]).enumerate() {
                let scale = magnitude(t, k, i);
                let d = deviation(g, w, scale);
                assert!(
                    d <= TORCH_ULP,
                    "{} step {} {}[{i}]: ours {g:e}, torch {w:e} (scale {scale:e}): {d} ULP",
                    fixture.name,
                    k + 1,
                    t.name
                );
                worst = worst.max(d);
            }
        }
    }
    worst
}

fn gpu_optimizer(config: Config, set: &ParamSet) -> Box<dyn Optimizer> {
    match config {
        Config::Sgd(c) => Box::new(Sgd::new(set, c).expect("sgd")),
        Config::Adam(c) => Box::new(Adam::new(set, c).expect("adam")),
        Config::AdamW(c) => Box::new(AdamW::new(set, c).expect("adamw")),
    }
}

fn cpu_optimizer(config: Config, set: &cpu::ParamSet) -> Box<dyn cpu::Optimizer> {
    match config {
        Config::Sgd(c) => Box::new(cpu::Sgd::new(set, c).expect("sgd")),
        Config::Adam(c) => Box::new(cpu::Adam::new(set, c).expect("adam")),
        Config::AdamW(c) => Box::new(cpu::AdamW::new(set, c).expect("adamw")),
    }
}

fn run_gpu(ctx: &Context, fixture: &Fixture) -> f32 {
    let set = ParamSet::new(ctx, layout(fixture)).expect("set");
    for t in &fixture.tensors {
        set.upload(&t.name, array(&t.init).view()).expect("upload");
    }
    let mut opt = gpu_optimizer(fixture.config, &set);
    follow(
        fixture,
        |name, g| set.upload_grad(name, array(g).view()).expect("grad"),
        |lr| {
            opt.set_learning_rate(lr).expect("lr");
            opt.step_submit(&set).expect("step");
        },
        |name| set.download(name).expect("download").into_iter().collect(),
    )
}

fn run_cpu(fixture: &Fixture) -> f32 {
    let set = std::cell::RefCell::new(cpu::ParamSet::new(layout(fixture)));
    for t in &fixture.tensors {
        set.borrow_mut()
            .upload(&t.name, array(&t.init).view())
            .expect("upload");
    }
    let mut opt = cpu_optimizer(fixture.config, &set.borrow());
    follow(
        fixture,
        |name, g| {
            set.borrow_mut()
                .upload_grad(name, array(g).view())
                .expect("grad")
        },
        |lr| {
            opt.set_learning_rate(lr).expect("lr");
            opt.step(&mut set.borrow_mut()).expect("step");
        },
        |name| {
            set.borrow()
                .param(name)
                .expect("param")
                .iter()
                .copied()
                .collect()
        },
    )
}

#[test]
fn cpu_reference_follows_torch() {
    for name in FIXTURES {
        let fixture = load(name);
        let worst = run_cpu(&fixture);
        eprintln!("cpu {name}: worst {worst:.2} ULP");
    }
}

#[test]
fn gpu_follows_torch_on_every_adapter() {
    let fixtures: Vec<Fixture> = FIXTURES.iter().map(|n| load(n)).collect();
    on_every_adapter(|ctx| {
        for fixture in &fixtures {
            let worst = run_gpu(ctx, fixture);
            eprintln!("{} {}: worst {worst:.2} ULP", ctx.describe(), fixture.name);
        }
    });
}
