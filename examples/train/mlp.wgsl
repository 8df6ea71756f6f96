// Forward, residuals and backward of a one-hidden-layer tanh regressor; cpu.rs mirrors it.

// The model's shape and its tensors' arena offsets, fixed for the pipeline's life.
override N_FEATURES: u32;
override HIDDEN: u32;
override OFFSET_W1: u32;
override OFFSET_B1: u32;
override OFFSET_W2: u32;
override OFFSET_B2: u32;

const WORKGROUP_SIZE: u32 = 64u;

// A run of positions in the index list; mirrored by `Run` in gpu.rs.
struct Run {
    start: u32,
    count: u32,
    // 2 / count, the derivative of the mean squared residual by each residual.
    scale: f32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> run: Run;

@group(0) @binding(1) var<storage, read> features: array<f32>;

@group(0) @binding(2) var<storage, read> targets: array<f32>;

@group(0) @binding(3) var<storage, read> indices: array<u32>;

@group(0) @binding(4) var<storage, read> params: array<f32>;

@group(0) @binding(5) var<storage, read_write> hidden: array<f32>;

@group(0) @binding(6) var<storage, read_write> residuals: array<f32>;

@group(0) @binding(7) var<storage, read_write> grads: array<f32>;

// One invocation per sample: hidden activations and the residual, stored at its position.
@compute @workgroup_size(WORKGROUP_SIZE)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x >= run.count {
        return;
    }
    let pos = run.start + gid.x;
    let row = indices[pos];
    var pred = params[OFFSET_B2];
    for (var j = 0u; j < HIDDEN; j++) {
        // w1 is [HIDDEN, N_FEATURES]: row j holds hidden unit j's input weights.
        var z = params[OFFSET_B1 + j];
        for (var k = 0u; k < N_FEATURES; k++) {
            z += params[OFFSET_W1 + j * N_FEATURES + k] * features[row * N_FEATURES + k];
        }
        let a = tanh(z);
        hidden[pos * HIDDEN + j] = a;
        pred += params[OFFSET_W2 + j] * a;
    }
    residuals[pos] = pred - targets[row];
}

// Residual times d pred / d z_j = w2_j * (1 - tanh(z_j)^2).
fn delta(pos: u32, j: u32) -> f32 {
    let a = hidden[pos * HIDDEN + j];
    return residuals[pos] * params[OFFSET_W2 + j] * (1.0 - a * a);
}

// One invocation per parameter: its gradient of the mean squared residual over the run.
// Samples are added one by one in position order, so the sum is deterministic and the CPU
// mirror adds in the same order.
@compute @workgroup_size(WORKGROUP_SIZE)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x;
    let n_w1 = HIDDEN * N_FEATURES;
    let end = run.start + run.count;
    var acc = 0.0;
    var slot: u32;
    if e < n_w1 {
        let j = e / N_FEATURES;
        let k = e % N_FEATURES;
        for (var pos = run.start; pos < end; pos++) {
            acc += delta(pos, j) * features[indices[pos] * N_FEATURES + k];
        }
        slot = OFFSET_W1 + e;
    } else if e < n_w1 + HIDDEN {
        let j = e - n_w1;
        for (var pos = run.start; pos < end; pos++) {
            acc += delta(pos, j);
        }
        slot = OFFSET_B1 + j;
    } else if e < n_w1 + 2u * HIDDEN {
        let j = e - n_w1 - HIDDEN;
        for (var pos = run.start; pos < end; pos++) {
            acc += residuals[pos] * hidden[pos * HIDDEN + j];
        }
        slot = OFFSET_W2 + j;
    } else if e == n_w1 + 2u * HIDDEN {
        for (var pos = run.start; pos < end; pos++) {
            acc += residuals[pos];
        }
        slot = OFFSET_B2;
    } else {
        return;
    }
    grads[slot] = acc * run.scale;
}
