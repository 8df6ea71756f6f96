// Parameters stored in f16 beside f32 master weights: the update reads and writes the
// master copy, and the f16 copy is the master rounded after every update.

@group(0) @binding(4) var<storage, read_write> params: array<vec4<f16>>;

@group(0) @binding(9) var<storage, read_write> master: array<vec4<f32>>;

fn load_params(q: u32) -> vec4<f32> {
    return master[q];
}

// Stores the first `lanes` elements of quad q in both copies; lanes past a tensor's end
// stay untouched.
fn store_params(q: u32, p: vec4<f32>, lanes: u32) {
    let h = vec4<f16>(p);
    if lanes == 4u {
        master[q] = p;
        params[q] = h;
        return;
    }
    for (var k = 0u; k < lanes; k++) {
        master[q][k] = p[k];
        params[q][k] = h[k];
    }
}
