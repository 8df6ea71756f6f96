//! Exponential-average momentum on the CPU; mirrors `shaders/momentum.wgsl`.

use ndarray::{ArrayView1, ArrayViewMut1, Zip};

use super::Update;
use crate::kernel::{StepUniform, TensorStep};
use crate::MomentumConfig;

impl Update for MomentumConfig {
    fn update(
        &self,
        step: &StepUniform,
        _tensor: &TensorStep,
        grads: &[f32],
        params: &mut [f32],
        state: &mut [&mut [f32]],
    ) {
        let [velocity] = state else {
            unreachable!("momentum keeps exactly one state arena");
        };
        Zip::from(ArrayViewMut1::from(params))
            .and(ArrayViewMut1::from(&mut **velocity))
            .and(ArrayView1::from(grads))
            .for_each(|p, vel, &g| {
                let v = step.beta1 * *vel + step.one_minus_beta1 * g;
                *vel = v;
                *p -= step.lr * v;
            });
    }
}
