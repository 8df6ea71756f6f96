//! Adam on the CPU; mirrors `shaders/adam.wgsl`.

use ndarray::{Array1, ArrayView1, ArrayViewMut1, Zip};

use super::{for_each_chunk, Optimizer, ParamSet};
use crate::kernel::TensorStep;
use crate::optim::{advance_steps, check_lr};
use crate::{AdamConfig, Result};

/// Adam on the CPU.
#[derive(Clone, Debug)]
pub struct Adam {
    config: AdamConfig,
    exp_avg: Array1<f32>,
    exp_avg_sq: Array1<f32>,
    steps: Vec<u64>,
    table: Vec<TensorStep>,
}

impl Adam {
    /// Validates `config` and allocates zeroed moments for `set`.
    pub fn new(set: &ParamSet, config: AdamConfig) -> Result<Self> {
        config.validate()?;
        let n = set.layout().arena_len();
        Ok(Self {
            config,
            exp_avg: Array1::zeros(n),
            exp_avg_sq: Array1::zeros(n),
            steps: vec![0; set.layout().tensors().len()],
            table: Vec::new(),
        })
    }

    /// First-moment arena.
    pub fn exp_avg(&self) -> &Array1<f32> {
        &self.exp_avg
    }

    /// Second-moment arena.
    pub fn exp_avg_sq(&self) -> &Array1<f32> {
        &self.exp_avg_sq
    }
}

impl Optimizer for Adam {
    fn step(&mut self, set: &mut ParamSet) -> Result<()> {
        let config = self.config;
        advance_steps(&mut self.steps, &set.has_grad, &mut self.table, |t| {
            config.bias_factors(t)
        });
        let u = config.uniform();
        for_each_chunk(
            &set.layout,
            &self.table,
            &set.grads,
            [&mut set.params, &mut self.exp_avg, &mut self.exp_avg_sq],
            |t, g, [p, m, v]| {
                Zip::from(ArrayViewMut1::from(p))
                    .and(ArrayViewMut1::from(m))
                    .and(ArrayViewMut1::from(v))
                    .and(ArrayView1::from(g))
                    .for_each(|p, m_old, v_old, &g| {
                        // Moment updates.
                        let m = u.beta1 * *m_old + u.one_minus_beta1 * g;
                        let v = u.beta2 * *v_old + u.one_minus_beta2 * (g * g);
                        *m_old = m;
                        *v_old = v;

                        // Bias correction, then the result.
                        let denom = v.sqrt() / t.bc2_sqrt + u.eps;
                        *p -= t.step_size * (m / denom);
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
