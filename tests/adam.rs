//! Adam on the GPU: hand-derived values, the CPU reference, and the rules of SPEC.md.

mod common;

use common::*;
use ndarray::arr1;
use wgpu_optim::{cpu, Adam, AdamConfig, AdamW, AdamWConfig, Error, Optimizer, ParamSet};

fn adam(lr: f64) -> AdamConfig {
    AdamConfig {
        lr,
        ..Default::default()
    }
}

#[test]
fn matches_reference_after_one_step() {
    on_every_adapter(|ctx| {
        let config = AdamConfig {
            lr: 0.01,
            ..Default::default()
        };
        check_against_reference(
            ctx,
            1,
            11,
            |s| Box::new(Adam::new(s, config).unwrap()),
            |s| Box::new(cpu::Adam::new(s, config).unwrap()),
        );
    });
}

#[test]
fn matches_reference_after_100_steps() {
    on_every_adapter(|ctx| {
        let config = AdamConfig {
            lr: 1e-3,
            beta1: 0.8,
            beta2: 0.99,
            eps: 1e-6,
            ..Default::default()
        };
        check_against_reference(
            ctx,
            100,
            12,
            |s| Box::new(Adam::new(s, config).unwrap()),
            |s| Box::new(cpu::Adam::new(s, config).unwrap()),
        );
    });
}

// Hand derivation: with a constant gradient g, m_t / (1 - beta1^t) = g and
// sqrt(v_t / (1 - beta2^t)) = |g|, so each step moves p by lr * sign(g) (eps is negligible).

#[test]
fn step_counts_are_per_tensor() {
    on_every_adapter(|ctx| {
        let mut set = scalar_set(ctx, &[1.0, 1.0]);
        let mut opt = Adam::new(&set, adam(0.01)).unwrap();
        fill_grads(&set, 0.5);

        // Step 1: only A has a gradient.
        set.set_has_grad("t1", false).unwrap();
        opt.step_submit(&set).unwrap();
        assert_eq!(opt.step_counts(), &[1, 0]);

        // Step 2: both do; B's first update is bias-corrected as t = 1.
        set.set_has_grad("t1", true).unwrap();
        opt.step_submit(&set).unwrap();
        assert_eq!(opt.step_counts(), &[2, 1]);
        // f32 prints these as 0.98000002 and 0.99000001.
        assert_hand(first(&set, "t0"), 0.98, "A");
        // A global step count would give 0.9925586.
        assert_hand(first(&set, "t1"), 0.99, "B");
    });
}

#[test]
fn learning_rate_changes_between_steps() {
    on_every_adapter(|ctx| {
        for one_submit in [false, true] {
            let set = scalar_set(ctx, &[1.0]);
            let mut opt = Adam::new(&set, adam(0.1)).unwrap();
            fill_grads(&set, 0.5);
            step_with_rates(ctx, &mut opt, &set, &[0.1, 0.01, 0.001], one_submit);
            // 1 - 0.1 - 0.01 - 0.001.
            assert_hand(
                first(&set, "t0"),
                0.889,
                &format!("one submit: {one_submit}"),
            );
        }
    });
}

#[test]
fn zero_length_neighbours() {
    on_every_adapter(|ctx| {
        let layout = layout_of(&[1, 1, 0, 1, 0]);
        let set = ParamSet::new(ctx, layout).unwrap();
        for name in ["t0", "t1", "t3"] {
            set.upload(name, arr1(&[1.0f32]).into_dyn().view()).unwrap();
        }
        fill_grads(&set, 0.5);
        let mut opt = Adam::new(&set, adam(0.01)).unwrap();
        opt.step_submit(&set).unwrap();
        for name in ["t0", "t1", "t3"] {
            assert_hand(first(&set, name), 0.99, name);
        }
        for name in ["t2", "t4"] {
            assert_eq!(set.download(name).unwrap().len(), 0);
        }
    });
}

#[test]
fn non_finite_gradients_stay_in_their_element() {
    on_every_adapter(|ctx| {
        let layout = layout_of(&[4]);
        let set = ParamSet::new(ctx, layout).unwrap();
        set.upload("t0", arr1(&[1.0f32; 4]).into_dyn().view())
            .unwrap();
        let g = arr1(&[0.5, f32::INFINITY, f32::NAN, -0.5]).into_dyn();
        set.upload_grad("t0", g.view()).unwrap();
        let mut opt = Adam::new(&set, adam(0.01)).unwrap();
        opt.step_submit(&set).unwrap();
        let p = set.download("t0").unwrap();
        assert_hand(p[[0]], 0.99, "p[0]");
        assert_hand(p[[3]], 1.01, "p[3]");
        // IEEE: inf / inf and NaN propagate as NaN in their own element only.
        assert!(!p[[1]].is_finite() && !p[[2]].is_finite());
    });
}

#[test]
fn cpu_reference_hits_the_hand_values() {
    let layout = layout_of(&[1, 1]);
    let mut set = cpu::ParamSet::new(layout);
    set.upload("t0", arr1(&[1.0f32]).into_dyn().view()).unwrap();
    set.upload("t1", arr1(&[1.0f32]).into_dyn().view()).unwrap();
    set.grads_mut().fill(0.5);
    let mut opt = cpu::Adam::new(&set, adam(0.01)).unwrap();
    set.set_has_grad("t1", false).unwrap();
    cpu::Optimizer::step(&mut opt, &mut set).unwrap();
    set.set_has_grad("t1", true).unwrap();
    cpu::Optimizer::step(&mut opt, &mut set).unwrap();
    assert_hand(set.param("t0").unwrap()[[0]], 0.98, "A");
    assert_hand(set.param("t1").unwrap()[[0]], 0.99, "B");
}

#[test]
fn invalid_hyperparameters_are_typed_errors() {
    let ctx = &contexts()[0];
    let set = scalar_set(ctx, &[1.0]);
    let cases: &[(AdamConfig, &str)] = &[
        (adam(-1e-3), "lr"),
        (adam(f64::NAN), "lr"),
        (adam(f64::INFINITY), "lr"),
        (
            AdamConfig {
                beta1: 1.0,
                ..adam(1e-3)
            },
            "beta1",
        ),
        (
            AdamConfig {
                beta1: -0.1,
                ..adam(1e-3)
            },
            "beta1",
        ),
        (
            AdamConfig {
                beta2: 1.0,
                ..adam(1e-3)
            },
            "beta2",
        ),
        (
            AdamConfig {
                beta2: f64::NAN,
                ..adam(1e-3)
            },
            "beta2",
        ),
        (
            AdamConfig {
                eps: -1e-8,
                ..adam(1e-3)
            },
            "eps",
        ),
        (
            AdamConfig {
                eps: f64::NAN,
                ..adam(1e-3)
            },
            "eps",
        ),
    ];
    let cpu_set = cpu::ParamSet::new(layout_of(&[1]));
    for (config, field) in cases {
        for err in [
            Adam::new(&set, *config).unwrap_err(),
            cpu::Adam::new(&cpu_set, *config).unwrap_err(),
        ] {
            match err {
                Error::InvalidHyperparameter { name, .. } => assert_eq!(name, *field),
                other => panic!("{config:?}: unexpected {other:?}"),
            }
        }
    }

    let mut opt = Adam::new(&set, adam(1e-3)).unwrap();
    assert!(matches!(
        opt.set_learning_rate(-1.0),
        Err(Error::InvalidHyperparameter { name: "lr", .. })
    ));
    assert_eq!(opt.learning_rate(), 1e-3, "a rejected lr changes nothing");
}

#[test]
fn matches_reference_with_every_option() {
    let configs = [
        AdamConfig {
            lr: 1e-2,
            weight_decay: 0.1,
            amsgrad: true,
            ..Default::default()
        },
        AdamConfig {
            lr: 1e-3,
            maximize: true,
            weight_decay: 1e-2,
            decoupled_weight_decay: true,
            ..Default::default()
        },
    ];
    on_every_adapter(|ctx| {
        for (i, config) in configs.iter().enumerate() {
            for steps in [1, 100] {
                check_against_reference(
                    ctx,
                    steps,
                    50 + i as u64,
                    |s| Box::new(Adam::new(s, *config).unwrap()),
                    |s| Box::new(cpu::Adam::new(s, *config).unwrap()),
                );
            }
        }
    });
}

#[test]
fn adamw_defaults_are_pytorchs_and_state_is_exact() {
    let w = AdamWConfig::default();
    assert_eq!((w.lr, w.beta1, w.beta2, w.eps), (1e-3, 0.9, 0.999, 1e-8));
    assert_eq!(w.weight_decay, 1e-2);
    assert!(AdamConfig::from(w).decoupled_weight_decay);

    let ctx = &contexts()[0];
    let set = scalar_set(ctx, &[1.0; 5]);
    let arena = set.arena_buffers()[0].params().size();
    let plain = AdamW::new(&set, w).unwrap();
    assert_eq!(plain.state_bytes(), 2 * arena);
    let ams = AdamW::new(&set, AdamWConfig { amsgrad: true, ..w }).unwrap();
    assert_eq!(ams.state_bytes(), 3 * arena);
}

/// AdamW, p = 1, lr 0.1, wd 0.5, g 0.5: p shrinks to 1 - 0.05 = 0.95, then the first Adam
/// step moves it by lr: 0.85.
#[test]
fn adamw_hand_value() {
    on_every_adapter(|ctx| {
        let set = scalar_set(ctx, &[1.0]);
        let config = AdamWConfig {
            lr: 0.1,
            weight_decay: 0.5,
            ..Default::default()
        };
        let mut opt = AdamW::new(&set, config).unwrap();
        fill_grads(&set, 0.5);
        opt.step_submit(&set).unwrap();
        assert_hand(first(&set, "t0"), 0.85, "AdamW");
    });
}
