// Shared part of the optimizer kernels: the guard, and how a workgroup finds its elements
// and its gradients. Parameters are read and written through `load_params` and
// `store_params`, which the precision header joined after this file defines.

@group(0) @binding(8) var<storage, read> guard: Guard;

// Elements of this workgroup: its chunk, or an empty range when the dispatch overshoots
// (dispatches are 2-D past 65,535 chunks), the tensor has no gradient this step, or the
// step is skipped for a non-finite gradient.
fn workgroup_chunk(wid: vec3<u32>, groups: vec3<u32>) -> Chunk {
    let c = wid.x + wid.y * groups.x;
    if c >= arrayLength(&chunks) {
        return Chunk(0u, 0u, 0u, 0u);
    }
    let chunk = chunks[c];
    let skipped = has_flag(FLAG_SKIP_NON_FINITE) && guard.skip != 0u;
    if skipped || tensors[chunk.tensor].has_grad == 0u {
        return Chunk(chunk.tensor, 0u, 0u, 0u);
    }
    return chunk;
}

// Quads of a chunk: whole ones are first..full; a partial last quad at `full` holds
// `tail` (1 to 3) elements, or tail is 0.
struct Quads {
    first: u32,
    full: u32,
    tail: u32,
}

fn quads_of(chunk: Chunk) -> Quads {
    return Quads(chunk.start / 4u, chunk.end / 4u, chunk.end % 4u);
}

// Gradient quad q as the update uses it: unscaled, then clipped, as two roundings like
// PyTorch's unscale_ and clip_grad_norm_.
fn grad(q: u32) -> vec4<f32> {
    var g = load_grads(q) * cfg.inv_scale;
    if has_flag(FLAG_CLIP) {
        g = g * guard.clip;
    }
    return g;
}

// Whether this step is the tensor's first (counted on the device when steps may be skipped).
fn is_first(tensor: u32) -> bool {
    if has_flag(FLAG_SKIP_NON_FINITE) {
        return guard.data[tensor] == 0u;
    }
    return tensors[tensor].first == 1u;
}

// Adam's step size lr / (1 - beta1^t) and sqrt(1 - beta2^t) for this step. When steps may
// be skipped, t is counted on the device and both corrections come from the host's f64
// table, with the step size divided in f32.
fn bias_factors(tensor: u32) -> vec2<f32> {
    if has_flag(FLAG_SKIP_NON_FINITE) {
        let t = min(guard.data[tensor] + 1u, guard.bias_len - 1u);
        let at = guard.bias_start + 2u * t;
        return vec2<f32>(cfg.lr / bitcast<f32>(guard.data[at]), bitcast<f32>(guard.data[at + 1u]));
    }
    let t = tensors[tensor];
    return vec2<f32>(t.step_size, t.bc2_sqrt);
}
