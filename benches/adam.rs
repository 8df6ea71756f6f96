//! Adam, GPU against the CPU reference, one tensor at a few sizes.
//!
//! GPU time is wall time from recording a step to the end of a blocking poll, so it includes
//! the submit; run with `WGPU_BACKEND=vulkan` or `gl` to choose the adapter.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wgpu_optim::{cpu, AdamConfig, Context, Layout, Optimizer, ParamSet};

/// Bytes Adam moves per element: reads p, g, m, v and writes p, m, v.
const BYTES_PER_ELEMENT: u64 = 28;

fn adam(c: &mut Criterion) {
    let ctx = Context::new().expect("a wgpu adapter");
    let mut group = c.benchmark_group(format!("adam/{}", ctx.describe()));
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    for n in [4 << 10, 256 << 10, 4 << 20] {
        let layout = Layout::builder().tensor("x", &[n]).build().expect("layout");
        group.throughput(Throughput::Bytes(BYTES_PER_ELEMENT * n as u64));

        // GPU: record, submit and wait for each step.
        let set = ParamSet::new(&ctx, layout.clone()).expect("set");
        let mut gpu = AdamConfig::default().init(&set).expect("adam");
        group.bench_with_input(BenchmarkId::new("gpu", n), &n, |b, _| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    gpu.step_submit(&set).expect("step");
                }
                ctx.wait_idle().expect("poll");
                start.elapsed()
            })
        });

        // CPU reference, all cores.
        let mut host = cpu::ParamSet::new(layout);
        host.grads_mut().fill(0.5);
        let mut reference = cpu::Adam::new(&host, AdamConfig::default()).expect("adam");
        group.bench_with_input(BenchmarkId::new("cpu", n), &n, |b, _| {
            b.iter(|| cpu::Optimizer::step(&mut reference, &mut host).expect("step"))
        });
    }
    group.finish();
}

criterion_group!(benches, adam);
criterion_main!(benches);
