//! PyTorch's SGD on the CPU; mirrors `shaders/sgd.wgsl`.

use super::Update;
use crate::kernel::{flags, StepUniform, TensorStep};
use crate::SgdConfig;

impl Update for SgdConfig {
    fn update(
        &self,
        step: &StepUniform,
        tensor: &TensorStep,
        grads: &[f32],
        params: &mut [f32],
        state: &mut [&mut [f32]],
    ) {
        let mut buffer = match state {
            [] => None,
            [b] => Some(b),
            _ => unreachable!("SGD keeps at most one state arena"),
        };
        let has = |flag| step.flags & flag != 0;
        let first = tensor.first == 1;
        for i in 0..params.len() {
            let mut g = grads[i];
            let p = params[i];
            if has(flags::MAXIMIZE) {
                g = -g;
            }
            if step.weight_decay != 0.0 {
                g += step.weight_decay * p;
            }

            // The buffer starts as the tensor's first gradient, then decays.
            if let Some(buf) = buffer.as_deref_mut().filter(|_| has(flags::MOMENTUM)) {
                let b = if first {
                    g
                } else {
                    step.beta1 * buf[i] + step.one_minus_beta1 * g
                };
                buf[i] = b;
                g = if has(flags::NESTEROV) {
                    g + step.beta1 * b
                } else {
                    b
                };
            }

            params[i] = p - step.lr * g;
        }
    }
}
