// Gradient descent: p <- p - lr * g.

fn gd(q: u32) -> vec4<f32> {
    return load_params(q) - cfg.lr * grad(q);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let quads = quads_of(workgroup_chunk(wid, groups));
    for (var q = quads.first + lid; q < quads.full; q += WORKGROUP_SIZE) {
        store_params(q, gd(q), 4u);
    }

    // Partial last quad: store only the tensor's own elements.
    if lid == 0u && quads.tail != 0u {
        store_params(quads.full, gd(quads.full), quads.tail);
    }
}
