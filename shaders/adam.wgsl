// Adam: bias-corrected first and second moments, one workgroup per chunk of a tensor.

@group(0) @binding(5) var<storage, read_write> exp_avg: array<f32>;

@group(0) @binding(6) var<storage, read_write> exp_avg_sq: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let chunk = workgroup_chunk(wid, groups);
    let t = tensors[chunk.tensor];
    for (var i = chunk.start + lid; i < chunk.end; i += WORKGROUP_SIZE) {
        let g = grads[i];

        // Moment updates.
        let m = cfg.beta1 * exp_avg[i] + cfg.one_minus_beta1 * g;
        let v = cfg.beta2 * exp_avg_sq[i] + cfg.one_minus_beta2 * (g * g);
        exp_avg[i] = m;
        exp_avg_sq[i] = v;

        // Bias correction: eps is added after dividing sqrt(v) by sqrt(1 - beta2^t).
        let denom = sqrt(v) / t.bc2_sqrt + cfg.eps;

        // Result: the step size lr / (1 - beta1^t) comes from the host.
        params[i] = params[i] - t.step_size * (m / denom);
    }
}
