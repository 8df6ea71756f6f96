// PyTorch's SGD: maximize, weight decay, momentum with dampening, Nesterov.

// Bound to a placeholder when momentum is 0.
@group(0) @binding(5) var<storage, read_write> momentum_buffer: array<vec4<f32>>;

struct SgdQuad {
    p: vec4<f32>,
    b: vec4<f32>,
}

fn sgd(q: u32, first: bool) -> SgdQuad {
    var g = grad(q);
    let p = load_params(q);
    if has_flag(FLAG_MAXIMIZE) {
        g = -g;
    }
    if cfg.weight_decay != 0.0 {
        g = g + cfg.weight_decay * p;
    }

    // The buffer starts as the tensor's first gradient; later it decays by momentum
    // (beta1) and takes in (1 - dampening) (one_minus_beta1) of the gradient.
    var b = vec4<f32>(0.0);
    if has_flag(FLAG_MOMENTUM) {
        b = g;
        if !first {
            b = cfg.beta1 * momentum_buffer[q] + cfg.one_minus_beta1 * g;
        }
        if has_flag(FLAG_NESTEROV) {
            g = g + cfg.beta1 * b;
        } else {
            g = b;
        }
    }
    return SgdQuad(p - cfg.lr * g, b);
}

// Stores the first `lanes` elements of quad q.
fn store(q: u32, o: SgdQuad, lanes: u32) {
    let keep_buffer = has_flag(FLAG_MOMENTUM);
    store_params(q, o.p, lanes);
    if lanes == 4u {
        if keep_buffer {
            momentum_buffer[q] = o.b;
        }
        return;
    }
    for (var k = 0u; k < lanes; k++) {
        if keep_buffer {
            momentum_buffer[q][k] = o.b[k];
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let chunk = workgroup_chunk(wid, groups);
    let first = is_first(chunk.tensor);
    let quads = quads_of(chunk);
    for (var q = quads.first + lid; q < quads.full; q += WORKGROUP_SIZE) {
        store(q, sgd(q, first), 4u);
    }
    if lid == 0u && quads.tail != 0u {
        store(quads.full, sgd(quads.full, first), quads.tail);
    }
}
