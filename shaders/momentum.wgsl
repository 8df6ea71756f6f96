// Momentum, exponential-average form: v <- beta v + (1 - beta) g; p <- p - lr v.

@group(0) @binding(5) var<storage, read_write> velocity: array<vec4<f32>>;

struct MomentumQuad {
    p: vec4<f32>,
    v: vec4<f32>,
}

fn momentum(q: u32) -> MomentumQuad {
    let v = cfg.beta1 * velocity[q] + cfg.one_minus_beta1 * grad(q);
    return MomentumQuad(load_params(q) - cfg.lr * v, v);
}

// Stores the first `lanes` elements of quad q.
fn store(q: u32, o: MomentumQuad, lanes: u32) {
    store_params(q, o.p, lanes);
    if lanes == 4u {
        velocity[q] = o.v;
        return;
    }
    for (var k = 0u; k < lanes; k++) {
        velocity[q][k] = o.v[k];
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let quads = quads_of(workgroup_chunk(wid, groups));
    for (var q = quads.first + lid; q < quads.full; q += WORKGROUP_SIZE) {
        store(q, momentum(q), 4u);
    }
    if lid == 0u && quads.tail != 0u {
        store(quads.full, momentum(quads.full), quads.tail);
    }
}
