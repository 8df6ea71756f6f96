//! Momentum in its exponential-average ("heavy ball") form:
//! `v <- beta v + (1 - beta) g; p <- p - lr v`.
//!
//! This differs from PyTorch's SGD momentum, whose buffer starts as `g` and accumulates
//! without the `1 - beta` factor: here the first step moves by `lr (1 - beta) g`.

use crate::kernel::{one_minus, state_buffer, StepKernel, StepUniform, TensorStep};
use crate::optim::{advance_steps, check_beta, check_lr};
use crate::{shaders, Optimizer, ParamSet, Result};

/// Hyperparameters of exponential-average momentum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MomentumConfig {
    /// Learning rate; default 1e-3.
    pub lr: f64,
    /// Decay of the velocity, in [0, 1); default 0.9.
    pub beta: f64,
}

impl Default for MomentumConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta: 0.9,
        }
    }
}

impl MomentumConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        check_lr(self.lr)?;
        check_beta("beta", self.beta)
    }

    /// Validates the config and builds the GPU optimizer for `set`.
    pub fn init(self, set: &ParamSet) -> Result<Momentum> {
        Momentum::new(set, self)
    }

    /// Values of the kernel's uniform for one step.
    pub(crate) fn uniform(&self) -> StepUniform {
        let beta = self.beta as f32;
        StepUniform {
            lr: self.lr as f32,
            beta1: beta,
            one_minus_beta1: one_minus(self.beta),
            ..Default::default()
        }
    }
}

/// Exponential-average momentum on the GPU; state: one velocity per parameter.
#[derive(Debug)]
pub struct Momentum {
    config: MomentumConfig,
    velocity: wgpu::Buffer,
    kernel: StepKernel,
    steps: Vec<u64>,
    table: Vec<TensorStep>,
}

impl Momentum {
    /// Validates `config`, allocates a zeroed velocity and compiles the kernel for `set`.
    pub fn new(set: &ParamSet, config: MomentumConfig) -> Result<Self> {
        config.validate()?;
        let velocity = state_buffer(set, "wgpu-optim velocity")?;
        let kernel = StepKernel::new(set, "wgpu-optim momentum", shaders::MOMENTUM, &[&velocity])?;
        Ok(Self {
            config,
            velocity,
            kernel,
            steps: vec![0; set.layout().tensors().len()],
            table: Vec::new(),
        })
    }

    /// The hyperparameters in force.
    pub fn config(&self) -> &MomentumConfig {
        &self.config
    }

    /// The velocity arena (same layout as the parameters).
    pub fn velocity_buffer(&self) -> &wgpu::Buffer {
        &self.velocity
    }
}

impl Optimizer for Momentum {
    fn step(&mut self, encoder: &mut wgpu::CommandEncoder, set: &ParamSet) -> Result<()> {
        self.kernel.check_set(set)?;
        advance_steps(&mut self.steps, set.has_grad(), &mut self.table, |_| {
            (0.0, 1.0)
        });
        self.kernel
            .record(set, encoder, &self.config.uniform(), &self.table);
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        check_lr(lr)?;
        self.config.lr = lr;
        Ok(())
    }

    fn step_counts(&self) -> &[u64] {
        &self.steps
    }

    fn steps_in_flight(&self) -> usize {
        self.kernel.slots()
    }

    fn state_bytes(&self) -> u64 {
        self.velocity.size()
    }
}
