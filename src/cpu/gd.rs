//! Gradient descent on the CPU; mirrors `shaders/gd.wgsl`.

use super::Update;
use crate::kernel::{StepUniform, TensorStep};
use crate::GdConfig;

impl Update for GdConfig {
    #[inline(always)]
    fn update(
        &self,
        step: &StepUniform,
        _tensor: &TensorStep,
        grads: &[f32],
        params: &mut [f32],
        _state: &mut [&mut [f32]],
    ) {
        for (p, &g) in params.iter_mut().zip(grads) {
            *p -= step.lr * g;
        }
    }
}
