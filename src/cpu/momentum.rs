//! Exponential-average momentum on the CPU; mirrors `shaders/momentum.wgsl`.

use super::Update;
use crate::kernel::{StepUniform, TensorStep};
use crate::MomentumConfig;

impl Update for MomentumConfig {
    #[inline(always)]
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
        for ((p, vel), &g) in params.iter_mut().zip(velocity.iter_mut()).zip(grads) {
            let v = step.beta1 * *vel + step.one_minus_beta1 * g;
            *vel = v;
            *p -= step.lr * v;
        }
    }
}
