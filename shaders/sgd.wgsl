// PyTorch's SGD: maximize, weight decay, momentum with dampening, Nesterov.

// Bound to a placeholder when momentum is 0.
@group(0) @binding(5) var<storage, read_write> momentum_buffer: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let chunk = workgroup_chunk(wid, groups);
    let first = tensors[chunk.tensor].first == 1u;
    for (var i = chunk.start + lid; i < chunk.end; i += WORKGROUP_SIZE) {
        var g = grads[i];
        let p = params[i];
        if has_flag(FLAG_MAXIMIZE) {
            g = -g;
        }
        if cfg.weight_decay != 0.0 {
            g = g + cfg.weight_decay * p;
        }

        // The buffer starts as the tensor's first gradient; later it decays by momentum
        // (beta1) and takes in (1 - dampening) (one_minus_beta1) of the gradient.
        if has_flag(FLAG_MOMENTUM) {
            var b = g;
            if !first {
                b = cfg.beta1 * momentum_buffer[i] + cfg.one_minus_beta1 * g;
            }
            momentum_buffer[i] = b;
            if has_flag(FLAG_NESTEROV) {
                g = g + cfg.beta1 * b;
            } else {
                g = b;
            }
        }

        params[i] = p - cfg.lr * g;
    }
}
