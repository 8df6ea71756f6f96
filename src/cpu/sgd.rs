//! PyTorch's SGD on the CPU; mirrors `shaders/sgd.wgsl`.
//!
//! Options that change the arithmetic are const parameters, so each loop vectorises.
//! Negating the gradient (maximize) is exact, and so is the first step's `0 * 0 + 1 * g`,
//! which takes the gradient into the zeroed buffer as the shader's `b = g` does.

use super::Update;
use crate::kernel::{flags, StepUniform, TensorStep};
use crate::SgdConfig;

impl Update for SgdConfig {
    #[inline(always)]
    fn update(
        &self,
        step: &StepUniform,
        tensor: &TensorStep,
        grads: &[f32],
        params: &mut [f32],
        state: &mut [&mut [f32]],
    ) {
        let has = |flag| step.flags & flag != 0;
        let sign = if has(flags::MAXIMIZE) { -1.0 } else { 1.0 };
        let (lr, wd) = (step.lr, step.weight_decay);
        let pg = params.iter_mut().zip(grads);
        let [buffer] = state else {
            // No momentum: p - lr (g + wd p).
            if wd != 0.0 {
                pg.for_each(|(p, &g)| *p -= lr * (sign * g + wd * *p));
            } else {
                pg.for_each(|(p, &g)| *p -= lr * (sign * g));
            }
            return;
        };

        // The buffer decays by momentum and takes in (1 - dampening) of the gradient; on a
        // tensor's first step it is zero and takes the whole gradient.
        let (keep, take) = if tensor.first == 1 {
            (0.0, 1.0)
        } else {
            (step.beta1, step.one_minus_beta1)
        };
        let mu = step.beta1;
        let all = pg.zip(buffer.iter_mut());
        match (wd != 0.0, has(flags::NESTEROV)) {
            (false, false) => all.for_each(|((p, &g), b)| {
                *b = keep * *b + take * (sign * g);
                *p -= lr * *b;
            }),
            (true, false) => all.for_each(|((p, &g), b)| {
                *b = keep * *b + take * (sign * g + wd * *p);
                *p -= lr * *b;
            }),
            (false, true) => all.for_each(|((p, &g), b)| {
                let g = sign * g;
                *b = keep * *b + take * g;
                *p -= lr * (g + mu * *b);
            }),
            (true, true) => all.for_each(|((p, &g), b)| {
                let g = sign * g + wd * *p;
                *b = keep * *b + take * g;
                *p -= lr * (g + mu * *b);
            }),
        }
    }
}
