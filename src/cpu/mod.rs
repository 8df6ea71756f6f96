//! The CPU reference: the same optimizers on ndarray, with the same arithmetic in the same
//! order as the shaders, run in parallel over the same chunks.
//!
//! It is the oracle of the tests and the CPU side of every benchmark.

mod adam;
mod gd;
mod momentum;
mod sgd;

use std::sync::Arc;

use ndarray::{Array1, ArrayD, ArrayViewD, ArrayViewMutD, IxDyn};
use rayon::prelude::*;

use crate::kernel::{StepUniform, TensorStep};
use crate::layout::{Chunk, Layout, TensorInfo};
use crate::optim::{advance_steps, check_config_change, check_lr, skip_mode_factors, Rule};
use crate::precision::round_to_f16;
use crate::{
    AdamConfig, AdamWConfig, Error, GdConfig, GradPolicy, MomentumConfig, Precision, Result,
    SgdConfig,
};

/// Gradient descent on the CPU.
pub type Gd = Reference<GdConfig>;

/// Exponential-average momentum on the CPU.
pub type Momentum = Reference<MomentumConfig>;

/// PyTorch's SGD on the CPU.
pub type Sgd = Reference<SgdConfig>;

/// Adam on the CPU.
pub type Adam = Reference<AdamConfig>;

/// AdamW on the CPU.
pub type AdamW = Reference<AdamWConfig>;

/// An optimizer whose state lives in host memory beside a [`ParamSet`].
pub trait Optimizer {
    /// Applies one update to every tensor of `set` that has a gradient.
    fn step(&mut self, set: &mut ParamSet) -> Result<()>;

    /// The learning rate used by the next step.
    fn learning_rate(&self) -> f64;

    /// Changes the learning rate for the steps from now on.
    fn set_learning_rate(&mut self, lr: f64) -> Result<()>;

    /// How many updates each tensor has received.
    fn step_counts(&self) -> &[u64];

    /// Sets loss scaling, clipping and non-finite skipping, as
    /// [`crate::Optimizer::set_grad_policy`] does on the GPU.
    fn set_grad_policy(&mut self, policy: GradPolicy) -> Result<()>;

    /// The gradient policy in force.
    fn grad_policy(&self) -> &GradPolicy;

    /// The L2 norm of the unscaled gradients in the last step that computed one (with
    /// clipping or skipping on); NaN if a gradient was not finite.
    fn last_grad_norm(&self) -> f32;

    /// How many steps were skipped for a non-finite gradient.
    fn skipped_steps(&self) -> u64;
}

/// The element-wise arithmetic of a rule, written once more for the CPU in the shader's
/// order of operations (one file per rule, named like its shader). Implementations are
/// `#[inline(always)]` so that their loops are compiled into the AVX2 variant of the caller.
pub trait Update: Rule {
    /// Updates one chunk: `params` and each of the `state` arenas (in [`Rule::state`]
    /// order) in place, from the gradients `grads` of the same elements.
    fn update(
        &self,
        step: &StepUniform,
        tensor: &TensorStep,
        grads: &[f32],
        params: &mut [f32],
        state: &mut [&mut [f32]],
    );
}

/// The CPU driver of every optimizer: state arenas and step counts for one rule.
///
/// Use it through its aliases [`Gd`], [`Momentum`], [`Sgd`], [`Adam`] and [`AdamW`].
#[derive(Clone, Debug)]
pub struct Reference<R: Update> {
    pub(crate) config: R,
    // The layout's chunks, joined within each tensor into pieces big enough to be worth a
    // thread's while.
    tasks: Vec<Chunk>,
    pub(crate) state: Vec<Array1<f32>>,
    pub(crate) steps: Vec<u64>,
    policy: GradPolicy,
    last_norm: f32,
    skipped: u64,
    table: Vec<TensorStep>,
}

impl<R: Update> Reference<R> {
    /// Validates `config` and allocates zeroed state for `set`.
    pub fn new(set: &ParamSet, config: R) -> Result<Self> {
        config.validate()?;
        let n = set.layout().arena_len();
        Ok(Self {
            config,
            tasks: cpu_tasks(set.layout().chunks()),
            state: config.state().iter().map(|_| Array1::zeros(n)).collect(),
            steps: vec![0; set.layout().tensors().len()],
            table: Vec::new(),
            policy: GradPolicy::default(),
            last_norm: 0.0,
            skipped: 0,
        })
    }

    /// The hyperparameters in force.
    pub fn config(&self) -> &R {
        &self.config
    }

    /// Replaces every hyperparameter for the steps from now on; an invalid config, or one
    /// that needs other state, is refused and changes nothing.
    pub fn set_config(&mut self, config: R) -> Result<()> {
        check_config_change(&self.config, &config)?;
        self.config = config;
        Ok(())
    }

    /// The state arena called `name` (one of [`Rule::state`]), laid out like the parameters.
    pub fn state(&self, name: &str) -> Option<&Array1<f32>> {
        self.config
            .state()
            .iter()
            .position(|&s| s == name)
            .map(|i| &self.state[i])
    }

    /// A copy of the state `name` of one tensor, in the tensor's shape.
    pub fn state_of(&self, set: &ParamSet, name: &str, tensor: &str) -> Result<ArrayD<f32>> {
        let t = set.tensor(tensor)?;
        let arena = self
            .state(name)
            .ok_or_else(|| Error::UnknownTensor(format!("{name} (optimizer state)")))?;
        arena
            .slice(ndarray::s![t.range()])
            .to_owned()
            .into_shape_with_order(IxDyn(t.shape()))
            .map_err(|e| Error::Readback(e.to_string()))
    }
}

impl<R: Update> Optimizer for Reference<R> {
    fn step(&mut self, set: &mut ParamSet) -> Result<()> {
        let config = self.config;
        let mut uniform = config.uniform();
        self.policy.apply(&mut uniform);
        let raw = set.grads.as_slice().unwrap_or(&[]);

        // An f16 set's gradients are f16 values, however they were written.
        let rounded: Vec<f32>;
        let raw = if set.precision == Precision::F16 {
            rounded = raw.par_iter().map(|&g| round_to_f16(g)).collect();
            &rounded[..]
        } else {
            raw
        };

        // The guard: norm of the unscaled gradients and the non-finite test, then the skip
        // decision and the clipping factor, as the device's guard passes make them.
        let mut clip = 1.0f32;
        if self.policy.guarded() {
            let (norm, non_finite) = guard(set.layout(), raw, uniform.inv_scale);
            self.last_norm = norm;
            if self.policy.skip_non_finite && non_finite {
                self.skipped += 1;
                return Ok(());
            }
            if self.policy.max_norm.is_some() {
                clip = (uniform.max_norm / (norm + 1e-6)).min(1.0);
            }
        }
        let scaled: Vec<f32>;
        let grads = if uniform.inv_scale != 1.0 || self.policy.max_norm.is_some() {
            scaled = raw
                .par_iter()
                .map(|&g| (g * uniform.inv_scale) * clip)
                .collect();
            &scaled[..]
        } else {
            raw
        };

        let skip_mode = self.policy.skip_non_finite;
        advance_steps(&mut self.steps, &set.has_grad, &mut self.table, |t| {
            if skip_mode {
                skip_mode_factors(&config, &uniform, t)
            } else {
                config.tensor_factors(t)
            }
        });
        let table = &self.table;
        let mut arenas = vec![set.params.as_slice_mut().unwrap_or(&mut [])];
        arenas.extend(
            self.state
                .iter_mut()
                .map(|a| a.as_slice_mut().unwrap_or(&mut [])),
        );

        // Pieces of the arena are independent: update them in parallel.
        let chunks = &self.tasks;
        split_chunks(arenas, chunks)
            .into_par_iter()
            .zip(chunks.par_iter())
            .for_each(|(mut parts, c)| {
                let tensor = &table[c.tensor];
                if let (1, Some((params, state))) = (tensor.has_grad, parts.split_first_mut()) {
                    let g = &grads[c.start..c.end];
                    update_chunk(&config, &uniform, tensor, g, params, state);
                }
            });
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr()
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        check_lr(lr)?;
        self.config.set_lr(lr);
        Ok(())
    }

    fn step_counts(&self) -> &[u64] {
        &self.steps
    }

    fn grad_policy(&self) -> &GradPolicy {
        &self.policy
    }

    fn set_grad_policy(&mut self, policy: GradPolicy) -> Result<()> {
        policy.validate()?;
        if policy.skip_non_finite != self.policy.skip_non_finite {
            self.skipped = 0;
        }
        self.policy = policy;
        Ok(())
    }

    fn last_grad_norm(&self) -> f32 {
        self.last_norm
    }

    fn skipped_steps(&self) -> u64 {
        self.skipped
    }
}

/// Named tensors of parameters and gradients in two host arenas, laid out exactly like the
/// GPU [`crate::ParamSet`] built from the same [`Layout`].
///
/// An f16 set ([`ParamSet::new_f16`]) mirrors the GPU's f16 sets: its parameter arena holds
/// the f32 master weights, the f16 copy is those rounded to nearest even
/// ([`ParamSet::download_f16`]), and gradients are rounded to f16 when uploaded and again
/// when a step reads them (so values written through [`ParamSet::grads_mut`] count as f16
/// too).
#[derive(Clone, Debug)]
pub struct ParamSet {
    layout: Arc<Layout>,
    precision: Precision,
    params: Array1<f32>,
    grads: Array1<f32>,
    has_grad: Vec<bool>,
}

impl ParamSet {
    /// Zeroed parameters and gradients for `layout`.
    pub fn new(layout: Layout) -> Self {
        Self::with_precision(layout, Precision::F32)
    }

    /// Zeroed f32 master weights and f16 gradients for `layout`, like the GPU's
    /// [`crate::ParamSet::new_f16`].
    pub fn new_f16(layout: Layout) -> Self {
        Self::with_precision(layout, Precision::F16)
    }

    fn with_precision(layout: Layout, precision: Precision) -> Self {
        let n = layout.arena_len();
        let has_grad = vec![true; layout.tensors().len()];
        Self {
            layout: Arc::new(layout),
            precision,
            params: Array1::zeros(n),
            grads: Array1::zeros(n),
            has_grad,
        }
    }

    /// Tensor names, shapes and places.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Result<&TensorInfo> {
        self.layout.tensor(name)
    }

    /// Sets a tensor's parameters.
    pub fn upload(&mut self, name: &str, values: ArrayViewD<'_, f32>) -> Result<()> {
        copy_in(&self.layout, &mut self.params, name, values)
    }

    /// How parameters and gradients are stored.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Sets a tensor's gradient, rounded to nearest even in an f16 set.
    pub fn upload_grad(&mut self, name: &str, values: ArrayViewD<'_, f32>) -> Result<()> {
        copy_in(&self.layout, &mut self.grads, name, values)?;
        if self.precision == Precision::F16 {
            let t = self.layout.tensor(name)?;
            self.grads
                .slice_mut(ndarray::s![t.range()])
                .mapv_inplace(round_to_f16);
        }
        Ok(())
    }

    /// A copy of a tensor's parameters, in its shape (the master weights in an f16 set).
    pub fn download(&self, name: &str) -> Result<ArrayD<f32>> {
        Ok(self.param(name)?.to_owned())
    }

    /// The f16 copy of a tensor's parameters in an f16 set (the master weights rounded to
    /// nearest even), widened to f32; fails with [`Error::WrongPrecision`] in an f32 set.
    pub fn download_f16(&self, name: &str) -> Result<ArrayD<f32>> {
        if self.precision != Precision::F16 {
            return Err(Error::WrongPrecision {
                wanted: Precision::F16,
                actual: self.precision,
            });
        }
        Ok(self.param(name)?.mapv(round_to_f16))
    }

    /// A view of a tensor's parameters, in its shape.
    pub fn param(&self, name: &str) -> Result<ArrayViewD<'_, f32>> {
        let t = self.layout.tensor(name)?;
        let slice = &self.params.as_slice().unwrap_or(&[])[t.range()];
        ArrayViewD::from_shape(IxDyn(t.shape()), slice).map_err(|e| Error::Readback(e.to_string()))
    }

    /// A mutable view of a tensor's gradient, in its shape, for a backward pass to fill.
    pub fn grad_mut(&mut self, name: &str) -> Result<ArrayViewMutD<'_, f32>> {
        let t = self.layout.tensor(name)?.clone();
        let slice = &mut self.grads.as_slice_mut().unwrap_or(&mut [])[t.range()];
        ArrayViewMutD::from_shape(IxDyn(t.shape()), slice)
            .map_err(|e| Error::Readback(e.to_string()))
    }

    /// The parameter arena, padding included.
    pub fn params(&self) -> &Array1<f32> {
        &self.params
    }

    /// The gradient arena, padding included.
    pub fn grads(&self) -> &Array1<f32> {
        &self.grads
    }

    /// The gradient arena, for filling in place.
    pub fn grads_mut(&mut self) -> &mut Array1<f32> {
        &mut self.grads
    }

    /// Says whether the tensor `name` has a gradient in the coming steps.
    pub fn set_has_grad(&mut self, name: &str, has_grad: bool) -> Result<()> {
        let index = self.layout.index_of(name)?;
        self.has_grad[index] = has_grad;
        Ok(())
    }

    /// Marks every tensor as having (or not having) a gradient.
    pub fn set_all_have_grad(&mut self, has_grad: bool) {
        self.has_grad.fill(has_grad);
    }

    /// Per-tensor gradient flags, in layout order.
    pub fn has_grad(&self) -> &[bool] {
        &self.has_grad
    }

    /// L2 norm of all gradients, summed in f64 (the device's [`crate::ParamSet::grad_norm`]
    /// sums in f32, so it is inf once the sum of squares passes f32's range, about 3.4e38).
    pub fn grad_norm(&self) -> f64 {
        let grads = self.grads.as_slice().unwrap_or(&[]);
        self.layout
            .chunks()
            .par_iter()
            .map(|c| {
                grads[c.start..c.end]
                    .iter()
                    .map(|&g| g as f64 * g as f64)
                    .sum::<f64>()
            })
            .sum::<f64>()
            .sqrt()
    }
}

fn copy_in(
    layout: &Layout,
    arena: &mut Array1<f32>,
    name: &str,
    values: ArrayViewD<'_, f32>,
) -> Result<()> {
    let t = layout.tensor(name)?;
    if values.len() != t.len() {
        return Err(Error::LengthMismatch {
            tensor: name.to_owned(),
            expected: t.len(),
            actual: values.len(),
        });
    }
    for (dst, src) in arena
        .slice_mut(ndarray::s![t.range()])
        .iter_mut()
        .zip(values.iter())
    {
        *dst = *src;
    }
    Ok(())
}

/// Runs one rule's update on one chunk, compiled for AVX2 when the CPU has it, so the
/// element loops use 8-wide vectors instead of SSE2's 4. AVX2 brings no fused multiply-add
/// (that is the separate FMA feature) and Rust never contracts, so the results are the same
/// bits either way.
fn update_chunk<R: Update>(
    config: &R,
    step: &StepUniform,
    tensor: &TensorStep,
    grads: &[f32],
    params: &mut [f32],
    state: &mut [&mut [f32]],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        fn avx2<R: Update>(
            config: &R,
            step: &StepUniform,
            tensor: &TensorStep,
            grads: &[f32],
            params: &mut [f32],
            state: &mut [&mut [f32]],
        ) {
            config.update(step, tensor, grads, params, state);
        }
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { avx2(config, step, tensor, grads, params, state) };
    }
    config.update(step, tensor, grads, params, state);
}

/// Norm of the gradients times `inv_scale` (each product rounded to f32, squares summed in
/// f64) over every tensor of `layout`, and whether any gradient is inf or NaN.
fn guard(layout: &Layout, grads: &[f32], inv_scale: f32) -> (f32, bool) {
    let (sum, non_finite) = layout
        .chunks()
        .par_iter()
        .map(|c| {
            grads[c.start..c.end]
                .iter()
                .fold((0.0f64, false), |(s, bad), &g| {
                    let u = (g * inv_scale) as f64;
                    (s + u * u, bad || !g.is_finite())
                })
        })
        .reduce(|| (0.0, false), |a, b| (a.0 + b.0, a.1 || b.1));
    // The device sums squares in f32: past f32's range its norm is inf, and so is this one.
    let norm = if non_finite {
        f32::NAN
    } else if (sum as f32).is_infinite() {
        f32::INFINITY
    } else {
        sum.sqrt() as f32
    };
    (norm, non_finite)
}

/// Elements a CPU task takes at most: large enough that scheduling costs nothing, small
/// enough that both cores get work from one large tensor.
const TASK_LEN: usize = 1 << 16;

/// Joins consecutive chunks of one tensor into tasks of at most [`TASK_LEN`] elements.
fn cpu_tasks(chunks: &[Chunk]) -> Vec<Chunk> {
    let mut tasks: Vec<Chunk> = Vec::new();
    for c in chunks {
        match tasks.last_mut() {
            Some(t) if t.tensor == c.tensor && t.end == c.start && c.end - t.start <= TASK_LEN => {
                t.end = c.end;
            }
            _ => tasks.push(*c),
        }
    }
    tasks
}

/// Cuts each arena into the chunks of a layout, so chunks can be updated in parallel.
fn split_chunks<'a>(mut arenas: Vec<&'a mut [f32]>, chunks: &[Chunk]) -> Vec<Vec<&'a mut [f32]>> {
    let mut parts = Vec::with_capacity(chunks.len());
    let mut base = 0usize;
    for c in chunks {
        let skip = c.start - base;
        let len = c.end - c.start;
        parts.push(
            arenas
                .iter_mut()
                .map(|arena| {
                    let (_, rest) = std::mem::take(arena).split_at_mut(skip);
                    let (part, rest) = rest.split_at_mut(len);
                    *arena = rest;
                    part
                })
                .collect(),
        );
        base = c.end;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CHUNK_LEN;

    #[test]
    fn tasks_join_chunks_of_one_tensor_only() {
        let layout = Layout::builder()
            .tensor("a", &[3 * CHUNK_LEN + 5])
            .tensor("b", &[7])
            .tensor("c", &[TASK_LEN + 1])
            .build()
            .unwrap();
        let tasks: Vec<_> = cpu_tasks(layout.chunks())
            .iter()
            .map(|t| (t.tensor, t.end - t.start))
            .collect();
        assert_eq!(
            tasks,
            [(0, 3 * CHUNK_LEN + 5), (1, 7), (2, TASK_LEN), (2, 1)]
        );
    }

    /// The AVX2 build of a loop and the baseline build give the same bits.
    #[test]
    fn wide_vectors_change_no_bits() {
        let n = 1000;
        let values = |seed: u32| -> Vec<f32> {
            (0..n)
                .map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ seed) as f32 / 4e9 - 0.5)
                .collect()
        };
        let config = AdamConfig {
            lr: 0.01,
            weight_decay: 0.1,
            amsgrad: true,
            maximize: true,
            ..Default::default()
        };
        let step = config.uniform();
        let (step_size, bc2_sqrt) = config.tensor_factors(3);
        let tensor = TensorStep {
            has_grad: 1,
            step_size,
            bc2_sqrt,
            first: 0,
        };
        let grads = values(1);
        let run = |wide: bool| {
            let (mut p, mut m, mut v_max) = (values(2), values(3), values(5));
            let mut v: Vec<f32> = values(4).iter().map(|x| x * x).collect();
            let mut state = [&mut m[..], &mut v[..], &mut v_max[..]];
            if wide {
                update_chunk(&config, &step, &tensor, &grads, &mut p, &mut state);
            } else {
                config.update(&step, &tensor, &grads, &mut p, &mut state);
            }
            (p, m, v, v_max)
        };
        let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        let (a, b) = (run(true), run(false));
        assert_eq!(bits(&a.0), bits(&b.0));
        assert_eq!(bits(&a.1), bits(&b.1));
        assert_eq!(bits(&a.2), bits(&b.2));
        assert_eq!(bits(&a.3), bits(&b.3));
    }
}
