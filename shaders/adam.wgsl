// Adam and AdamW: bias-corrected moments; options are flags of the step uniform.

@group(0) @binding(5) var<storage, read_write> exp_avg: array<f32>;

@group(0) @binding(6) var<storage, read_write> exp_avg_sq: array<f32>;

// Bound to a placeholder unless AMSGrad is on.
@group(0) @binding(7) var<storage, read_write> max_exp_avg_sq: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let chunk = workgroup_chunk(wid, groups);
    let t = tensors[chunk.tensor];
    for (var i = chunk.start + lid; i < chunk.end; i += WORKGROUP_SIZE) {
        var g = grads[i];
        var p = params[i];
        if has_flag(FLAG_MAXIMIZE) {
            g = -g;
        }

        // Weight decay: AdamW shrinks p, Adam adds wd * p to the gradient (L2).
        if has_flag(FLAG_DECOUPLED) {
            p = p * cfg.decay_factor;
        } else if cfg.weight_decay != 0.0 {
            g = g + cfg.weight_decay * p;
        }

        // Moment updates.
        let m = cfg.beta1 * exp_avg[i] + cfg.one_minus_beta1 * g;
        let v = cfg.beta2 * exp_avg_sq[i] + cfg.one_minus_beta2 * (g * g);
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        var v_used = v;
        if has_flag(FLAG_AMSGRAD) {
            v_used = max(max_exp_avg_sq[i], v);
            max_exp_avg_sq[i] = v_used;
        }

        // Bias correction: eps is added after dividing sqrt(v) by sqrt(1 - beta2^t).
        let denom = sqrt(v_used) / t.bc2_sqrt + cfg.eps;

        // Result: the step size lr / (1 - beta1^t) comes from the host.
        params[i] = p - t.step_size * (m / denom);
    }
}
