//! Gradient descent on the CPU; mirrors `shaders/gd.wgsl`.

use ndarray::{ArrayView1, ArrayViewMut1, Zip};

use super::{for_each_chunk, Optimizer, ParamSet};
use crate::kernel::TensorStep;
use crate::optim::{advance_steps, check_lr};
use crate::{GdConfig, Result};

/// Gradient descent on the CPU.
#[derive(Clone, Debug)]
pub struct Gd {
    config: GdConfig,
    steps: Vec<u64>,
    table: Vec<TensorStep>,
}

impl Gd {
    /// Validates `config` for `set`.
    pub fn new(set: &ParamSet, config: GdConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            steps: vec![0; set.layout().tensors().len()],
            table: Vec::new(),
        })
    }
}

impl Optimizer for Gd {
    fn step(&mut self, set: &mut ParamSet) -> Result<()> {
        advance_steps(&mut self.steps, &set.has_grad, &mut self.table, |_| {
            (0.0, 1.0)
        });
        let lr = self.config.uniform().lr;
        for_each_chunk(
            &set.layout,
            &self.table,
            &set.grads,
            [&mut set.params],
            |_, g, [p]| {
                Zip::from(ArrayViewMut1::from(p))
                    .and(ArrayView1::from(g))
                    .for_each(|p, &g| *p -= lr * g);
            },
        );
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
}
