//! Exponential-average momentum on the CPU; mirrors `shaders/momentum.wgsl`.

use ndarray::{Array1, ArrayD, ArrayView1, ArrayViewMut1, IxDyn, Zip};

use super::{for_each_chunk, Optimizer, ParamSet};
use crate::kernel::TensorStep;
use crate::optim::{advance_steps, check_lr};
use crate::{Error, MomentumConfig, Result};

/// Exponential-average momentum on the CPU.
#[derive(Clone, Debug)]
pub struct Momentum {
    config: MomentumConfig,
    velocity: Array1<f32>,
    steps: Vec<u64>,
    table: Vec<TensorStep>,
}

impl Momentum {
    /// Validates `config` and allocates a zeroed velocity for `set`.
    pub fn new(set: &ParamSet, config: MomentumConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            velocity: Array1::zeros(set.layout().arena_len()),
            steps: vec![0; set.layout().tensors().len()],
            table: Vec::new(),
        })
    }

    /// A copy of one tensor's velocity.
    pub fn velocity(&self, set: &ParamSet, name: &str) -> Result<ArrayD<f32>> {
        let t = set.tensor(name)?;
        self.velocity
            .slice(ndarray::s![t.range()])
            .to_owned()
            .into_shape_with_order(IxDyn(t.shape()))
            .map_err(|e| Error::Readback(e.to_string()))
    }
}

impl Optimizer for Momentum {
    fn step(&mut self, set: &mut ParamSet) -> Result<()> {
        advance_steps(&mut self.steps, &set.has_grad, &mut self.table, |_| {
            (0.0, 1.0)
        });
        let u = self.config.uniform();
        for_each_chunk(
            &set.layout,
            &self.table,
            &set.grads,
            [&mut set.params, &mut self.velocity],
            |_, g, [p, vel]| {
                Zip::from(ArrayViewMut1::from(p))
                    .and(ArrayViewMut1::from(vel))
                    .and(ArrayView1::from(g))
                    .for_each(|p, vel, &g| {
                        let v = u.beta1 * *vel + u.one_minus_beta1 * g;
                        *vel = v;
                        *p -= u.lr * v;
                    });
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
