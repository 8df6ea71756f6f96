//! Gradient descent: `p <- p - lr * g` (SGD when fed minibatch gradients).

use crate::kernel::StepUniform;
use crate::optim::{check_lr, Fused, Rule};
use crate::{shaders, ParamSet, Result};

/// Gradient descent on the GPU; it keeps no state besides step counts.
pub type Gd = Fused<GdConfig>;

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
    /// Validates the config and builds the GPU optimizer for `set`.
    pub fn init(self, set: &ParamSet) -> Result<Gd> {
        Gd::new(set, self)
    }
}

impl Rule for GdConfig {
    const NAME: &'static str = "gd";
    const SHADER: &'static str = shaders::GD;
    const SHADER_F16: &'static str = shaders::GD_F16;
    const STATE_BINDINGS: usize = 0;

    fn state(&self) -> &'static [&'static str] {
        &[]
    }

    fn validate(&self) -> Result<()> {
        check_lr(self.lr)
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
            ..Default::default()
        }
    }
}
