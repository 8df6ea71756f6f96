// Shared header of every kernel that reads the gradients: step values, work table, guard.

const WORKGROUP_SIZE: u32 = 256u;

// Bits of StepUniform.flags; mirrored by `flags` in src/kernel.rs.
const FLAG_MAXIMIZE: u32 = 1u;
const FLAG_MOMENTUM: u32 = 2u;
const FLAG_NESTEROV: u32 = 4u;
const FLAG_AMSGRAD: u32 = 8u;
const FLAG_DECOUPLED: u32 = 16u;
const FLAG_SKIP_NON_FINITE: u32 = 32u;
const FLAG_CLIP: u32 = 64u;

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
    // 1 / loss scale, rounded once from f64 on the host; 1 when gradients are not scaled.
    inv_scale: f32,
    // Largest gradient norm before clipping.
    max_norm: f32,
    pad: u32,
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

// What the guard passes found about this step's gradients, then per-tensor step counts and
// the bias-correction table (as f32 bits); mirrored by `GuardHeader` in src/guard.rs.
struct Guard {
    // L2 norm of the gradients after unscaling (NaN when one was not finite).
    norm: f32,
    // min(1, max_norm / (norm + 1e-6)), or 1 without clipping.
    clip: f32,
    // 1 when this step is skipped for a non-finite gradient.
    skip: u32,
    // Steps skipped so far.
    skipped: u32,
    bias_start: u32,
    bias_len: u32,
    n_tensors: u32,
    pad: u32,
    data: array<u32>,
}

@group(0) @binding(0) var<uniform> cfg: StepUniform;

@group(0) @binding(1) var<storage, read> chunks: array<Chunk>;

@group(0) @binding(2) var<storage, read> tensors: array<TensorStep>;

