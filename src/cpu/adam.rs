//! Adam and AdamW on the CPU; mirrors `shaders/adam.wgsl`.
//!
//! The shader branches on its flags; here options that change the arithmetic are const
//! parameters, so each loop vectorises. Negating the gradient (maximize) and multiplying the
//! parameter by AdamW's decay factor (1 when off) are exact, so they need no variant.

use ndarray::{ArrayView1, ArrayViewMut1, Zip};

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
        let zip = Zip::from(ArrayViewMut1::from(params)).and(ArrayView1::from(grads));
        match (state, l2) {
            ([m, v], false) => zip.and(m_v(m)).and(m_v(v)).for_each(|p, &g, m, v| {
                *p = moment_step::<false>(&k, *p, g, m, v, None);
            }),
            ([m, v], true) => zip.and(m_v(m)).and(m_v(v)).for_each(|p, &g, m, v| {
                *p = moment_step::<true>(&k, *p, g, m, v, None);
            }),
            ([m, v, vmax], false) => {
                zip.and(m_v(m))
                    .and(m_v(v))
                    .and(m_v(vmax))
                    .for_each(|p, &g, m, v, vmax| {
                        *p = moment_step::<false>(&k, *p, g, m, v, Some(vmax))
                    })
            }
            ([m, v, vmax], true) => {
                zip.and(m_v(m))
                    .and(m_v(v))
                    .and(m_v(vmax))
                    .for_each(|p, &g, m, v, vmax| {
                        *p = moment_step::<true>(&k, *p, g, m, v, Some(vmax))
                    })
            }
            _ => unreachable!("Adam keeps two or three state arenas"),
        }
    }
}

fn m_v<'a>(s: &'a mut &mut [f32]) -> ArrayViewMut1<'a, f32> {
    ArrayViewMut1::from(&mut **s)
}

/// Loop-invariant values of one chunk.
struct Constants {
    sign: f32,
    decay: f32,
    step: StepUniform,
    tensor: TensorStep,
}

/// One element, in the shader's order; returns the new parameter.
#[inline(always)]
fn moment_step<const L2: bool>(
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
        Some(vmax) => {
            *vmax = vmax.max(v);
            *vmax
        }
        None => v,
    };

    // Bias correction, then the result.
    let denom = v_used.sqrt() / k.tensor.bc2_sqrt + s.eps;
    p - k.tensor.step_size * (m / denom)
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
