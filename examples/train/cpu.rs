//! The CPU mirror of `mlp.wgsl`: the same loops, in the same order, with the same f32
//! arithmetic, so the two sides differ only by the few ULP WGSL allows (tanh, fused
//! multiply-adds).

use std::ops::Range;

use crate::data::{Split, N_FEATURES};
use crate::model::{grad_scale, Model, Positions};

/// The model's data and scratch on the host; laid out like the GPU's buffers.
pub struct CpuModel {
    model: Model,
    /// Training rows, then test rows.
    features: Vec<f32>,
    targets: Vec<f32>,
    /// Sample row of each position; see [`Positions`].
    indices: Vec<u32>,
    /// Hidden activations, `hidden` per position.
    hidden: Vec<f32>,
    /// Prediction minus target, one per position.
    residuals: Vec<f32>,
}

impl CpuModel {
    pub fn new(model: Model, split: &Split, positions: &Positions) -> Self {
        let features = [&split.train.features[..], &split.test.features[..]].concat();
        let targets = [&split.train.targets[..], &split.test.targets[..]].concat();
        Self {
            model,
            features,
            targets,
            indices: positions.initial(),
            hidden: vec![0.0; positions.len() * model.hidden],
            residuals: vec![0.0; positions.len()],
        }
    }

    /// Sets the epoch's shuffled training order.
    pub fn set_order(&mut self, order: &[u32]) {
        self.indices[..order.len()].copy_from_slice(order);
    }

    /// Residuals written by the last forward passes, at `run`'s positions.
    pub fn residuals(&self, run: Range<usize>) -> &[f32] {
        &self.residuals[run]
    }

    /// Hidden activations and residuals of every sample of `run` (`forward` in the shader).
    pub fn forward(&mut self, params: &[f32], run: Range<usize>) {
        let m = self.model;
        let h = m.hidden;
        for pos in run {
            let row = self.indices[pos] as usize;
            let x = &self.features[row * N_FEATURES..(row + 1) * N_FEATURES];
            let mut pred = params[m.b2];
            for j in 0..h {
                let w = &params[m.w1 + j * N_FEATURES..m.w1 + (j + 1) * N_FEATURES];
                let mut z = params[m.b1 + j];
                for (&wk, &xk) in w.iter().zip(x) {
                    z += wk * xk;
                }
                let a = z.tanh();
                self.hidden[pos * h + j] = a;
                pred += params[m.w2 + j] * a;
            }
            self.residuals[pos] = pred - self.targets[row];
        }
    }

    /// Gradient of the mean squared residual over `run` into `grads`, one parameter at a time
    /// with samples added in position order (`backward` in the shader).
    pub fn backward(&self, params: &[f32], grads: &mut [f32], run: Range<usize>) {
        let m = self.model;
        let scale = grad_scale(run.len());
        let n_w1 = m.hidden * N_FEATURES;
        for e in 0..m.n_params() {
            let (slot, acc) = if e < n_w1 {
                let (j, k) = (e / N_FEATURES, e % N_FEATURES);
                let acc = sum(run.clone(), |pos| {
                    let row = self.indices[pos] as usize;
                    self.delta(params, pos, j) * self.features[row * N_FEATURES + k]
                });
                (m.w1 + e, acc)
            } else if e < n_w1 + m.hidden {
                let j = e - n_w1;
                (m.b1 + j, sum(run.clone(), |pos| self.delta(params, pos, j)))
            } else if e < n_w1 + 2 * m.hidden {
                let j = e - n_w1 - m.hidden;
                let acc = sum(run.clone(), |pos| {
                    self.residuals[pos] * self.hidden[pos * m.hidden + j]
                });
                (m.w2 + j, acc)
            } else {
                (m.b2, sum(run.clone(), |pos| self.residuals[pos]))
            };
            grads[slot] = acc * scale;
        }
    }

    /// Residual times the derivative of the prediction by hidden unit `j`'s pre-activation.
    fn delta(&self, params: &[f32], pos: usize, j: usize) -> f32 {
        let a = self.hidden[pos * self.model.hidden + j];
        self.residuals[pos] * params[self.model.w2 + j] * (1.0 - a * a)
    }
}

/// Sum in f32, in position order, as the shader adds.
fn sum(run: Range<usize>, term: impl Fn(usize) -> f32) -> f32 {
    let mut acc = 0.0f32;
    for pos in run {
        acc += term(pos);
    }
    acc
}
