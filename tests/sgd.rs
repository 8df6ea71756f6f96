//! PyTorch's SGD on the GPU: hand-derived values, the CPU reference, validation.
//! (Trajectories against torch.optim itself are in tests/torch.rs.)

mod common;

use common::*;
use wgpu_optim::{cpu, Error, Optimizer, Sgd, SgdConfig};

fn sgd(momentum: f64, dampening: f64, weight_decay: f64, nesterov: bool) -> SgdConfig {
    SgdConfig {
        lr: 0.1,
        momentum,
        dampening,
        weight_decay,
        nesterov,
        maximize: false,
    }
}

/// p = 1, lr 0.1, a constant gradient, and the values after each step, derived by hand:
/// - wd 0.1, g 0.5: 1 - 0.1 (0.5 + 0.1) = 0.94.
/// - momentum 0.9, dampening 0.5, g 1: buf 1 then 0.9 + 0.5 = 1.4; p 0.9 then 0.76.
/// - Nesterov 0.9, g 1: buf 1, step 1.9; buf 1.9, step 1 + 1.71 = 2.71; p 0.81 then 0.539.
/// - momentum 0.9, g 1: buf 1, 1.9, 2.71; p 0.9, 0.71, 0.439.
const HAND: &[(SgdConfig, f32, &[f32])] = &[
    (
        SgdConfig {
            lr: 0.1,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.1,
            nesterov: false,
            maximize: false,
        },
        0.5,
        &[0.94],
    ),
    (
        SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.5,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
        },
        1.0,
        &[0.9, 0.76],
    ),
    (
        SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: true,
            maximize: false,
        },
        1.0,
        &[0.81, 0.539],
    ),
    (
        SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
        },
        1.0,
        &[0.9, 0.71, 0.439],
    ),
];

#[test]
fn hand_derived_values_on_gpu_and_cpu() {
    on_every_adapter(|ctx| {
        for (config, g, wants) in HAND {
            let set = scalar_set(ctx, &[1.0]);
            let mut opt = Sgd::new(&set, *config).unwrap();
            fill_grads(&set, *g);
            for want in *wants {
                opt.step_submit(&set).unwrap();
                assert_hand(first(&set, "t0"), *want, &format!("{config:?}"));
            }
        }
    });
    for (config, g, wants) in HAND {
        let mut set = cpu::ParamSet::new(layout_of(&[1]));
        set.upload("t0", ndarray::arr1(&[1.0f32]).into_dyn().view())
            .unwrap();
        set.grads_mut().fill(*g);
        let mut opt = cpu::Sgd::new(&set, *config).unwrap();
        for want in *wants {
            cpu::Optimizer::step(&mut opt, &mut set).unwrap();
            assert_hand(
                set.param("t0").unwrap()[[0]],
                *want,
                &format!("cpu {config:?}"),
            );
        }
    }
}

#[test]
fn matches_reference_with_every_option() {
    let configs = [
        sgd(0.0, 0.0, 0.0, false),
        sgd(0.9, 0.1, 1e-2, false),
        SgdConfig {
            maximize: true,
            ..sgd(0.8, 0.0, 1e-3, true)
        },
    ];
    on_every_adapter(|ctx| {
        for (i, config) in configs.iter().enumerate() {
            for steps in [1, 100] {
                check_against_reference(
                    ctx,
                    steps,
                    40 + i as u64,
                    |s| Box::new(Sgd::new(s, *config).unwrap()),
                    |s| Box::new(cpu::Sgd::new(s, *config).unwrap()),
                );
            }
        }
    });
}

/// The buffer starts as the gradient on each tensor's own first step.
#[test]
fn a_late_tensor_starts_its_buffer_fresh() {
    on_every_adapter(|ctx| {
        let mut set = scalar_set(ctx, &[1.0, 1.0]);
        let mut opt = Sgd::new(&set, sgd(0.9, 0.0, 0.0, false)).unwrap();
        fill_grads(&set, 1.0);
        set.set_has_grad("t1", false).unwrap();
        opt.step_submit(&set).unwrap();
        set.set_has_grad("t1", true).unwrap();
        opt.step_submit(&set).unwrap();
        assert_hand(first(&set, "t0"), 0.71, "A: two steps");
        assert_hand(first(&set, "t1"), 0.9, "B: its first step");
    });
}

#[test]
fn state_costs_only_what_momentum_needs() {
    let ctx = &contexts()[0];
    let set = scalar_set(ctx, &[1.0; 3]);
    let plain = Sgd::new(&set, sgd(0.0, 0.0, 0.0, false)).unwrap();
    assert_eq!(plain.state_bytes(), 0);
    let heavy = Sgd::new(&set, sgd(0.9, 0.0, 0.0, false)).unwrap();
    assert_eq!(heavy.state_bytes(), set.arena_buffers()[0].params().size());
    assert_eq!(
        heavy.state_buffers("momentum_buffer").map(|b| b.len()),
        Some(1)
    );
}

#[test]
fn invalid_hyperparameters_are_typed_errors() {
    let ctx = &contexts()[0];
    let set = scalar_set(ctx, &[1.0]);
    let cases = [
        (sgd(0.0, 0.0, 0.0, true), "nesterov"),
        (sgd(0.9, 0.5, 0.0, true), "nesterov"),
        (sgd(-0.9, 0.0, 0.0, false), "momentum"),
        (sgd(f64::NAN, 0.0, 0.0, false), "momentum"),
        (sgd(0.9, 1.5, 0.0, false), "dampening"),
        (sgd(0.9, -0.1, 0.0, false), "dampening"),
        (sgd(0.9, 0.0, -1e-4, false), "weight_decay"),
        (sgd(0.9, 0.0, f64::INFINITY, false), "weight_decay"),
        (
            SgdConfig {
                lr: -0.1,
                ..Default::default()
            },
            "lr",
        ),
    ];
    let cpu_set = cpu::ParamSet::new(layout_of(&[1]));
    for (config, field) in cases {
        for err in [
            Sgd::new(&set, config).unwrap_err(),
            cpu::Sgd::new(&cpu_set, config).unwrap_err(),
        ] {
            match err {
                Error::InvalidHyperparameter { name, .. } => assert_eq!(name, field),
                other => panic!("{config:?}: unexpected {other:?}"),
            }
        }
    }

    // Hyperparameters may change between steps, but momentum cannot be switched on later.
    let mut opt = Sgd::new(&set, sgd(0.0, 0.0, 0.0, false)).unwrap();
    assert!(opt.set_config(sgd(0.0, 0.0, 0.1, false)).is_ok());
    assert!(matches!(
        opt.set_config(sgd(0.9, 0.0, 0.0, false)),
        Err(Error::InvalidHyperparameter {
            name: "momentum",
            ..
        })
    ));
    assert_eq!(
        opt.config().weight_decay,
        0.1,
        "a refused config changes nothing"
    );
}
