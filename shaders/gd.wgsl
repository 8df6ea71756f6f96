// Gradient descent: p <- p - lr * g.

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = chunk_index(wid, groups);
    if c >= cfg.n_chunks {
        return;
    }
    let chunk = chunks[c];
    if tensors[chunk.tensor].has_grad == 0u {
        return;
    }

    for (var i = chunk.start + lid; i < chunk.end; i += WORKGROUP_SIZE) {
        params[i] = params[i] - cfg.lr * grads[i];
    }
}
