// Momentum, exponential-average form: v <- beta v + (1 - beta) g; p <- p - lr v.

@group(0) @binding(5) var<storage, read_write> velocity: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let chunk = workgroup_chunk(wid, groups);
    for (var i = chunk.start + lid; i < chunk.end; i += WORKGROUP_SIZE) {
        let v = cfg.beta1 * velocity[i] + cfg.one_minus_beta1 * grads[i];
        velocity[i] = v;
        params[i] = params[i] - cfg.lr * v;
    }
}
