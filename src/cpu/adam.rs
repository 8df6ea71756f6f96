//! Adam on the CPU; mirrors `shaders/adam.wgsl`.

use ndarray::{ArrayView1, ArrayViewMut1, Zip};

use super::Update;
use crate::kernel::{StepUniform, TensorStep};
use crate::AdamConfig;

impl Update for AdamConfig {
    fn update(
        &self,
        step: &StepUniform,
        tensor: &TensorStep,
        grads: &[f32],
        params: &mut [f32],
        state: &mut [&mut [f32]],
    ) {
        let [exp_avg, exp_avg_sq] = state else {
            unreachable!("Adam keeps exactly two state arenas");
        };
        Zip::from(ArrayViewMut1::from(params))
            .and(ArrayViewMut1::from(&mut **exp_avg))
            .and(ArrayViewMut1::from(&mut **exp_avg_sq))
            .and(ArrayView1::from(grads))
            .for_each(|p, m_old, v_old, &g| {
                // Moment updates.
                let m = step.beta1 * *m_old + step.one_minus_beta1 * g;
                let v = step.beta2 * *v_old + step.one_minus_beta2 * (g * g);
                *m_old = m;
                *v_old = v;

                // Bias correction, then the result.
                let denom = v.sqrt() / tensor.bc2_sqrt + step.eps;
                *p -= tensor.step_size * (m / denom);
            });
    }
}
