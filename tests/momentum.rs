//! Exponential-average momentum on the GPU: hand-derived values and the CPU reference.

mod common;

use common::*;
use wgpu_optim::{cpu, Error, Momentum, MomentumConfig, Optimizer};

fn momentum(lr: f64, beta: f64) -> MomentumConfig {
    MomentumConfig { lr, beta }
}

#[test]
fn matches_reference_after_one_step() {
    on_every_adapter(|ctx| {
        let config = momentum(0.1, 0.9);
        check_against_reference(
            ctx,
            1,
            31,
            |s| Box::new(Momentum::new(s, config).unwrap()),
            |s| Box::new(cpu::Momentum::new(s, config).unwrap()),
        );
    });
}

#[test]
fn matches_reference_after_100_steps() {
    on_every_adapter(|ctx| {
        let config = momentum(0.01, 0.95);
        check_against_reference(
            ctx,
            100,
            32,
            |s| Box::new(Momentum::new(s, config).unwrap()),
            |s| Box::new(cpu::Momentum::new(s, config).unwrap()),
        );
    });
}

/// v1 = 0.1, v2 = 0.19, v3 = 0.271, so p = 1 - 0.1 v: 0.99, 0.971, 0.9439.
#[test]
fn hand_derived_three_steps() {
    on_every_adapter(|ctx| {
        let set = scalar_set(ctx, &[1.0]);
        let mut opt = Momentum::new(&set, momentum(0.1, 0.9)).unwrap();
        fill_grads(&set, 1.0);
        for want in [0.99, 0.971, 0.9439] {
            opt.step_submit(&set).unwrap();
            assert_hand(first(&set, "t0"), want, "p");
        }
    });

    let mut set = cpu::ParamSet::new(layout_of(&[1]));
    set.upload("t0", ndarray::arr1(&[1.0f32]).into_dyn().view())
        .unwrap();
    set.grads_mut().fill(1.0);
    let mut opt = cpu::Momentum::new(&set, momentum(0.1, 0.9)).unwrap();
    for want in [0.99, 0.971, 0.9439] {
        cpu::Optimizer::step(&mut opt, &mut set).unwrap();
        assert_hand(set.param("t0").unwrap()[[0]], want, "cpu p");
    }
    assert_hand(
        opt.state_of(&set, "velocity", "t0").unwrap()[[0]],
        0.271,
        "cpu v",
    );
}

#[test]
fn tensors_without_gradient_keep_their_velocity() {
    on_every_adapter(|ctx| {
        let mut set = scalar_set(ctx, &[1.0, 1.0]);
        let mut opt = Momentum::new(&set, momentum(0.1, 0.9)).unwrap();
        fill_grads(&set, 1.0);
        opt.step_submit(&set).unwrap();
        set.set_has_grad("t1", false).unwrap();
        opt.step_submit(&set).unwrap();
        assert_eq!(opt.step_counts(), &[2, 1]);
        assert_hand(first(&set, "t0"), 0.971, "A");
        assert_hand(first(&set, "t1"), 0.99, "B untouched in step 2");
    });
}

#[test]
fn invalid_hyperparameters_are_typed_errors() {
    let ctx = &contexts()[0];
    let set = scalar_set(ctx, &[1.0]);
    let cases = [
        (momentum(-1.0, 0.9), "lr"),
        (momentum(f64::NAN, 0.9), "lr"),
        (momentum(0.1, 1.0), "beta"),
        (momentum(0.1, -0.5), "beta"),
        (momentum(0.1, f64::NAN), "beta"),
    ];
    for (config, field) in cases {
        match Momentum::new(&set, config) {
            Err(Error::InvalidHyperparameter { name, .. }) => assert_eq!(name, field),
            other => panic!("{config:?}: unexpected {other:?}"),
        }
    }
    // The message names the field and the value.
    let msg = Momentum::new(&set, momentum(0.1, 1.0))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("beta") && msg.contains('1'), "{msg}");
}
