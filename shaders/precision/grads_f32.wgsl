// Gradients stored in f32.

// Arenas are read and written four elements at a time; tensors start on 128-element
// boundaries, so only a tensor's last quad can be partial.
@group(0) @binding(3) var<storage, read> grads: array<vec4<f32>>;

fn load_grads(q: u32) -> vec4<f32> {
    return grads[q];
}
