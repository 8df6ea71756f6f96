//! Gradient descent: `p <- p - lr * g` (SGD when fed minibatch gradients).

use crate::kernel::{StepKernel, StepUniform, TensorStep};
use crate::optim::{advance_steps, check_lr};
use crate::{shaders, Optimizer, ParamSet, Result};

/// Hyperparameters of plain gradient descent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GdConfig {
    /// Learning rate; default 1e-3 (PyTorch's SGD default).
    pub lr: f64,
}

impl Default for GdConfig {
    fn default() -> Self {
        Self { lr: 1e-3 }
    }
}

impl GdConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        check_lr(self.lr)
    }

    /// Validates the config and builds the GPU optimizer for `set`.
    pub fn init(self, set: &ParamSet) -> Result<Gd> {
        Gd::new(set, self)
    }

    /// Values of the kernel's uniform for one step.
    pub(crate) fn uniform(&self) -> StepUniform {
        StepUniform {
            lr: self.lr as f32,
            ..Default::default()
        }
    }
}

/// Gradient descent on the GPU; it keeps no state besides step counts.
#[derive(Debug)]
pub struct Gd {
    config: GdConfig,
    kernel: StepKernel,
    steps: Vec<u64>,
    table: Vec<TensorStep>,
}

impl Gd {
    /// Validates `config` and compiles the kernel for `set`.
    pub fn new(set: &ParamSet, config: GdConfig) -> Result<Self> {
        config.validate()?;
        let kernel = StepKernel::new(set, "wgpu-optim gd", shaders::GD, &[])?;
        Ok(Self {
            config,
            kernel,
            steps: vec![0; set.layout().tensors().len()],
            table: Vec::new(),
        })
    }

    /// The hyperparameters in force.
    pub fn config(&self) -> &GdConfig {
        &self.config
    }
}

impl Optimizer for Gd {
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
        0
    }
}
