//! Adam and AdamW on the CPU; mirrors `shaders/adam.wgsl`.

use super::Update;
use crate::kernel::{flags, StepUniform, TensorStep};
use crate::{AdamConfig, AdamWConfig};

impl Update for AdamConfig {
    fn update(
        &self,
        step: &StepUniform,
        tensor: &TensorStep,
        grads: &[f32],
        params: &mut [f32],
        state: &mut [&mut [f32]],
    ) {
        let (exp_avg, exp_avg_sq, mut max_exp_avg_sq) = match state {
            [m, v] => (m, v, None),
            [m, v, vmax] => (m, v, Some(vmax)),
            _ => unreachable!("Adam keeps two or three state arenas"),
        };
        let has = |flag| step.flags & flag != 0;
        for i in 0..params.len() {
            let mut g = grads[i];
            let mut p = params[i];
            if has(flags::MAXIMIZE) {
                g = -g;
            }

            // Weight decay: AdamW shrinks p, Adam adds wd * p to the gradient (L2).
            if has(flags::DECOUPLED) {
                p *= step.decay_factor;
            } else if step.weight_decay != 0.0 {
                g += step.weight_decay * p;
            }

            // Moment updates.
            let m = step.beta1 * exp_avg[i] + step.one_minus_beta1 * g;
            let v = step.beta2 * exp_avg_sq[i] + step.one_minus_beta2 * (g * g);
            exp_avg[i] = m;
            exp_avg_sq[i] = v;
            let mut v_used = v;
            if let Some(vmax) = max_exp_avg_sq.as_deref_mut() {
                v_used = vmax[i].max(v);
                vmax[i] = v_used;
            }

            // Bias correction, then the result.
            let denom = v_used.sqrt() / tensor.bc2_sqrt + step.eps;
            params[i] = p - tensor.step_size * (m / denom);
        }
    }
}

impl Update for AdamWConfig {
    fn update(
        &self,
        step: &StepUniform,
        tensor: &TensorStep,
        grads: &[f32],
        params: &mut [f32],
        state: &mut [&mut [f32]],
    ) {
        AdamConfig::from(*self).update(step, tensor, grads, params, state);
    }
}
