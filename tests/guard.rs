//! Gradient policies on the GPU and the CPU reference: skipping steps with non-finite
//! gradients, loss-scale division, global-norm clipping, and the norm reduction itself.

mod common;

use common::*;
use ndarray::arr1;
use wgpu_optim::cpu::Optimizer as _;
use wgpu_optim::{
    cpu, Adam, AdamConfig, Error, Gd, GdConfig, GradPolicy, Layout, Optimizer, ParamSet, Sgd,
    SgdConfig,
};

fn skip() -> GradPolicy {
    GradPolicy {
        skip_non_finite: true,
        ..Default::default()
    }
}

fn adam(lr: f64) -> AdamConfig {
    AdamConfig {
        lr,
        ..Default::default()
    }
}

/// p = [1, 1, 1, 1], g = [0.5, inf, NaN, -0.5]: the step is skipped whole; the next finite
/// step (g = 0.5) is bias-corrected as the first, so p = 1 - lr = 0.99.
#[test]
fn a_non_finite_gradient_skips_the_whole_step() {
    on_every_adapter(|ctx| {
        let set = ParamSet::new(ctx, layout_of(&[4])).unwrap();
        set.upload("t0", arr1(&[1.0f32; 4]).into_dyn().view())
            .unwrap();
        let bad = arr1(&[0.5, f32::INFINITY, f32::NAN, -0.5]).into_dyn();
        set.upload_grad("t0", bad.view()).unwrap();
        let mut opt = Adam::new(&set, adam(0.01)).unwrap();
        opt.set_grad_policy(&set, skip()).unwrap();
        opt.step_submit(&set).unwrap();

        assert_eq!(
            set.download("t0")
                .unwrap()
                .iter()
                .copied()
                .collect::<Vec<f32>>(),
            [1.0; 4]
        );
        assert_eq!(opt.read_step_counts(&set).unwrap(), [0]);
        assert_eq!(opt.read_skipped_steps(&set).unwrap(), 1);
        assert!(opt.read_grad_norm(&set).unwrap().is_nan());

        fill_grads(&set, 0.5);
        opt.step_submit(&set).unwrap();
        for p in set.download("t0").unwrap() {
            assert_hand(p, 0.99, "after the skip");
        }
        assert_eq!(opt.read_step_counts(&set).unwrap(), [1]);
        assert_eq!(opt.read_skipped_steps(&set).unwrap(), 1);
    });

    // The CPU reference does the same.
    let mut set = cpu::ParamSet::new(layout_of(&[4]));
    set.upload("t0", arr1(&[1.0f32; 4]).into_dyn().view())
        .unwrap();
    let bad = arr1(&[0.5, f32::INFINITY, f32::NAN, -0.5]).into_dyn();
    set.upload_grad("t0", bad.view()).unwrap();
    let mut opt = cpu::Adam::new(&set, adam(0.01)).unwrap();
    opt.set_grad_policy(skip()).unwrap();
    cpu::Optimizer::step(&mut opt, &mut set).unwrap();
    assert_eq!(
        set.param("t0")
            .unwrap()
            .iter()
            .copied()
            .collect::<Vec<f32>>(),
        [1.0; 4]
    );
    assert_eq!(cpu::Optimizer::step_counts(&opt), [0]);
    assert_eq!(opt.skipped_steps(), 1);
    set.grads_mut().fill(0.5);
    cpu::Optimizer::step(&mut opt, &mut set).unwrap();
    assert_hand(set.param("t0").unwrap()[[0]], 0.99, "cpu after the skip");
}

/// Skipped steps do not start SGD's momentum buffer: the first real step takes b = g.
#[test]
fn skipped_steps_leave_sgd_buffers_unstarted() {
    on_every_adapter(|ctx| {
        let set = scalar_set(ctx, &[1.0]);
        let config = SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            ..Default::default()
        };
        let mut opt = Sgd::new(&set, config).unwrap();
        opt.set_grad_policy(&set, skip()).unwrap();
        fill_grads(&set, f32::NAN);
        opt.step_submit(&set).unwrap();
        fill_grads(&set, 1.0);
        opt.step_submit(&set).unwrap();
        opt.step_submit(&set).unwrap();
        // As if the skipped step never happened: 0.9, then 0.9 - 0.1 * 1.9 = 0.71.
        assert_hand(first(&set, "t0"), 0.71, "sgd");
    });
}

/// Gradients [3, 4], max_norm 1: norm 5, gradients used [3, 4] / (5 + 1e-6); GD with lr 1
/// from 0 lands on minus those. With max_norm 10 they are used unchanged.
#[test]
fn clipping_to_a_global_norm() {
    on_every_adapter(|ctx| {
        for (max_norm, want) in [(1.0, [-0.6f32, -0.8]), (10.0, [-3.0, -4.0])] {
            let set = ParamSet::new(ctx, layout_of(&[1, 1])).unwrap();
            set.upload_grad("t0", arr1(&[3.0f32]).into_dyn().view())
                .unwrap();
            set.upload_grad("t1", arr1(&[4.0f32]).into_dyn().view())
                .unwrap();
            let mut opt = Gd::new(&set, GdConfig { lr: 1.0 }).unwrap();
            let policy = GradPolicy {
                max_norm: Some(max_norm),
                ..Default::default()
            };
            opt.set_grad_policy(&set, policy).unwrap();
            opt.step_submit(&set).unwrap();
            assert_eq!(opt.read_grad_norm(&set).unwrap(), 5.0);
            for (name, w) in ["t0", "t1"].iter().zip(want) {
                let got = first(&set, name);
                assert!((got - w).abs() <= 1e-6, "max_norm {max_norm}: {got} vs {w}");
            }
        }
    });
}

/// A loss scale of 1024 turns a gradient of 512 into 0.5.
#[test]
fn gradients_are_divided_by_the_loss_scale() {
    on_every_adapter(|ctx| {
        let set = scalar_set(ctx, &[1.0]);
        fill_grads(&set, 512.0);
        let mut opt = Gd::new(&set, GdConfig { lr: 1.0 }).unwrap();
        let policy = GradPolicy {
            loss_scale: 1024.0,
            ..Default::default()
        };
        opt.set_grad_policy(&set, policy).unwrap();
        opt.step_submit(&set).unwrap();
        assert_eq!(first(&set, "t0"), 0.5);
    });
}

/// Every policy at once, on random data with a poisoned step in the middle, against the CPU
/// reference; several tensors, some without a gradient in some steps.
#[test]
fn policies_match_the_reference() {
    let policy = GradPolicy {
        loss_scale: 128.0,
        max_norm: Some(20.0),
        skip_non_finite: true,
    };
    let config = AdamConfig {
        lr: 1e-2,
        weight_decay: 0.01,
        ..Default::default()
    };
    on_every_adapter(|ctx| {
        let layout = layout_of(&[3, 4097, 0, 65, 100_003]);
        let mut rng = Rng::new(3);
        let values: Vec<_> = layout
            .tensors()
            .iter()
            .map(|t| rng.array(t.shape()))
            .collect();
        let (mut gpu, mut host) = twin_sets(ctx, &layout, &values);
        let mut opt = Adam::new(&gpu, config).unwrap();
        let mut reference = cpu::Adam::new(&host, config).unwrap();
        opt.set_grad_policy(&gpu, policy).unwrap();
        reference.set_grad_policy(policy).unwrap();

        for step in 0..6 {
            let mut grads: Vec<_> = layout
                .tensors()
                .iter()
                .map(|t| rng.array(t.shape()) * 128.0)
                .collect();
            if step == 2 {
                grads[1][[7]] = f32::INFINITY;
            }
            let skip_t3 = step % 2 == 1;
            gpu.set_has_grad("t3", !skip_t3).unwrap();
            host.set_has_grad("t3", !skip_t3).unwrap();
            set_grads(&gpu, &mut host, &grads);
            opt.step_submit(&gpu).unwrap();
            cpu::Optimizer::step(&mut reference, &mut host).unwrap();
        }
        assert_many_steps_close(&gpu_params(&gpu), &cpu_params(&host), "params");
        assert_eq!(opt.read_skipped_steps(&gpu).unwrap(), 1);
        assert_eq!(reference.skipped_steps(), 1);
        let counts = opt.read_step_counts(&gpu).unwrap();
        assert_eq!(counts, cpu::Optimizer::step_counts(&reference));
        assert_eq!(counts, [5, 5, 5, 2, 5]);
        let (g, c) = (
            opt.read_grad_norm(&gpu).unwrap(),
            reference.last_grad_norm(),
        );
        assert!((g - c).abs() <= 1e-5 * c, "norm: gpu {g} cpu {c}");
    });
}

/// Tolerance `NORM_1E5`: the device's f32 tree sums against an f64 sum, relative 1e-5.
#[test]
fn norms_match_an_f64_sum_from_empty_to_tens_of_millions() {
    on_every_adapter(|ctx| {
        for lengths in [&[0][..], &[1], &[5, 0, 1000], &[33_554_433]] {
            let layout = layout_of(lengths);
            let set = ParamSet::new(ctx, layout.clone()).unwrap();
            let mut host = cpu::ParamSet::new(layout.clone());
            let mut rng = Rng::new(lengths.len() as u64);
            for t in layout.tensors() {
                let g = rng.array(t.shape());
                set.upload_grad(t.name(), g.view()).unwrap();
                host.upload_grad(t.name(), g.view()).unwrap();
            }
            let (got, want) = (set.grad_norm().unwrap() as f64, host.grad_norm());
            assert!(
                (got - want).abs() <= 1e-5 * want,
                "{lengths:?}: {got} vs {want}"
            );
        }
    });
}

/// Skipping switched on after some steps carries the counts to the device, and back.
#[test]
fn step_counts_follow_the_switch() {
    on_every_adapter(|ctx| {
        let set = scalar_set(ctx, &[1.0, 1.0]);
        let mut opt = Adam::new(&set, adam(0.01)).unwrap();
        fill_grads(&set, 0.5);
        opt.step_submit(&set).unwrap();
        opt.step_submit(&set).unwrap();
        opt.set_grad_policy(&set, skip()).unwrap();
        assert_eq!(opt.read_step_counts(&set).unwrap(), [2, 2]);
        opt.step_submit(&set).unwrap();
        assert_eq!(opt.read_step_counts(&set).unwrap(), [3, 3]);
        // Three Adam steps with a constant gradient move p by 3 lr.
        assert_hand(first(&set, "t0"), 0.97, "after the switch");
        opt.set_grad_policy(&set, GradPolicy::default()).unwrap();
        assert_eq!(opt.step_counts(), [3, 3]);
    });
}

#[test]
fn invalid_policies_are_typed_errors() {
    let ctx = &contexts()[0];
    let set = scalar_set(ctx, &[1.0]);
    let mut opt = Adam::new(&set, adam(1e-3)).unwrap();
    let cases = [
        (
            GradPolicy {
                loss_scale: 0.0,
                ..Default::default()
            },
            "loss_scale",
        ),
        (
            GradPolicy {
                loss_scale: -2.0,
                ..Default::default()
            },
            "loss_scale",
        ),
        (
            GradPolicy {
                loss_scale: f64::NAN,
                ..Default::default()
            },
            "loss_scale",
        ),
        (
            GradPolicy {
                max_norm: Some(0.0),
                ..Default::default()
            },
            "max_norm",
        ),
        (
            GradPolicy {
                max_norm: Some(f64::INFINITY),
                ..Default::default()
            },
            "max_norm",
        ),
    ];
    for (policy, field) in cases {
        match opt.set_grad_policy(&set, policy) {
            Err(Error::InvalidHyperparameter { name, .. }) => assert_eq!(name, field),
            other => panic!("{policy:?}: unexpected {other:?}"),
        }
    }
    assert_eq!(
        *opt.grad_policy(),
        GradPolicy::default(),
        "refusals change nothing"
    );

    let other = ParamSet::new(ctx, Layout::builder().tensor("x", &[1]).build().unwrap()).unwrap();
    assert!(matches!(
        opt.set_grad_policy(&other, GradPolicy::default()),
        Err(Error::WrongParamSet)
    ));
}

/// New betas while skipping is on replace the device's whole bias table, longer or shorter.
#[test]
fn new_betas_while_skipping_match_the_reference() {
    let cases = [
        (
            AdamConfig::default(),
            AdamConfig {
                beta1: 0.5,
                beta2: 0.5,
                ..adam(0.01)
            },
        ),
        (
            AdamConfig {
                beta1: 0.0,
                beta2: 0.0,
                ..adam(0.01)
            },
            AdamConfig::default(),
        ),
    ];
    on_every_adapter(|ctx| {
        for (before, after) in cases {
            let layout = layout_of(&[5]);
            let mut rng = Rng::new(8);
            let values = vec![rng.array(&[5])];
            let (gpu, mut host) = twin_sets(ctx, &layout, &values);
            let mut opt = Adam::new(&gpu, before).unwrap();
            let mut reference = cpu::Adam::new(&host, before).unwrap();
            opt.set_grad_policy(&gpu, skip()).unwrap();
            reference.set_grad_policy(skip()).unwrap();
            for step in 0..40 {
                if step == 1 {
                    opt.set_config(after).unwrap();
                    reference.set_config(after).unwrap();
                }
                let grads = vec![rng.array(&[5])];
                set_grads(&gpu, &mut host, &grads);
                opt.step_submit(&gpu).unwrap();
                cpu::Optimizer::step(&mut reference, &mut host).unwrap();
            }
            assert_many_steps_close(&gpu_params(&gpu), &cpu_params(&host), "new betas");
        }
    });
}

/// Betas whose bias corrections never reach 1 within the device table are refused.
#[test]
fn betas_too_close_to_one_for_the_table_are_refused() {
    let ctx = &contexts()[0];
    let set = scalar_set(ctx, &[1.0]);
    let near_one = AdamConfig {
        beta2: 1.0 - 1e-9,
        ..Default::default()
    };
    let mut opt = Adam::new(&set, near_one).unwrap();
    assert!(matches!(
        opt.set_grad_policy(&set, skip()),
        Err(Error::InvalidHyperparameter { name: "beta2", .. })
    ));
    let mut opt = Adam::new(&set, AdamConfig::default()).unwrap();
    opt.set_grad_policy(&set, skip()).unwrap();
    assert!(matches!(
        opt.set_config(near_one),
        Err(Error::InvalidHyperparameter { name: "beta2", .. })
    ));
}

/// Gradients whose squares overflow f32 give an infinite norm on both sides, so clipping
/// stops the step on both.
#[test]
fn norms_past_f32_agree_with_the_reference() {
    let policy = GradPolicy {
        max_norm: Some(1.0),
        ..Default::default()
    };
    on_every_adapter(|ctx| {
        let layout = layout_of(&[4]);
        let values = vec![ndarray::ArrayD::zeros(ndarray::IxDyn(&[4]))];
        let (gpu, mut host) = twin_sets(ctx, &layout, &values);
        let grads = vec![ndarray::ArrayD::from_elem(ndarray::IxDyn(&[4]), 1e19f32)];
        set_grads(&gpu, &mut host, &grads);
        let mut opt = Gd::new(&gpu, GdConfig { lr: 1.0 }).unwrap();
        let mut reference = cpu::Gd::new(&host, GdConfig { lr: 1.0 }).unwrap();
        opt.set_grad_policy(&gpu, policy).unwrap();
        reference.set_grad_policy(policy).unwrap();
        opt.step_submit(&gpu).unwrap();
        cpu::Optimizer::step(&mut reference, &mut host).unwrap();
        assert_eq!(gpu_params(&gpu), cpu_params(&host));
        assert!(opt.read_grad_norm(&gpu).unwrap().is_infinite());
        assert!(reference.last_grad_norm().is_infinite());
    });
}

#[test]
fn reads_refuse_another_set() {
    let ctx = &contexts()[0];
    let (a, b) = (scalar_set(ctx, &[1.0]), scalar_set(ctx, &[1.0]));
    let opt = Adam::new(&a, adam(0.01)).unwrap();
    assert!(matches!(opt.read_grad_norm(&b), Err(Error::WrongParamSet)));
    assert!(matches!(
        opt.read_skipped_steps(&b),
        Err(Error::WrongParamSet)
    ));
    assert!(matches!(
        opt.read_step_counts(&b),
        Err(Error::WrongParamSet)
    ));
}

/// Values finite in f64 but not in the f32 the kernels use are refused.
#[test]
fn values_past_f32_are_refused() {
    let ctx = &contexts()[0];
    let set = scalar_set(ctx, &[1.0]);
    assert!(Gd::new(&set, GdConfig { lr: 1e39 }).is_err());
    assert!(Adam::new(
        &set,
        AdamConfig {
            eps: 1e39,
            ..Default::default()
        }
    )
    .is_err());
    let adamw = wgpu_optim::AdamWConfig {
        lr: 1e30,
        weight_decay: 1e30,
        ..Default::default()
    };
    assert!(matches!(
        wgpu_optim::AdamW::new(&set, adamw),
        Err(Error::InvalidHyperparameter {
            name: "weight_decay",
            ..
        })
    ));
    let mut opt = Gd::new(&set, GdConfig { lr: 0.1 }).unwrap();
    for loss_scale in [1e-50, 1e300] {
        let policy = GradPolicy {
            loss_scale,
            ..Default::default()
        };
        assert!(matches!(
            opt.set_grad_policy(&set, policy),
            Err(Error::InvalidHyperparameter {
                name: "loss_scale",
                ..
            })
        ));
    }
}
