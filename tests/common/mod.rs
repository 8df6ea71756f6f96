//! Shared set-up of the integration tests: every adapter, seeded data and named tolerances.
#![allow(dead_code)]

use std::sync::OnceLock;

use ndarray::{ArrayD, IxDyn};
use wgpu_optim::{cpu, Context, Layout, ParamSet};

/// One context per adapter wgpu can see (lavapipe and llvmpipe GL on a machine without a
/// GPU). Panics, never skips, when there is none.
pub fn contexts() -> &'static [Context] {
    static CONTEXTS: OnceLock<Vec<Context>> = OnceLock::new();
    CONTEXTS.get_or_init(|| {
        let contexts: Vec<Context> = Context::enumerate_adapters()
            .into_iter()
            .filter(|a| a.get_info().backend != wgpu::Backend::Noop)
            .map(|a| Context::from_adapter(a).expect("device on an enumerated adapter"))
            .collect();
        assert!(
            !contexts.is_empty(),
            "no wgpu adapter found: install mesa-vulkan-drivers (lavapipe) or a GPU driver"
        );
        contexts
    })
}

/// Runs `test` once on every adapter, naming the adapter when it fails.
pub fn on_every_adapter(test: impl Fn(&Context)) {
    for ctx in contexts() {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(ctx)));
        if let Err(panic) = result {
            eprintln!("failed on adapter {}", ctx.describe());
            std::panic::resume_unwind(panic);
        }
    }
}

/// SplitMix64: a small seeded generator, so every run sees the same data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    pub fn array(&mut self, shape: &[usize]) -> ArrayD<f32> {
        ArrayD::from_shape_simple_fn(IxDyn(shape), || self.uniform())
    }
}

/// A layout with one 1-D tensor per length, named `t0`, `t1`, ...
pub fn layout_of(lengths: &[usize]) -> Layout {
    lengths
        .iter()
        .enumerate()
        .fold(Layout::builder(), |b, (i, &n)| {
            b.tensor(format!("t{i}"), &[n])
        })
        .build()
        .expect("valid layout")
}

/// A GPU set and a CPU set of the same layout holding the same values.
pub fn twin_sets(
    ctx: &Context,
    layout: &Layout,
    values: &[ArrayD<f32>],
) -> (ParamSet, cpu::ParamSet) {
    let gpu = ParamSet::new(ctx, layout.clone()).expect("gpu set");
    let mut cpu = cpu::ParamSet::new(layout.clone());
    for (t, v) in layout.tensors().iter().zip(values) {
        gpu.upload(t.name(), v.view()).expect("upload");
        cpu.upload(t.name(), v.view()).expect("upload");
    }
    (gpu, cpu)
}

/// Writes the same gradients to both sets.
pub fn set_grads(gpu: &ParamSet, cpu: &mut cpu::ParamSet, grads: &[ArrayD<f32>]) {
    for (t, g) in gpu.layout().tensors().iter().zip(grads) {
        gpu.upload_grad(t.name(), g.view()).expect("upload grad");
        cpu.upload_grad(t.name(), g.view()).expect("upload grad");
    }
}

/// Distance between adjacent f32 values at magnitude `x`.
pub fn ulp(x: f32) -> f32 {
    let x = x.abs();
    if x < f32::MIN_POSITIVE {
        return f32::from_bits(1);
    }
    f32::from_bits(x.to_bits() + 1) - x
}

/// Tolerance `ONE_STEP_4ULP`: after one step, |gpu - cpu| <= 4 ULP of the larger of |p before|
/// and |p after|, or <= 1e-37 absolute (WGSL allows a few ULP in division and sqrt, fused
/// multiply-add and flushed subnormals).
pub fn assert_one_step_close(gpu: &[f32], cpu: &[f32], before: &[f32], what: &str) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    for (i, ((&g, &c), &b)) in gpu.iter().zip(cpu).zip(before).enumerate() {
        if g == c || (g.is_nan() && c.is_nan()) {
            continue;
        }
        let scale = b.abs().max(c.abs());
        let err = (g - c).abs();
        assert!(
            err <= 4.0 * ulp(scale) || err <= 1e-37,
            "{what}[{i}]: gpu {g:e} cpu {c:e} (before {b:e}): error {err:e} > 4 ULP of {scale:e}"
        );
    }
}

/// Tolerance `MANY_STEPS_1E5`: after many steps, |gpu - cpu| <= 1e-5 |cpu| + 1e-7.
pub fn assert_many_steps_close(gpu: &[f32], cpu: &[f32], what: &str) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    for (i, (&g, &c)) in gpu.iter().zip(cpu).enumerate() {
        let err = (g - c).abs();
        assert!(
            err <= 1e-5 * c.abs() + 1e-7,
            "{what}[{i}]: gpu {g:e} cpu {c:e}: error {err:e} > 1e-5 relative + 1e-7"
        );
    }
}

/// Tolerance `HAND_4ULP`: a hand-derived f32 value, within 4 ULP of itself.
pub fn assert_hand(got: f32, want: f32, what: &str) {
    assert!(
        (got - want).abs() <= 4.0 * ulp(want),
        "{what}: got {got:.9} want {want:.9}"
    );
}

/// Parameters of every tensor, concatenated in layout order (padding excluded).
pub fn gpu_params(set: &ParamSet) -> Vec<f32> {
    let arena = set.download_arena().expect("download");
    set.layout()
        .tensors()
        .iter()
        .flat_map(|t| arena[t.range()].to_vec())
        .collect()
}

/// Parameters of every tensor of a CPU set, concatenated in layout order.
pub fn cpu_params(set: &cpu::ParamSet) -> Vec<f32> {
    set.layout()
        .tensors()
        .iter()
        .flat_map(|t| set.params().as_slice().expect("contiguous")[t.range()].to_vec())
        .collect()
}

/// Lengths every optimizer is checked at: empty, tails around the workgroup size and the
/// chunk length, and one tensor over a million elements.
pub const LENGTHS: &[usize] = &[0, 1, 3, 42, 63, 64, 65, 255, 257, 4097, 1_000_003];

/// Steps a GPU optimizer and its CPU reference side by side on random data with fresh random
/// gradients each step, then holds the GPU to the reference: `ONE_STEP_4ULP` after one step,
/// `MANY_STEPS_1E5` after more.
pub fn check_against_reference(
    ctx: &Context,
    steps: usize,
    seed: u64,
    gpu_opt: impl FnOnce(&ParamSet) -> Box<dyn wgpu_optim::Optimizer>,
    cpu_opt: impl FnOnce(&cpu::ParamSet) -> Box<dyn cpu::Optimizer>,
) {
    let layout = layout_of(LENGTHS);
    let mut rng = Rng::new(seed);
    let shapes: Vec<Vec<usize>> = layout
        .tensors()
        .iter()
        .map(|t| t.shape().to_vec())
        .collect();
    let values: Vec<_> = shapes.iter().map(|s| rng.array(s)).collect();
    let (gpu, mut cpu) = twin_sets(ctx, &layout, &values);
    let mut gpu_opt = gpu_opt(&gpu);
    let mut cpu_opt = cpu_opt(&cpu);

    let before = cpu_params(&cpu);
    for _ in 0..steps {
        let grads: Vec<_> = shapes.iter().map(|s| rng.array(s)).collect();
        set_grads(&gpu, &mut cpu, &grads);
        gpu_opt.step_submit(&gpu).expect("gpu step");
        cpu_opt.step(&mut cpu).expect("cpu step");
    }

    let (g, c) = (gpu_params(&gpu), cpu_params(&cpu));
    assert_ne!(c, before, "the reference must have moved");
    if steps == 1 {
        assert_one_step_close(&g, &c, &before, "params after one step");
    } else {
        assert_many_steps_close(&g, &c, &format!("params after {steps} steps"));
    }
    assert_eq!(gpu_opt.step_counts(), cpu_opt.step_counts());
}

/// Builds a one-tensor-per-value GPU set holding `values`.
pub fn scalar_set(ctx: &Context, values: &[f32]) -> ParamSet {
    let layout = layout_of(&vec![1; values.len()]);
    let set = ParamSet::new(ctx, layout).expect("set");
    for (i, &v) in values.iter().enumerate() {
        set.upload(&format!("t{i}"), ndarray::arr1(&[v]).into_dyn().view())
            .expect("upload");
    }
    set
}

/// Uploads the same scalar gradient to every tensor of `set`.
pub fn fill_grads(set: &ParamSet, g: f32) {
    for t in set.layout().tensors() {
        let grad = ArrayD::from_elem(IxDyn(t.shape()), g);
        set.upload_grad(t.name(), grad.view()).expect("upload grad");
    }
}

/// First element of tensor `name`.
pub fn first(set: &ParamSet, name: &str) -> f32 {
    set.download(name)
        .expect("download")
        .iter()
        .copied()
        .next()
        .expect("non-empty")
}

/// Records one step per learning rate, each submitted alone or all into one encoder before a
/// single submit.
pub fn step_with_rates(
    ctx: &Context,
    opt: &mut dyn wgpu_optim::Optimizer,
    set: &ParamSet,
    rates: &[f64],
    one_submit: bool,
) {
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    for &lr in rates {
        opt.set_learning_rate(lr).expect("valid lr");
        if one_submit {
            opt.step(&mut encoder, set).expect("step");
        } else {
            opt.step_submit(set).expect("step");
        }
    }
    ctx.queue().submit([encoder.finish()]);
}
