// Adam and AdamW: bias-corrected moments; options are flags of the step uniform.

@group(0) @binding(5) var<storage, read_write> exp_avg: array<vec4<f32>>;

@group(0) @binding(6) var<storage, read_write> exp_avg_sq: array<vec4<f32>>;

// Bound to a placeholder unless AMSGrad is on.
@group(0) @binding(7) var<storage, read_write> max_exp_avg_sq: array<vec4<f32>>;

struct AdamQuad {
    p: vec4<f32>,
    m: vec4<f32>,
    v: vec4<f32>,
    v_max: vec4<f32>,
}

fn adam(q: u32, bias: vec2<f32>) -> AdamQuad {
    var g = grad(q);
    var p = load_params(q);
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
    let m = cfg.beta1 * exp_avg[q] + cfg.one_minus_beta1 * g;
    let v = cfg.beta2 * exp_avg_sq[q] + cfg.one_minus_beta2 * (g * g);
    var v_used = v;
    if has_flag(FLAG_AMSGRAD) {
        v_used = max(max_exp_avg_sq[q], v);
    }

    // Bias correction: eps is added after dividing sqrt(v) by sqrt(1 - beta2^t).
    let denom = sqrt(v_used) / bias.y + cfg.eps;

    // Result: bias.x is the step size lr / (1 - beta1^t).
    return AdamQuad(p - bias.x * (m / denom), m, v, v_used);
}

// Stores the first `lanes` elements of quad q.
fn store(q: u32, o: AdamQuad, lanes: u32) {
    let amsgrad = has_flag(FLAG_AMSGRAD);
    store_params(q, o.p, lanes);
    if lanes == 4u {
        exp_avg[q] = o.m;
        exp_avg_sq[q] = o.v;
        if amsgrad {
            max_exp_avg_sq[q] = o.v_max;
        }
        return;
    }
    for (var k = 0u; k < lanes; k++) {
        exp_avg[q][k] = o.m[k];
        exp_avg_sq[q][k] = o.v[k];
        if amsgrad {
            max_exp_avg_sq[q][k] = o.v_max[k];
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
    let bias = bias_factors(chunk.tensor);
    let quads = quads_of(chunk);
    for (var q = quads.first + lid; q < quads.full; q += WORKGROUP_SIZE) {
        store(q, adam(q, bias), 4u);
    }
    if lid == 0u && quads.tail != 0u {
        store(quads.full, adam(quads.full, bias), quads.tail);
    }
}
