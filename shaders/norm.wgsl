// L2 norm of all gradients: per-chunk sums of squares (one dispatch per binding of the
// arena), then one workgroup sums the partials.

const WORKGROUP_SIZE: u32 = 256u;

struct Chunk {
    tensor: u32,
    start: u32,
    end: u32,
    pad: u32,
}

// Index of this binding's first chunk among all chunks of the set.
@group(0) @binding(4) var<uniform> chunk_base: vec4<u32>;

@group(0) @binding(0) var<storage, read> chunks: array<Chunk>;

@group(0) @binding(1) var<storage, read> grads: array<vec4<f32>>;

@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

@group(0) @binding(3) var<storage, read_write> norm: array<f32>;

var<workgroup> scratch: array<f32, WORKGROUP_SIZE>;

// Tree sum of `scratch`; every invocation of the workgroup must call it.
fn workgroup_sum(lid: u32, value: f32) -> f32 {
    scratch[lid] = value;
    workgroupBarrier();
    for (var width = WORKGROUP_SIZE / 2u; width > 0u; width /= 2u) {
        if lid < width {
            scratch[lid] += scratch[lid + width];
        }
        workgroupBarrier();
    }
    return scratch[0];
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
    if c < n_chunks {
        let chunk = chunks[c];
        let full = chunk.end / 4u;
        for (var q = chunk.start / 4u + lid; q < full; q += WORKGROUP_SIZE) {
            acc += dot(grads[q], grads[q]);
        }
        // Partial last quad: lanes past the tensor's end are padding, not gradient.
        let tail = chunk.end % 4u;
        if lid == 0u && tail != 0u {
            let g = select(vec4<f32>(0.0), grads[full], vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(tail));
            acc += dot(g, g);
        }
    }
    // Out-of-range workgroups still reach the barriers, which need uniform control flow.
    let total = workgroup_sum(lid, acc);
    if lid == 0u && c < n_chunks {
        partials[chunk_base.x + c] = total;
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn finish(@builtin(local_invocation_index) lid: u32) {
    let n = arrayLength(&partials);
    var acc = 0.0;
    for (var i = lid; i < n; i += WORKGROUP_SIZE) {
        acc += partials[i];
    }
    let total = workgroup_sum(lid, acc);
    if lid == 0u {
        norm[0] = sqrt(total);
    }
}
