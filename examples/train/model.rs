//! What the GPU and CPU sides share: the network's tensors and their places in the arena,
//! its initial weights, and the list of sample positions that every pass reads a run of.

use std::ops::Range;

use ndarray::{ArrayD, IxDyn};
use wgpu_optim::Layout;

use crate::data::{Rng, N_FEATURES};

/// A one-hidden-layer tanh network, `x (11) -> h (hidden) -> y (1)`, as four tensors of one
/// arena: `w1` [hidden, 11] (row `j` holds hidden unit `j`'s input weights, as in PyTorch's
/// `Linear`), `b1` [hidden], `w2` [hidden] and `b2` [1].
#[derive(Clone, Copy, Debug)]
pub struct Model {
    pub hidden: usize,
    /// Arena offsets (in f32 elements) of `w1`, `b1`, `w2` and `b2`.
    pub w1: usize,
    pub b1: usize,
    pub w2: usize,
    pub b2: usize,
}

impl Model {
    /// The tensors in arena order, with their shapes.
    pub fn layout(hidden: usize) -> wgpu_optim::Result<Layout> {
        Layout::builder()
            .tensor("w1", &[hidden, N_FEATURES])
            .tensor("b1", &[hidden])
            .tensor("w2", &[hidden])
            .tensor("b2", &[1])
            .build()
    }

    /// Reads the tensors' places from `layout`.
    pub fn new(layout: &Layout) -> wgpu_optim::Result<Self> {
        Ok(Self {
            hidden: layout.tensor("b1")?.len(),
            w1: layout.tensor("w1")?.offset(),
            b1: layout.tensor("b1")?.offset(),
            w2: layout.tensor("w2")?.offset(),
            b2: layout.tensor("b2")?.offset(),
        })
    }

    /// Number of weights and biases; the backward pass runs one invocation per parameter.
    pub fn n_params(&self) -> usize {
        (N_FEATURES + 2) * self.hidden + 1
    }

    /// PyTorch's `Linear` initialisation: weights and biases of a layer uniform in
    /// ±1/sqrt(fan_in), drawn in the order w1, b1, w2, b2.
    pub fn initial_weights(&self, rng: &mut Rng) -> Vec<(&'static str, ArrayD<f32>)> {
        let mut uniform = |shape: &[usize], fan_in: usize| {
            let bound = 1.0 / (fan_in as f64).sqrt();
            ArrayD::from_shape_simple_fn(IxDyn(shape), || {
                ((2.0 * rng.next_f64() - 1.0) * bound) as f32
            })
        };
        let h = self.hidden;
        vec![
            ("w1", uniform(&[h, N_FEATURES], N_FEATURES)),
            ("b1", uniform(&[h], N_FEATURES)),
            ("w2", uniform(&[h], h)),
            ("b2", uniform(&[1], h)),
        ]
    }
}

/// The list of sample rows both sides read: the epoch's shuffled training order, then the
/// training rows in order, then the test rows. Every pass reads one run of positions, and
/// writes its activations and residuals at those positions, so an evaluation of both splits
/// is a single run and the full-batch gradient reuses its training part.
#[derive(Clone, Debug)]
pub struct Positions {
    pub n_train: usize,
    pub n_test: usize,
    pub batch_size: usize,
}

impl Positions {
    /// Length of the list.
    pub fn len(&self) -> usize {
        2 * self.n_train + self.n_test
    }

    /// The list with an unshuffled first part; rows count training rows first, then test.
    pub fn initial(&self) -> Vec<u32> {
        let n = self.n_train as u32;
        let n_test = self.n_test as u32;
        (0..n).chain(0..n).chain(n..n + n_test).collect()
    }

    /// The minibatches of one epoch: consecutive runs of the shuffled part; the last one may be
    /// short, and a batch size of at least the training size gives one full batch.
    pub fn batches(&self) -> Vec<Range<usize>> {
        (0..self.n_train)
            .step_by(self.batch_size)
            .map(|start| start..(start + self.batch_size).min(self.n_train))
            .collect()
    }

    /// The training rows in a fixed order, for the full-batch gradient.
    pub fn train(&self) -> Range<usize> {
        self.n_train..2 * self.n_train
    }

    /// The test rows.
    pub fn test(&self) -> Range<usize> {
        2 * self.n_train..self.len()
    }

    /// Both splits, for one evaluation pass.
    pub fn eval(&self) -> Range<usize> {
        self.n_train..self.len()
    }
}

/// `2 / count`: the derivative of a mean of `count` squared residuals with respect to each
/// residual, rounded once so both sides scale by the same f32.
pub fn grad_scale(count: usize) -> f32 {
    (2.0 / count as f64) as f32
}

/// Mean of squared residuals, summed in f64.
pub fn mse(residuals: &[f32]) -> f64 {
    let sum: f64 = residuals.iter().map(|&r| r as f64 * r as f64).sum();
    sum / residuals.len().max(1) as f64
}
