//! SGD exactly as `torch.optim.SGD` defines it: maximize, weight decay, momentum with
//! dampening, Nesterov.
//!
//! PyTorch's momentum buffer starts as the first gradient (`buf = g`), so the first step
//! moves by `lr g`; the crate's [`Momentum`](crate::Momentum) is the exponential-average
//! form instead, whose first step moves by `lr (1 - beta) g`.

use crate::kernel::{flags, one_minus, StepUniform};
use crate::optim::{check_lr, check_non_negative, Fused, Rule};
use crate::{shaders, Error, ParamSet, Result};

/// PyTorch's SGD on the GPU; state: a momentum buffer (4 bytes per parameter) when
/// momentum is not 0, else none.
pub type Sgd = Fused<SgdConfig>;

/// Hyperparameters of SGD, as `torch.optim.SGD`; the defaults are PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate; default 1e-3.
    pub lr: f64,
    /// Momentum factor, >= 0; default 0 (no buffer is kept). Whether it is 0 is fixed once
    /// the optimizer is built.
    pub momentum: f64,
    /// Dampening of the gradient taken into the buffer, in [0, 1]; default 0.
    pub dampening: f64,
    /// Weight decay (L2, `g + wd * p`), >= 0; default 0. Applies with or without momentum.
    pub weight_decay: f64,
    /// Nesterov momentum; needs momentum > 0 and dampening 0. Default false.
    pub nesterov: bool,
    /// Maximize the objective (the gradient is negated first); default false.
    pub maximize: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
        }
    }
}

impl SgdConfig {
    /// Validates the config and builds the GPU optimizer for `set`.
    pub fn init(self, set: &ParamSet) -> Result<Sgd> {
        Sgd::new(set, self)
    }
}

impl Rule for SgdConfig {
    const NAME: &'static str = "sgd";
    const SHADER: &'static str = shaders::SGD;
    const SHADER_F16: &'static str = shaders::SGD_F16;
    const STATE_BINDINGS: usize = 1;
    const STATE_FIELD: &'static str = "momentum";

    fn state(&self) -> &'static [&'static str] {
        if self.momentum != 0.0 {
            &["momentum_buffer"]
        } else {
            &[]
        }
    }

    fn validate(&self) -> Result<()> {
        check_lr(self.lr)?;
        check_non_negative("momentum", self.momentum)?;
        check_non_negative("weight_decay", self.weight_decay)?;
        if !(0.0..=1.0).contains(&self.dampening) {
            return Err(Error::InvalidHyperparameter {
                name: "dampening",
                value: self.dampening,
                reason: "must be in [0, 1]",
            });
        }
        if self.nesterov && self.momentum <= 0.0 {
            return Err(Error::InvalidHyperparameter {
                name: "nesterov",
                value: self.momentum,
                reason: "Nesterov momentum needs momentum > 0",
            });
        }
        if self.nesterov && self.dampening != 0.0 {
            return Err(Error::InvalidHyperparameter {
                name: "nesterov",
                value: self.dampening,
                reason: "Nesterov momentum needs dampening = 0",
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
            beta1: self.momentum as f32,
            one_minus_beta1: one_minus(self.dampening),
            weight_decay: self.weight_decay as f32,
            flags: flags::when(self.maximize, flags::MAXIMIZE)
                | flags::when(self.momentum != 0.0, flags::MOMENTUM)
                | flags::when(self.nesterov, flags::NESTEROV),
            ..Default::default()
        }
    }
}
