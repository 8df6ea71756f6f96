//! Every optimizer, GPU against the CPU reference: one tensor from 4 Ki to 64 Mi elements,
//! and many tensors (1,000 x 4,096 and 10,000 x 256).
//!
//! GPU time comes from timestamp queries where the adapter has them, else from the wall
//! clock around submit and wait. `WGPU_BACKEND` picks the adapter; `WGPU_OPTIM_BENCH_MAX`
//! caps the element count (default 67,108,864). Throughput counts the bytes each optimizer
//! moves per element. For the same figures in one table, run the `bench_report` example.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wgpu_optim::measure::GpuTimer;
use wgpu_optim::{
    cpu, AdamConfig, AdamWConfig, Context, GdConfig, Layout, MomentumConfig, Optimizer, ParamSet,
    SgdConfig,
};

type Gpu = fn(&ParamSet) -> Box<dyn Optimizer>;
type Cpu = fn(&cpu::ParamSet) -> Box<dyn cpu::Optimizer>;

const SGD: SgdConfig = SgdConfig {
    lr: 1e-3,
    momentum: 0.9,
    dampening: 0.0,
    weight_decay: 0.0,
    nesterov: false,
    maximize: false,
};

/// Name, bytes moved per element, and the GPU and CPU optimizers.
const OPTIMIZERS: &[(&str, u64, Gpu, Cpu)] = &[
    (
        "gd",
        12,
        |s| Box::new(GdConfig::default().init(s).expect("gd")),
        |s| Box::new(cpu::Gd::new(s, GdConfig::default()).expect("gd")),
    ),
    (
        "momentum",
        20,
        |s| Box::new(MomentumConfig::default().init(s).expect("momentum")),
        |s| Box::new(cpu::Momentum::new(s, MomentumConfig::default()).expect("momentum")),
    ),
    (
        "sgd",
        20,
        |s| Box::new(SGD.init(s).expect("sgd")),
        |s| Box::new(cpu::Sgd::new(s, SGD).expect("sgd")),
    ),
    (
        "adam",
        28,
        |s| Box::new(AdamConfig::default().init(s).expect("adam")),
        |s| Box::new(cpu::Adam::new(s, AdamConfig::default()).expect("adam")),
    ),
    (
        "adamw",
        28,
        |s| Box::new(AdamWConfig::default().init(s).expect("adamw")),
        |s| Box::new(cpu::AdamW::new(s, AdamWConfig::default()).expect("adamw")),
    ),
];

fn layout(count: usize, len: usize) -> Layout {
    (0..count)
        .fold(Layout::builder(), |b, i| b.tensor(format!("t{i}"), &[len]))
        .build()
        .expect("layout")
}

fn shapes() -> Vec<(usize, usize)> {
    let max: usize = std::env::var("WGPU_OPTIM_BENCH_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64 << 20);
    let mut shapes: Vec<(usize, usize)> = [4 << 10, 256 << 10, 4 << 20, 64 << 20]
        .into_iter()
        .filter(|&n| n <= max)
        .map(|n| (1, n))
        .collect();
    shapes.extend(
        [(1000, 4096), (10_000, 256)]
            .into_iter()
            .filter(|(c, l)| c * l <= max),
    );
    shapes
}

fn optimizers(c: &mut Criterion) {
    let ctx = Context::new().expect("a wgpu adapter");
    let timer = GpuTimer::new(&ctx);
    for &(name, bytes_per_element, gpu, cpu_opt) in OPTIMIZERS {
        let mut group = c.benchmark_group(name);
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for (count, len) in shapes() {
            let id = format!("{count}x{len}");
            group.throughput(Throughput::Bytes(bytes_per_element * (count * len) as u64));

            // GPU: device time per step.
            let set = ParamSet::new(&ctx, layout(count, len)).expect("set");
            let mut opt = gpu(&set);
            let per_submit = opt.steps_in_flight();
            group.bench_function(BenchmarkId::new("gpu", &id), |b| {
                b.iter_custom(|iters| {
                    let per_step = timer
                        .time(&ctx, iters as usize, per_submit, |e| opt.step(e, &set))
                        .expect("step");
                    per_step * iters as u32
                })
            });
            drop((opt, set));

            // CPU reference, all cores.
            let mut host = cpu::ParamSet::new(layout(count, len));
            host.grads_mut().fill(1e-3);
            let mut reference = cpu_opt(&host);
            group.bench_function(BenchmarkId::new("cpu", &id), |b| {
                b.iter(|| reference.step(&mut host).expect("step"))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, optimizers);
criterion_main!(benches);
