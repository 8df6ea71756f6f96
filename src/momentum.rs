//! Momentum in its exponential-average ("heavy ball") form:
//! `v <- beta v + (1 - beta) g; p <- p - lr v`.
//!
//! This differs from PyTorch's SGD momentum, whose buffer starts as `g` and accumulates
//! without the `1 - beta` factor: here the first step moves by `lr (1 - beta) g`.

use crate::kernel::{one_minus, StepUniform};
use crate::optim::{check_beta, check_lr, Fused, Rule};
use crate::{shaders, ParamSet, Result};

/// Exponential-average momentum on the GPU; state: one velocity per parameter.
pub type Momentum = Fused<MomentumConfig>;

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
    /// Validates the config and builds the GPU optimizer for `set`.
    pub fn init(self, set: &ParamSet) -> Result<Momentum> {
        Momentum::new(set, self)
    }
}

impl Rule for MomentumConfig {
    const NAME: &'static str = "momentum";
    const SHADER: &'static str = shaders::MOMENTUM;
    const SHADER_F16: &'static str = shaders::MOMENTUM_F16;
    const STATE_BINDINGS: usize = 1;

    fn state(&self) -> &'static [&'static str] {
        &["velocity"]
    }

    fn validate(&self) -> Result<()> {
        check_lr(self.lr)?;
        check_beta("beta", self.beta)
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn uniform(&self) -> StepUniform {
        StepUniform {
            lr: self.lr as f32,
            beta1: self.beta as f32,
            one_minus_beta1: one_minus(self.beta),
            ..Default::default()
        }
    }
}
