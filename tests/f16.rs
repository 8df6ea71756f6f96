//! f16 parameter sets: f16 parameters and gradients with f32 master weights and state, on
//! every adapter that has `SHADER_F16`, held to the CPU reference; and the typed error where
//! the device lacks the feature.

mod common;

use common::*;
use ndarray::{arr1, ArrayD};
use wgpu_optim::cpu::Optimizer as _;
use wgpu_optim::{
    cpu, f16_bits, f16_to_f32, round_to_f16, AdamConfig, Context, Error, GdConfig, GradPolicy,
    Layout, Optimizer, ParamSet, Precision, SgdConfig,
};

/// Runs `test` on every adapter whose device has f16 shaders; the others are named and
/// passed over (they are checked for the typed error in `sets_need_the_f16_feature`).
fn on_every_f16_adapter(test: impl Fn(&Context)) {
    on_every_adapter(|ctx| {
        if ctx.supports_f16() {
            test(ctx);
        } else {
            eprintln!("{}: no SHADER_F16, f16 sets not run", ctx.describe());
        }
    });
}

/// Tolerance `F16_1ULP`: the f16 copy is within one f16 ULP (at the larger magnitude) of the
/// reference's master weights rounded to f16, since WGSL lets the conversion round either
/// way and the master weights may differ by a few f32 ULP.
fn assert_f16_close(gpu: &[f32], cpu: &[f32], what: &str) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    for (i, (&g, &c)) in gpu.iter().zip(cpu).enumerate() {
        assert_eq!(g, round_to_f16(g), "{what}[{i}]: {g:e} is not an f16 value");
        let h = f16_bits(g.abs().max(c.abs()));
        let ulp = f16_to_f32(h + 1) - f16_to_f32(h);
        assert!(
            (g - c).abs() <= ulp,
            "{what}[{i}]: gpu {g:e} cpu {c:e}: more than 1 f16 ULP ({ulp:e}) apart"
        );
    }
}

/// The f16 copies of every tensor, concatenated in layout order.
fn gpu_f16(set: &ParamSet) -> Vec<f32> {
    set.layout()
        .tensors()
        .iter()
        .flat_map(|t| set.download_f16(t.name()).expect("download f16"))
        .collect()
}

fn cpu_f16(set: &cpu::ParamSet) -> Vec<f32> {
    set.layout()
        .tensors()
        .iter()
        .flat_map(|t| set.download_f16(t.name()).expect("download f16"))
        .collect()
}

/// An f16 GPU set and an f16 CPU set of `layout` holding the same random values.
fn twin_f16_sets(ctx: &Context, layout: &Layout, rng: &mut Rng) -> (ParamSet, cpu::ParamSet) {
    let gpu = ParamSet::new_f16(ctx, layout.clone()).expect("f16 set");
    let mut cpu = cpu::ParamSet::new_f16(layout.clone());
    for t in layout.tensors() {
        let v = rng.array(t.shape());
        gpu.upload(t.name(), v.view()).expect("upload");
        cpu.upload(t.name(), v.view()).expect("upload");
    }
    (gpu, cpu)
}

const F16_LENGTHS: &[usize] = &[0, 1, 3, 63, 65, 255, 4097];

/// Steps both sets side by side with fresh random gradients, then holds the master weights
/// to the reference (`ONE_STEP_4ULP` after one step, `MANY_STEPS_1E5` after more) and the
/// f16 copies to `F16_1ULP`.
fn check_f16_against_reference(
    ctx: &Context,
    steps: usize,
    seed: u64,
    gpu_opt: impl FnOnce(&ParamSet) -> Box<dyn Optimizer>,
    cpu_opt: impl FnOnce(&cpu::ParamSet) -> Box<dyn cpu::Optimizer>,
) {
    let layout = layout_of(F16_LENGTHS);
    let mut rng = Rng::new(seed);
    let (gpu, mut cpu) = twin_f16_sets(ctx, &layout, &mut rng);
    let mut gpu_opt = gpu_opt(&gpu);
    let mut cpu_opt = cpu_opt(&cpu);

    let before = cpu_params(&cpu);
    assert_eq!(
        gpu_params(&gpu),
        before,
        "uploaded master weights are exact"
    );
    assert_f16_close(&gpu_f16(&gpu), &cpu_f16(&cpu), "uploaded f16 copy");
    for _ in 0..steps {
        let grads: Vec<ArrayD<f32>> = layout
            .tensors()
            .iter()
            .map(|t| rng.array(t.shape()))
            .collect();
        set_grads(&gpu, &mut cpu, &grads);
        gpu_opt.step_submit(&gpu).expect("gpu step");
        cpu_opt.step(&mut cpu).expect("cpu step");
    }
    for t in layout.tensors() {
        assert_eq!(
            gpu.download_grad(t.name()).unwrap(),
            cpu.grads().slice(ndarray::s![t.range()]).into_dyn(),
            "f16 gradients of {}",
            t.name()
        );
    }

    let (g, c) = (gpu_params(&gpu), cpu_params(&cpu));
    assert_ne!(c, before, "the reference must have moved");
    if steps == 1 {
        assert_one_step_close(&g, &c, &before, "master weights after one step");
    } else {
        assert_many_steps_close(&g, &c, &format!("master weights after {steps} steps"));
    }
    assert_f16_close(&gpu_f16(&gpu), &cpu_f16(&cpu), "f16 copy");
    assert_eq!(gpu_opt.step_counts(), cpu_opt.step_counts());
}

#[test]
fn sets_need_the_f16_feature() {
    for adapter in Context::enumerate_adapters() {
        let info = adapter.get_info();
        if info.backend == wgpu::Backend::Noop {
            continue;
        }
        // A device the caller made without SHADER_F16.
        let (device, queue) =
            pollster::block_on(adapter.request_device(&Default::default())).expect("plain device");
        let ctx = Context::from_device(device, queue, info);
        assert!(!ctx.supports_f16());
        let err = ParamSet::new_f16(&ctx, layout_of(&[3])).unwrap_err();
        assert!(
            matches!(
                err,
                Error::MissingFeature {
                    feature: "shader-f16"
                }
            ),
            "{}: {err}",
            ctx.describe()
        );
    }
    // Contexts the crate opens ask for the feature wherever the adapter has it.
    for ctx in contexts() {
        let result = ParamSet::new_f16(ctx, layout_of(&[3]));
        assert_eq!(result.is_ok(), ctx.supports_f16(), "{}", ctx.describe());
        eprintln!("{}: SHADER_F16 {}", ctx.describe(), ctx.supports_f16());
    }
}

#[test]
fn f16_calls_on_an_f32_set_are_refused() {
    on_every_adapter(|ctx| {
        let set = ParamSet::new(ctx, layout_of(&[3])).unwrap();
        assert_eq!(set.precision(), Precision::F32);
        assert!(matches!(
            set.download_f16("t0"),
            Err(Error::WrongPrecision {
                wanted: Precision::F16,
                actual: Precision::F32
            })
        ));
        assert!(matches!(
            set.master_binding("t0"),
            Err(Error::WrongPrecision { .. })
        ));
    });
}

/// Hand value: p = [1, -2, 0.5] in f16, all-zero gradients, Adam lr 1e-3, 3 steps. With
/// g = 0 both moments stay 0 and the update is 0 / (0 + eps) = 0: nothing moves, nothing is
/// NaN (eps and all arithmetic are f32, so no 0 / 0 from an underflowed eps).
#[test]
fn zero_gradients_leave_f16_parameters_unchanged() {
    on_every_f16_adapter(|ctx| {
        let set = ParamSet::new_f16(ctx, layout_of(&[3])).unwrap();
        let p = arr1(&[1.0f32, -2.0, 0.5]).into_dyn();
        set.upload("t0", p.view()).unwrap();
        let mut adam = AdamConfig {
            lr: 1e-3,
            ..Default::default()
        }
        .init(&set)
        .unwrap();
        for _ in 0..3 {
            adam.step_submit(&set).unwrap();
        }
        assert_eq!(set.download("t0").unwrap(), p);
        assert_eq!(set.download_f16("t0").unwrap(), p);
        let m = set.download_f16("t0").unwrap();
        assert!(m.iter().all(|x| x.is_finite()));
        assert_eq!(adam.step_counts(), [3]);
    });
}

/// g = 1e-4 is a normal f16 whose square (1e-8) is below the smallest f16: f16 arithmetic
/// would make v = 0. In f32 the first Adam step is lr * g / (|g| + eps), close to lr.
#[test]
fn tiny_f16_gradients_are_squared_in_f32() {
    on_every_f16_adapter(|ctx| {
        let layout = layout_of(&[5]);
        let gpu = ParamSet::new_f16(ctx, layout.clone()).unwrap();
        let mut cpu = cpu::ParamSet::new_f16(layout);
        let p = arr1(&[1.0f32, -2.0, 0.5, 0.0, 3.0]).into_dyn();
        let g = ArrayD::from_elem(p.shape(), 1e-4f32);
        gpu.upload("t0", p.view()).unwrap();
        cpu.upload("t0", p.view()).unwrap();
        set_grads(&gpu, &mut cpu, &[g]);
        let config = AdamConfig {
            lr: 1e-3,
            ..Default::default()
        };
        config.init(&gpu).unwrap().step_submit(&gpu).unwrap();
        cpu::Adam::new(&cpu, config)
            .unwrap()
            .step(&mut cpu)
            .unwrap();

        let master = gpu.download("t0").unwrap();
        let want = cpu.download("t0").unwrap();
        let before: Vec<f32> = p.iter().copied().collect();
        assert_one_step_close(
            master.as_slice().unwrap(),
            want.as_slice().unwrap(),
            &before,
            "master after a tiny-gradient step",
        );
        // The step is about lr, far from the 0 an underflowed v would give (or the NaN of 0/0).
        for (&m, &b) in master.iter().zip(&before) {
            assert!((b - m - 1e-3).abs() < 1e-5, "moved {} from {b}", b - m);
        }
    });
}

#[test]
fn adam_on_f16_matches_the_reference() {
    on_every_f16_adapter(|ctx| {
        for (steps, seed) in [(1, 11), (5, 12)] {
            let config = AdamConfig {
                lr: 1e-2,
                weight_decay: 0.01,
                ..Default::default()
            };
            check_f16_against_reference(
                ctx,
                steps,
                seed,
                |s| Box::new(config.init(s).unwrap()),
                |s| Box::new(cpu::Adam::new(s, config).unwrap()),
            );
        }
    });
}

#[test]
fn sgd_with_momentum_on_f16_matches_the_reference() {
    on_every_f16_adapter(|ctx| {
        for (steps, seed) in [(1, 21), (5, 22)] {
            let config = SgdConfig {
                lr: 1e-2,
                momentum: 0.9,
                dampening: 0.1,
                ..Default::default()
            };
            check_f16_against_reference(
                ctx,
                steps,
                seed,
                |s| Box::new(config.init(s).unwrap()),
                |s| Box::new(cpu::Sgd::new(s, config).unwrap()),
            );
        }
    });
}

#[test]
fn gd_on_f16_matches_the_reference() {
    on_every_f16_adapter(|ctx| {
        for (steps, seed) in [(1, 31), (5, 32)] {
            let config = GdConfig { lr: 0.05 };
            check_f16_against_reference(
                ctx,
                steps,
                seed,
                |s| Box::new(config.init(s).unwrap()),
                |s| Box::new(cpu::Gd::new(s, config).unwrap()),
            );
        }
    });
}

/// Loss scaling and clipping run their guard passes over f16 gradients too.
#[test]
fn clipping_scaled_f16_gradients_matches_the_reference() {
    on_every_f16_adapter(|ctx| {
        let policy = GradPolicy {
            loss_scale: 1024.0,
            max_norm: Some(0.5),
            skip_non_finite: true,
        };
        let config = AdamConfig::default();
        check_f16_against_reference(
            ctx,
            3,
            41,
            |s| {
                let mut o = config.init(s).unwrap();
                o.set_grad_policy(s, policy).unwrap();
                Box::new(o)
            },
            |s| {
                let mut o = cpu::Adam::new(s, config).unwrap();
                o.set_grad_policy(policy).unwrap();
                Box::new(o)
            },
        );
    });
}

/// Sentinels in every padding element of the f16 parameters, the master weights and the
/// gradients: steps never write past a tensor's end, and the norm never reads padding.
#[test]
fn nothing_past_a_tensor_end_is_written_or_counted() {
    const SENTINEL_F16: u16 = 0x5140; // 42.0
    const SENTINEL_F32: f32 = -42.0;
    const NAN_F16: u16 = 0x7e00;
    on_every_f16_adapter(|ctx| {
        let layout = layout_of(&[1, 3, 5, 63, 65, 130, 4097]);
        let mut rng = Rng::new(51);
        let (gpu, mut cpu) = twin_f16_sets(ctx, &layout, &mut rng);
        let n = layout.arena_len();
        let in_tensor = |i: usize| layout.tensors().iter().any(|t| t.range().contains(&i));

        // Whole arenas: tensor values as uploaded, sentinels in the padding.
        let master = cpu.params().to_vec();
        let master: Vec<f32> = (0..n)
            .map(|i| {
                if in_tensor(i) {
                    master[i]
                } else {
                    SENTINEL_F32
                }
            })
            .collect();
        let halves: Vec<u16> = (0..n)
            .map(|i| {
                if in_tensor(i) {
                    f16_bits(master[i])
                } else {
                    SENTINEL_F16
                }
            })
            .collect();
        let grads: Vec<f32> = (0..n).map(|_| rng.uniform()).collect();
        let grad_halves: Vec<u16> = (0..n)
            .map(|i| {
                if in_tensor(i) {
                    f16_bits(grads[i])
                } else {
                    NAN_F16
                }
            })
            .collect();
        let buffer = &gpu.arena_buffers()[0];
        let queue = ctx.queue();
        queue.write_buffer(buffer.master().unwrap(), 0, bytemuck::cast_slice(&master));
        queue.write_buffer(buffer.params(), 0, bytemuck::cast_slice(&halves));
        queue.write_buffer(buffer.grads(), 0, bytemuck::cast_slice(&grad_halves));
        for t in layout.tensors() {
            cpu.grad_mut(t.name())
                .unwrap()
                .iter_mut()
                .zip(&grads[t.range()])
                .for_each(|(g, &x)| *g = round_to_f16(x));
        }

        // The norm sees only the tensors' own f16 gradients.
        let norm = gpu.grad_norm().unwrap();
        let want = cpu.grad_norm() as f32;
        assert!(norm.is_finite(), "padding NaN counted: {norm}");
        assert!(
            (norm - want).abs() <= 1e-5 * want,
            "norm {norm} want {want}"
        );

        let config = AdamConfig {
            lr: 1e-2,
            ..Default::default()
        };
        let mut adam = config.init(&gpu).unwrap();
        let mut reference = cpu::Adam::new(&cpu, config).unwrap();
        for _ in 0..2 {
            adam.step_submit(&gpu).unwrap();
            reference.step(&mut cpu).unwrap();
        }

        let got_master = gpu.download_arena().unwrap();
        let got_halves = gpu.download_arena_f16().unwrap();
        for i in (0..n).filter(|&i| !in_tensor(i)) {
            assert_eq!(got_master[i], SENTINEL_F32, "master padding {i} written");
            assert_eq!(got_halves[i], SENTINEL_F16, "f16 padding {i} written");
        }
        assert_many_steps_close(&gpu_params(&gpu), &cpu_params(&cpu), "master weights");
        assert_f16_close(&gpu_f16(&gpu), &cpu_f16(&cpu), "f16 copy");
    });
}

/// A caller's kernel binds f16 tensors at 256-byte aligned offsets, whole quads long.
#[test]
fn f16_bindings_are_aligned_and_cover_whole_quads() {
    on_every_f16_adapter(|ctx| {
        let set = ParamSet::new_f16(ctx, layout_of(&[3, 130, 8])).unwrap();
        assert_eq!(set.precision(), Precision::F16);
        for (name, offset, size) in [("t0", 0, 8), ("t1", 256, 264), ("t2", 768, 16)] {
            for binding in [set.param_binding(name), set.grad_binding(name)] {
                let b = binding.unwrap();
                assert_eq!((b.offset, b.size.unwrap().get()), (offset, size), "{name}");
            }
            let m = set.master_binding(name).unwrap();
            assert_eq!(m.offset, offset * 2, "{name} master");
        }
    });
}

/// An f16 set round-trips its uploads: master weights exactly, the copy rounded.
#[test]
fn uploads_round_to_nearest_even() {
    on_every_f16_adapter(|ctx| {
        let set = ParamSet::new_f16(ctx, layout_of(&[4])).unwrap();
        // 1 + 2^-11 is halfway between 1 and the next f16: ties go to even (1).
        let p = arr1(&[1.0 + f32::powi(2.0, -11), 0.1, -65504.0, 1e-8]).into_dyn();
        set.upload("t0", p.view()).unwrap();
        set.upload_grad("t0", p.view()).unwrap();
        assert_eq!(set.download("t0").unwrap(), p);
        let rounded = p.mapv(round_to_f16);
        assert_eq!(rounded[0], 1.0);
        assert_eq!(set.download_f16("t0").unwrap(), rounded);
        assert_eq!(set.download_grad("t0").unwrap(), rounded);
    });
}
