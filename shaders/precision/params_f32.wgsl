// Parameters stored in f32: the update reads and writes them directly.

@group(0) @binding(4) var<storage, read_write> params: array<vec4<f32>>;

fn load_params(q: u32) -> vec4<f32> {
    return params[q];
}

// Stores the first `lanes` elements of quad q; lanes past a tensor's end stay untouched.
fn store_params(q: u32, p: vec4<f32>, lanes: u32) {
    if lanes == 4u {
        params[q] = p;
        return;
    }
    for (var k = 0u; k < lanes; k++) {
        params[q][k] = p[k];
    }
}
