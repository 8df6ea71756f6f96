// Shared header of the optimizer kernels: step values, work table and the common bindings.

const WORKGROUP_SIZE: u32 = 256u;

// Bits of StepUniform.flags; mirrored by `flags` in src/kernel.rs.
const FLAG_MAXIMIZE: u32 = 1u;
const FLAG_MOMENTUM: u32 = 2u;
const FLAG_NESTEROV: u32 = 4u;
const FLAG_AMSGRAD: u32 = 8u;
const FLAG_DECOUPLED: u32 = 16u;

// Values of one recorded step; mirrored by `StepUniform` in src/kernel.rs.
struct StepUniform {
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    // 1 - beta1 and 1 - beta2, rounded once from f64 on the host.
    one_minus_beta1: f32,
    one_minus_beta2: f32,
    weight_decay: f32,
    // AdamW's 1 - lr * weight_decay, rounded once from f64 on the host.
    decay_factor: f32,
    flags: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

fn has_flag(flag: u32) -> bool {
    return (cfg.flags & flag) != 0u;
}

// One workgroup's elements: start..end of one tensor, counted from the start of the arena
// binding; mirrored by `ChunkEntry` in src/arena.rs.
struct Chunk {
    tensor: u32,
    start: u32,
    end: u32,
    pad: u32,
}

// Per-tensor values of one step; mirrored by `TensorStep` in src/kernel.rs.
struct TensorStep {
    has_grad: u32,
    // lr / (1 - beta1^t), from f64 on the host.
    step_size: f32,
    // sqrt(1 - beta2^t), from f64 on the host.
    bc2_sqrt: f32,
    first: u32,
}

@group(0) @binding(0) var<uniform> cfg: StepUniform;

@group(0) @binding(1) var<storage, read> chunks: array<Chunk>;

@group(0) @binding(2) var<storage, read> tensors: array<TensorStep>;

// Arenas are read and written four elements at a time; tensors start on 64-element
// boundaries, so only a tensor's last quad can be partial.
@group(0) @binding(3) var<storage, read> grads: array<vec4<f32>>;

@group(0) @binding(4) var<storage, read_write> params: array<vec4<f32>>;

// Elements of this workgroup: its chunk, or an empty range when the dispatch overshoots
// (dispatches are 2-D past 65,535 chunks) or the tensor has no gradient this step.
fn workgroup_chunk(wid: vec3<u32>, groups: vec3<u32>) -> Chunk {
    let c = wid.x + wid.y * groups.x;
    if c >= arrayLength(&chunks) {
        return Chunk(0u, 0u, 0u, 0u);
    }
    let chunk = chunks[c];
    if tensors[chunk.tensor].has_grad == 0u {
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
