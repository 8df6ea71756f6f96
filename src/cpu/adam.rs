//! Adam and AdamW on the CPU; mirrors `shaders/adam.wgsl`.
//!
//! The shader branches on its flags; here options that change the arithmetic are const
//! parameters, so each loop vectorises. Negating the gradient (maximize) and multiplying the
//! parameter by AdamW's decay factor (1 when off) are exact, so they need no variant.

use super::Update;
use crate::kernel::{flags, StepUniform, TensorStep};
use crate::{AdamConfig, AdamWConfig};

impl Update for AdamConfig {
    #[inline(always)]
    fn update(
        &self,
        step: &StepUniform,
        tensor: &TensorStep,
        grads: &[f32],
        params: &mut [f32],
        state: &mut [&mut [f32]],
    ) {
        let decoupled = step.flags & flags::DECOUPLED != 0;
        let l2 = !decoupled && step.weight_decay != 0.0;
        let k = Constants {
            sign: if step.flags & flags::MAXIMIZE != 0 {
                -1.0
            } else {
                1.0
            },
            decay: if decoupled { step.decay_factor } else { 1.0 },
            step: *step,
            tensor: *tensor,
        };
        match (state, l2) {
            ([m, v], false) => adam_loop::<false>(&k, params, grads, m, v, None),
            ([m, v], true) => adam_loop::<true>(&k, params, grads, m, v, None),
            ([m, v, v_max], false) => adam_loop::<false>(&k, params, grads, m, v, Some(v_max)),
            ([m, v, v_max], true) => adam_loop::<true>(&k, params, grads, m, v, Some(v_max)),
            _ => unreachable!("Adam keeps two or three state arenas"),
        }
    }
}

impl Update for AdamWConfig {
    #[inline(always)]
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

/// Loop-invariant values of one chunk.
struct Constants {
    sign: f32,
    decay: f32,
    step: StepUniform,
    tensor: TensorStep,
}

/// Updates a chunk, with or without the running maximum of AMSGrad.
#[inline(always)]
fn adam_loop<const L2: bool>(
    k: &Constants,
    params: &mut [f32],
    grads: &[f32],
    exp_avg: &mut [f32],
    exp_avg_sq: &mut [f32],
    max_exp_avg_sq: Option<&mut &mut [f32]>,
) {
    let moments = params
        .iter_mut()
        .zip(grads)
        .zip(exp_avg.iter_mut())
        .zip(exp_avg_sq.iter_mut());
    match max_exp_avg_sq {
        None => {
            for (((p, &g), m), v) in moments {
                *p = element::<L2>(k, *p, g, m, v, None);
            }
        }
        Some(v_max) => {
            for ((((p, &g), m), v), v_max) in moments.zip(v_max.iter_mut()) {
                *p = element::<L2>(k, *p, g, m, v, Some(v_max));
            }
        }
    }
}

/// One element, in the shader's order; returns the new parameter.
#[inline(always)]
fn element<const L2: bool>(
    k: &Constants,
    p: f32,
    g: f32,
    exp_avg: &mut f32,
    exp_avg_sq: &mut f32,
    max_exp_avg_sq: Option<&mut f32>,
) -> f32 {
    let s = &k.step;
    let mut g = k.sign * g;

    // Weight decay: AdamW shrinks p, Adam adds wd * p to the gradient (L2).
    let p = p * k.decay;
    if L2 {
        g += s.weight_decay * p;
    }

    // Moment updates.
    let m = s.beta1 * *exp_avg + s.one_minus_beta1 * g;
    let v = s.beta2 * *exp_avg_sq + s.one_minus_beta2 * (g * g);
    *exp_avg = m;
    *exp_avg_sq = v;
    let v_used = match max_exp_avg_sq {
        Some(v_max) => {
            *v_max = v_max.max(v);
            *v_max
        }
        None => v,
    };

    // Bias correction, then the result.
    let denom = v_used.sqrt() / k.tensor.bc2_sqrt + s.eps;
    p - k.tensor.step_size * (m / denom)
}
