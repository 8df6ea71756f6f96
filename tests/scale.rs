//! Sizes and counts at the edges: tensors past 65,535 workgroups, arenas past one storage
//! binding or one buffer, thousands of tensors, and sizes the device cannot hold.

mod common;

use common::*;
use ndarray::{Array1, ArrayD, IxDyn};
use wgpu_optim::{cpu, AdamConfig, Context, Error, Gd, GdConfig, Layout, Optimizer, ParamSet};

/// Sets every element of every tensor to its index modulo 1000 and every gradient to 1, steps
/// GD with lr 0.5 and checks that every element moved by exactly 0.5.
fn gd_moves_every_element(ctx: &Context, lengths: &[usize]) {
    let layout = layout_of(lengths);
    let set = ParamSet::new(ctx, layout.clone()).unwrap();
    for t in layout.tensors() {
        let p = Array1::from_iter((0..t.len()).map(|i| (i % 1000) as f32)).into_dyn();
        set.upload(t.name(), p.view()).unwrap();
        set.upload_grad(t.name(), ArrayD::ones(IxDyn(t.shape())).view())
            .unwrap();
    }
    let mut gd = Gd::new(&set, GdConfig { lr: 0.5 }).unwrap();
    gd.step_submit(&set).unwrap();
    for t in layout.tensors() {
        let p = set.download(t.name()).unwrap();
        let wrong = p
            .iter()
            .enumerate()
            .filter(|&(i, &v)| v != (i % 1000) as f32 - 0.5)
            .count();
        assert_eq!(
            wrong,
            0,
            "{}: {} elements of {} not updated",
            t.name(),
            wrong,
            t.len()
        );
    }
}

/// 4,194,241 and 16,776,961 elements are more than 65,535 workgroups of 256 threads would
/// cover one element each.
#[test]
fn tensors_past_65535_workgroups_update_every_element() {
    on_every_adapter(|ctx| gd_moves_every_element(ctx, &[4_194_241, 16_776_961]));
}

/// 33,554,433 f32 (just over 128 MiB) is past lavapipe's and llvmpipe's storage-binding
/// limit, so the set is updated through two bindings of one buffer.
#[test]
fn an_arena_past_one_storage_binding_is_split() {
    on_every_adapter(|ctx| {
        let limit = ctx.limits().max_storage_buffer_binding_size;
        eprintln!("{}: binding limit {limit} B", ctx.describe());
        gd_moves_every_element(ctx, &[33_554_433]);
    });
}

/// A device opened with small limits (1 MiB buffers, 64 KiB bindings) forces several buffers
/// and several bindings per buffer at sizes that test quickly.
fn small_limit_contexts() -> Vec<Context> {
    contexts()
        .iter()
        .map(|full| {
            let adapter = Context::enumerate_adapters()
                .into_iter()
                .find(|a| a.get_info() == *full.adapter_info())
                .expect("the same adapter again");
            let limits = wgpu::Limits {
                max_buffer_size: 1 << 20,
                max_storage_buffer_binding_size: 64 << 10,
                ..adapter.limits()
            };
            let info = adapter.get_info();
            let (device, queue) =
                pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
                    required_limits: limits,
                    ..Default::default()
                }))
                .expect("device with small limits");
            Context::from_device(device, queue, info)
        })
        .collect()
}

#[test]
fn small_limits_split_buffers_and_bindings_and_match_the_reference() {
    // 100,003 elements need two 64 KiB bindings (16,384 elements) six times over; the whole
    // set needs several 1 MiB buffers.
    let lengths = [5, 100_003, 0, 70_000, 3, 200_000, 65, 16_384];
    for ctx in small_limit_contexts() {
        let layout = layout_of(&lengths);
        let set = ParamSet::new(&ctx, layout.clone()).unwrap();
        assert!(set.arena_buffers().len() > 1, "{}", ctx.describe());

        // Adam on every element, against the CPU reference, over a few steps.
        let config = AdamConfig {
            lr: 1e-2,
            amsgrad: true,
            weight_decay: 0.01,
            ..Default::default()
        };
        let mut rng = Rng::new(77);
        let mut host = cpu::ParamSet::new(layout.clone());
        for t in layout.tensors() {
            let p = rng.array(t.shape());
            set.upload(t.name(), p.view()).unwrap();
            host.upload(t.name(), p.view()).unwrap();
        }
        let mut gpu = wgpu_optim::Adam::new(&set, config).unwrap();
        let mut reference = cpu::Adam::new(&host, config).unwrap();
        assert_eq!(
            gpu.state_bytes(),
            3 * set.allocated_bytes() / 2,
            "AMSGrad: three arenas the size of the parameters"
        );
        for _ in 0..3 {
            for t in layout.tensors() {
                let g = rng.array(t.shape());
                set.upload_grad(t.name(), g.view()).unwrap();
                host.upload_grad(t.name(), g.view()).unwrap();
            }
            gpu.step_submit(&set).unwrap();
            cpu::Optimizer::step(&mut reference, &mut host).unwrap();
        }
        assert_many_steps_close(&gpu_params(&set), &cpu_params(&host), &ctx.describe());

        // The norm spans every binding of every buffer.
        let want = host.grad_norm();
        let got = set.grad_norm().unwrap() as f64;
        assert!(
            (got - want).abs() <= 1e-5 * want,
            "norm: gpu {got} cpu {want}"
        );

        // A tensor larger than one binding cannot be bound whole by a caller's kernel.
        assert!(matches!(
            set.grad_binding("t5"),
            Err(Error::LimitExceeded { .. })
        ));
        assert!(set.grad_binding("t1").is_err());
        assert!(set.grad_binding("t6").is_ok());
    }
}

#[test]
fn a_tensor_larger_than_a_buffer_is_refused_before_anything_is_allocated() {
    for ctx in small_limit_contexts() {
        let layout = layout_of(&[10, (1 << 18) + 1]);
        match ParamSet::new(&ctx, layout) {
            Err(Error::LimitExceeded {
                requested, limit, ..
            }) => assert!(requested > limit),
            Err(other) => panic!("unexpected {other}"),
            Ok(_) => panic!("a 1 MiB + 4 B tensor fit in a 1 MiB buffer"),
        }
    }
}

/// 10,000 tensors of mixed sizes, stepped once, against the reference.
#[test]
fn ten_thousand_tensors_in_one_step() {
    let lengths: Vec<usize> = (0..10_000).map(|i| [1, 7, 64, 255, 300][i % 5]).collect();
    on_every_adapter(|ctx| {
        let layout = layout_of(&lengths);
        let mut rng = Rng::new(9);
        let values: Vec<_> = layout
            .tensors()
            .iter()
            .map(|t| rng.array(t.shape()))
            .collect();
        let (gpu, mut host) = twin_sets(ctx, &layout, &values);
        let grads: Vec<_> = layout
            .tensors()
            .iter()
            .map(|t| rng.array(t.shape()))
            .collect();
        set_grads(&gpu, &mut host, &grads);
        let config = AdamConfig::default();
        let mut opt = wgpu_optim::Adam::new(&gpu, config).unwrap();
        let mut reference = cpu::Adam::new(&host, config).unwrap();
        let before = cpu_params(&host);
        opt.step_submit(&gpu).unwrap();
        cpu::Optimizer::step(&mut reference, &mut host).unwrap();
        assert_one_step_close(
            &gpu_params(&gpu),
            &cpu_params(&host),
            &before,
            "10k tensors",
        );
    });
}

#[test]
fn layouts_past_u32_elements_per_tensor_are_refused() {
    let err = Layout::builder().tensor("w", &[1 << 16, 1 << 16]).build();
    assert!(matches!(err, Err(Error::LimitExceeded { .. })));
}
