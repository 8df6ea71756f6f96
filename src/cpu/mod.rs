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
use crate::optim::{advance_steps, check_config_change, check_lr, Rule};
use crate::{AdamConfig, AdamWConfig, Error, GdConfig, MomentumConfig, Result, SgdConfig};

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
}

/// The element-wise arithmetic of a rule, written once more for the CPU in the shader's
/// order of operations (one file per rule, named like its shader).
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
    config: R,
    state: Vec<Array1<f32>>,
    steps: Vec<u64>,
    table: Vec<TensorStep>,
}

impl<R: Update> Reference<R> {
    /// Validates `config` and allocates zeroed state for `set`.
    pub fn new(set: &ParamSet, config: R) -> Result<Self> {
        config.validate()?;
        let n = set.layout().arena_len();
        Ok(Self {
            config,
            state: config.state().iter().map(|_| Array1::zeros(n)).collect(),
            steps: vec![0; set.layout().tensors().len()],
            table: Vec::new(),
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
        advance_steps(&mut self.steps, &set.has_grad, &mut self.table, |t| {
            config.tensor_factors(t)
        });
        let uniform = config.uniform();
        let table = &self.table;
        let grads = set.grads.as_slice().unwrap_or(&[]);
        let mut arenas = vec![set.params.as_slice_mut().unwrap_or(&mut [])];
        arenas.extend(
            self.state
                .iter_mut()
                .map(|a| a.as_slice_mut().unwrap_or(&mut [])),
        );

        // Chunks of different tensors are independent: update them in parallel.
        let chunks = set.layout.chunks();
        split_chunks(arenas, chunks)
            .into_par_iter()
            .zip(chunks.par_iter())
            .for_each(|(mut parts, c)| {
                let tensor = &table[c.tensor];
                if let (1, Some((params, state))) = (tensor.has_grad, parts.split_first_mut()) {
                    let g = &grads[c.start..c.end];
                    config.update(&uniform, tensor, g, params, state);
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
}

/// Named tensors of parameters and gradients in two host arenas, laid out exactly like the
/// GPU [`crate::ParamSet`] built from the same [`Layout`].
#[derive(Clone, Debug)]
pub struct ParamSet {
    layout: Arc<Layout>,
    params: Array1<f32>,
    grads: Array1<f32>,
    has_grad: Vec<bool>,
}

impl ParamSet {
    /// Zeroed parameters and gradients for `layout`.
    pub fn new(layout: Layout) -> Self {
        let n = layout.arena_len();
        let has_grad = vec![true; layout.tensors().len()];
        Self {
            layout: Arc::new(layout),
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

    /// Sets a tensor's gradient.
    pub fn upload_grad(&mut self, name: &str, values: ArrayViewD<'_, f32>) -> Result<()> {
        copy_in(&self.layout, &mut self.grads, name, values)
    }

    /// A copy of a tensor's parameters, in its shape.
    pub fn download(&self, name: &str) -> Result<ArrayD<f32>> {
        Ok(self.param(name)?.to_owned())
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

    /// L2 norm of all gradients, summed in f64.
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
