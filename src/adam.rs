//! Adam and AdamW: bias-corrected first and second moment estimates, with PyTorch's options
//! (L2 or decoupled weight decay, AMSGrad, maximize) as flags of one kernel.

use crate::kernel::{flags, one_minus, StepUniform};
use crate::optim::{check_beta, check_lr, check_non_negative, Fused, Rule};
use crate::{shaders, Error, ParamSet, Result};

/// Adam on the GPU; state: first and second moments (8 bytes per parameter), plus the
/// running maximum of the second moment with AMSGrad (12 in all).
pub type Adam = Fused<AdamConfig>;

/// AdamW on the GPU: Adam with decoupled weight decay.
pub type AdamW = Fused<AdamWConfig>;

/// Hyperparameters of Adam, as `torch.optim.Adam`; the defaults are PyTorch's.
///
/// Fields are f64, like PyTorch's Python floats: bias corrections and `1 - beta` are
/// computed from them in f64 and rounded once to f32.
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
    /// Weight decay, >= 0; default 0. Added to the gradient as `wd * p` (L2), unless
    /// `decoupled_weight_decay`.
    pub weight_decay: f64,
    /// Use the running maximum of the second moment (AMSGrad); default false. Fixed once
    /// the optimizer is built, since it needs a third state arena.
    pub amsgrad: bool,
    /// Maximize the objective (the gradient is negated first); default false.
    pub maximize: bool,
    /// Decay the parameters by `1 - lr * wd` before the update instead of adding `wd * p`
    /// to the gradient (AdamW); default false.
    pub decoupled_weight_decay: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            maximize: false,
            decoupled_weight_decay: false,
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
    const SHADER_F16: &'static str = shaders::ADAM_F16;
    const STATE_BINDINGS: usize = 3;
    const STATE_FIELD: &'static str = "amsgrad";

    fn state(&self) -> &'static [&'static str] {
        if self.amsgrad {
            &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
        } else {
            &["exp_avg", "exp_avg_sq"]
        }
    }

    fn validate(&self) -> Result<()> {
        check_lr(self.lr)?;
        check_beta("beta1", self.beta1)?;
        check_beta("beta2", self.beta2)?;
        check_non_negative("eps", self.eps)?;
        check_non_negative("weight_decay", self.weight_decay)?;
        let decay = (1.0 - self.lr * self.weight_decay) as f32;
        if self.decoupled_weight_decay && !decay.is_finite() {
            return Err(Error::InvalidHyperparameter {
                name: "weight_decay",
                value: self.weight_decay,
                reason: "1 - lr * weight_decay must be finite in f32",
            });
        }
        Ok(())
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
            weight_decay: self.weight_decay as f32,
            flags: flags::when(self.maximize, flags::MAXIMIZE)
                | flags::when(self.amsgrad, flags::AMSGRAD)
                | flags::when(self.decoupled_weight_decay, flags::DECOUPLED),
            decay_factor: (1.0 - self.lr * self.weight_decay) as f32,
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

    fn bias_corrections(&self, t: u64) -> [f32; 2] {
        let t = t as f64;
        let bc1 = 1.0 - self.beta1.powf(t);
        let bc2 = 1.0 - self.beta2.powf(t);
        [bc1 as f32, bc2.sqrt() as f32]
    }
}

/// Hyperparameters of AdamW, as `torch.optim.AdamW`: Adam whose weight decay (default 1e-2)
/// shrinks the parameters by `1 - lr * wd` before the update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
    /// Learning rate; default 1e-3.
    pub lr: f64,
    /// Decay of the first moment, in [0, 1); default 0.9.
    pub beta1: f64,
    /// Decay of the second moment, in [0, 1); default 0.999.
    pub beta2: f64,
    /// Added to the bias-corrected root of the second moment; default 1e-8.
    pub eps: f64,
    /// Decoupled weight decay, >= 0; default 1e-2.
    pub weight_decay: f64,
    /// Use the running maximum of the second moment (AMSGrad); default false.
    pub amsgrad: bool,
    /// Maximize the objective; default false.
    pub maximize: bool,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            weight_decay: 1e-2,
            ..AdamConfig::default().into()
        }
    }
}

impl AdamWConfig {
    /// Validates the config and builds the GPU optimizer for `set`.
    pub fn init(self, set: &ParamSet) -> Result<AdamW> {
        AdamW::new(set, self)
    }
}

impl From<AdamWConfig> for AdamConfig {
    fn from(c: AdamWConfig) -> Self {
        Self {
            lr: c.lr,
            beta1: c.beta1,
            beta2: c.beta2,
            eps: c.eps,
            weight_decay: c.weight_decay,
            amsgrad: c.amsgrad,
            maximize: c.maximize,
            decoupled_weight_decay: true,
        }
    }
}

impl From<AdamConfig> for AdamWConfig {
    fn from(c: AdamConfig) -> Self {
        Self {
            lr: c.lr,
            beta1: c.beta1,
            beta2: c.beta2,
            eps: c.eps,
            weight_decay: c.weight_decay,
            amsgrad: c.amsgrad,
            maximize: c.maximize,
        }
    }
}

impl Rule for AdamWConfig {
    const NAME: &'static str = "adamw";
    const SHADER: &'static str = shaders::ADAM;
    const SHADER_F16: &'static str = shaders::ADAM_F16;
    const STATE_BINDINGS: usize = AdamConfig::STATE_BINDINGS;
    const STATE_FIELD: &'static str = AdamConfig::STATE_FIELD;

    fn state(&self) -> &'static [&'static str] {
        AdamConfig::from(*self).state()
    }

    fn validate(&self) -> Result<()> {
        AdamConfig::from(*self).validate()
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn uniform(&self) -> StepUniform {
        AdamConfig::from(*self).uniform()
    }

    fn tensor_factors(&self, t: u64) -> (f32, f32) {
        AdamConfig::from(*self).tensor_factors(t)
    }

    fn bias_corrections(&self, t: u64) -> [f32; 2] {
        AdamConfig::from(*self).bias_corrections(t)
    }
}
