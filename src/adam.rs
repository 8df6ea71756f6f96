//! Adam: bias-corrected first and second moment estimates.

use crate::kernel::{one_minus, state_buffer, StepKernel, StepUniform, TensorStep};
use crate::optim::{advance_steps, check_beta, check_lr, check_non_negative};
use crate::{shaders, Optimizer, ParamSet, Result};

/// Hyperparameters of Adam; the defaults are PyTorch's.
///
/// Fields are f64, like PyTorch's Python floats: bias corrections are computed from them in
/// f64 and rounded once to f32.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate; default 1e-3.
    pub lr: f64,
    /// Decay of the first moment, in [0, 1); default 0.9.
    pub beta1: f64,
    /// Decay of the second moment, in [0, 1); default 0.999.
    pub beta2: f64,
    /// Added to the bias-corrected root of the second moment; default 1e-8.
    pub eps: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

impl AdamConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        check_lr(self.lr)?;
        check_beta("beta1", self.beta1)?;
        check_beta("beta2", self.beta2)?;
        check_non_negative("eps", self.eps)
    }

    /// Validates the config and builds the GPU optimizer for `set`.
    pub fn init(self, set: &ParamSet) -> Result<Adam> {
        Adam::new(set, self)
    }

    /// Values of the kernel's uniform for one step.
    pub(crate) fn uniform(&self) -> StepUniform {
        StepUniform {
            lr: self.lr as f32,
            beta1: self.beta1 as f32,
            beta2: self.beta2 as f32,
            eps: self.eps as f32,
            one_minus_beta1: one_minus(self.beta1),
            one_minus_beta2: one_minus(self.beta2),
            ..Default::default()
        }
    }

    /// Step size `lr / (1 - beta1^t)` and `sqrt(1 - beta2^t)` for a tensor's step `t`,
    /// computed in f64 from the integer count and rounded once.
    pub(crate) fn bias_factors(&self, t: u64) -> (f32, f32) {
        let t = t as f64;
        let bc1 = 1.0 - self.beta1.powf(t);
        let bc2 = 1.0 - self.beta2.powf(t);
        ((self.lr / bc1) as f32, bc2.sqrt() as f32)
    }
}

/// Adam on the GPU; state: first and second moments, 8 bytes per parameter.
#[derive(Debug)]
pub struct Adam {
    config: AdamConfig,
    exp_avg: wgpu::Buffer,
    exp_avg_sq: wgpu::Buffer,
    kernel: StepKernel,
    steps: Vec<u64>,
    table: Vec<TensorStep>,
}

impl Adam {
    /// Validates `config`, allocates zeroed moments and compiles the kernel for `set`.
    pub fn new(set: &ParamSet, config: AdamConfig) -> Result<Self> {
        config.validate()?;
        let exp_avg = state_buffer(set, "wgpu-optim exp_avg")?;
        let exp_avg_sq = state_buffer(set, "wgpu-optim exp_avg_sq")?;
        let kernel = StepKernel::new(
            set,
            "wgpu-optim adam",
            shaders::ADAM,
            &[&exp_avg, &exp_avg_sq],
        )?;
        Ok(Self {
            config,
            exp_avg,
            exp_avg_sq,
            kernel,
            steps: vec![0; set.layout().tensors().len()],
            table: Vec::new(),
        })
    }

    /// The hyperparameters in force.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    /// First-moment arena (same layout as the parameters).
    pub fn exp_avg_buffer(&self) -> &wgpu::Buffer {
        &self.exp_avg
    }

    /// Second-moment arena (same layout as the parameters).
    pub fn exp_avg_sq_buffer(&self) -> &wgpu::Buffer {
        &self.exp_avg_sq
    }
}

impl Optimizer for Adam {
    fn step(&mut self, encoder: &mut wgpu::CommandEncoder, set: &ParamSet) -> Result<()> {
        self.kernel.check_set(set)?;
        let config = self.config;
        advance_steps(&mut self.steps, set.has_grad(), &mut self.table, |t| {
            config.bias_factors(t)
        });
        self.kernel
            .record(set, encoder, &config.uniform(), &self.table);
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
        self.exp_avg.size() + self.exp_avg_sq.size()
    }
}
