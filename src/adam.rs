//! Adam: bias-corrected first and second moment estimates.

use crate::kernel::{one_minus, StepUniform};
use crate::optim::{check_beta, check_lr, check_non_negative, Fused, Rule};
use crate::{shaders, ParamSet, Result};

/// Adam on the GPU; state: first and second moments, 8 bytes per parameter.
pub type Adam = Fused<AdamConfig>;

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
    /// Validates the config and builds the GPU optimizer for `set`.
    pub fn init(self, set: &ParamSet) -> Result<Adam> {
        Adam::new(set, self)
    }
}

impl Rule for AdamConfig {
    const NAME: &'static str = "adam";
    const SHADER: &'static str = shaders::ADAM;
    const STATE: &'static [&'static str] = &["exp_avg", "exp_avg_sq"];

    fn validate(&self) -> Result<()> {
        check_lr(self.lr)?;
        check_beta("beta1", self.beta1)?;
        check_beta("beta2", self.beta2)?;
        check_non_negative("eps", self.eps)
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
            beta1: self.beta1 as f32,
            beta2: self.beta2 as f32,
            eps: self.eps as f32,
            one_minus_beta1: one_minus(self.beta1),
            one_minus_beta2: one_minus(self.beta2),
            ..Default::default()
        }
    }

    /// Step size `lr / (1 - beta1^t)` and `sqrt(1 - beta2^t)`, computed in f64 from the
    /// integer count and rounded once.
    fn tensor_factors(&self, t: u64) -> (f32, f32) {
        let t = t as f64;
        let bc1 = 1.0 - self.beta1.powf(t);
        let bc2 = 1.0 - self.beta2.powf(t);
        ((self.lr / bc1) as f32, bc2.sqrt() as f32)
    }
}
