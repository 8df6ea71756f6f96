// A plain copy, dst <- src, four elements a thread: the bandwidth yardstick of the benchmarks.

const WORKGROUP_SIZE: u32 = 256u;

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;

@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // Each workgroup copies 1,024 quads, like an optimizer chunk of 4,096 elements.
    let first = (wid.x + wid.y * groups.x) * 1024u;
    let end = min(first + 1024u, arrayLength(&dst));
    for (var q = first + lid; q < end; q += WORKGROUP_SIZE) {
        dst[q] = src[q];
    }
}
