// Gradient descent: p <- p - lr * g.

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let chunk = workgroup_chunk(wid, groups);
    for (var i = chunk.start + lid; i < chunk.end; i += WORKGROUP_SIZE) {
        params[i] = params[i] - cfg.lr * grads[i];
    }
}
