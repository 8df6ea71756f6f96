// The guard passes: per-chunk sums of squares of the unscaled gradients with a non-finite
// test (one dispatch per binding of the arena), then one workgroup turns them into the
// norm, the clipping factor and the skip decision; after the update, step counts advance.

// Sum of squares of each chunk, or -1 when the chunk holds an inf or NaN.
@group(0) @binding(5) var<storage, read_write> partials: array<f32>;

// Index of this binding's first chunk among all chunks of the set.
@group(0) @binding(6) var<uniform> chunk_base: vec4<u32>;

@group(0) @binding(8) var<storage, read_write> guard: Guard;

const EXPONENT: u32 = 0x7f800000u;

var<workgroup> sums: array<f32, WORKGROUP_SIZE>;

var<workgroup> bad: array<u32, WORKGROUP_SIZE>;

// Tree reduction of both arrays (sum and maximum); every invocation must call it.
fn reduce(lid: u32, sum: f32, flag: u32) {
    sums[lid] = sum;
    bad[lid] = flag;
    workgroupBarrier();
    for (var width = WORKGROUP_SIZE / 2u; width > 0u; width /= 2u) {
        if lid < width {
            sums[lid] += sums[lid + width];
            bad[lid] = max(bad[lid], bad[lid + width]);
        }
        workgroupBarrier();
    }
}

// 1 if a lane of g is inf or NaN, tested on the bits since WGSL may assume finite math.
fn non_finite(g: vec4<f32>) -> u32 {
    let exponent = bitcast<vec4<u32>>(g) & vec4<u32>(EXPONENT);
    return select(0u, 1u, any(exponent == vec4<u32>(EXPONENT)));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn partial_sums(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = wid.x + wid.y * groups.x;
    let n_chunks = arrayLength(&chunks);
    var acc = 0.0;
    var flag = 0u;
    if c < n_chunks {
        let chunk = chunks[c];
        let full = chunk.end / 4u;
        for (var q = chunk.start / 4u + lid; q < full; q += WORKGROUP_SIZE) {
            let g = load_grads(q);
            flag = max(flag, non_finite(g));
            let u = g * cfg.inv_scale;
            acc += dot(u, u);
        }
        // Partial last quad: lanes past the tensor's end are padding, not gradient.
        let tail = chunk.end % 4u;
        if lid == 0u && tail != 0u {
            let lanes = vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(tail);
            let g = select(vec4<f32>(0.0), load_grads(full), lanes);
            flag = max(flag, non_finite(g));
            let u = g * cfg.inv_scale;
            acc += dot(u, u);
        }
    }
    // Out-of-range workgroups still reach the barriers, which need uniform control flow.
    reduce(lid, acc, flag);
    if lid == 0u && c < n_chunks {
        partials[chunk_base.x + c] = select(sums[0], -1.0, bad[0] != 0u);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn finish(@builtin(local_invocation_index) lid: u32) {
    var acc = 0.0;
    var flag = 0u;
    for (var i = lid; i < arrayLength(&partials); i += WORKGROUP_SIZE) {
        let p = partials[i];
        if p < 0.0 {
            flag = 1u;
        } else {
            acc += p;
        }
    }
    reduce(lid, acc, flag);
    if lid != 0u {
        return;
    }

    let non_finite = bad[0] != 0u;
    let norm = select(sqrt(sums[0]), bitcast<f32>(0x7fc00000u), non_finite);
    guard.norm = norm;

    // As torch.nn.utils.clip_grad_norm_: max_norm / (norm + 1e-6), at most 1.
    var clip = 1.0;
    if has_flag(FLAG_CLIP) {
        clip = min(1.0, cfg.max_norm / (norm + 1e-6));
    }
    guard.clip = clip;

    let skip = has_flag(FLAG_SKIP_NON_FINITE) && non_finite;
    guard.skip = select(0u, 1u, skip);
    guard.skipped += guard.skip;
}

// After the update: every tensor that had a gradient in a step that was not skipped
// counts one more step.
@compute @workgroup_size(WORKGROUP_SIZE)
fn count_steps(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if i < guard.n_tensors && guard.skip == 0u && tensors[i].has_grad == 1u {
        guard.data[i] += 1u;
    }
}
