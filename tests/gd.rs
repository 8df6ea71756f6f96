//! Gradient descent on the GPU: hand-derived values, tails and the CPU reference.

mod common;

use common::*;
use ndarray::Array1;
use wgpu_optim::{cpu, Error, Gd, GdConfig, Layout, Optimizer, ParamSet};

fn gd(lr: f64) -> GdConfig {
    GdConfig { lr }
}

#[test]
fn matches_reference_after_one_step() {
    on_every_adapter(|ctx| {
        check_against_reference(
            ctx,
            1,
            21,
            |s| Box::new(Gd::new(s, gd(0.1)).unwrap()),
            |s| Box::new(cpu::Gd::new(s, gd(0.1)).unwrap()),
        );
    });
}

#[test]
fn matches_reference_after_100_steps() {
    on_every_adapter(|ctx| {
        check_against_reference(
            ctx,
            100,
            22,
            |s| Box::new(Gd::new(s, gd(0.01)).unwrap()),
            |s| Box::new(cpu::Gd::new(s, gd(0.01)).unwrap()),
        );
    });
}

#[test]
fn learning_rate_changes_between_steps() {
    on_every_adapter(|ctx| {
        for one_submit in [false, true] {
            let set = scalar_set(ctx, &[1.0]);
            let mut opt = Gd::new(&set, gd(0.1)).unwrap();
            fill_grads(&set, 1.0);
            step_with_rates(ctx, &mut opt, &set, &[0.1, 0.2], one_submit);
            assert_hand(first(&set, "t0"), 0.7, &format!("one submit: {one_submit}"));
        }
    });
}

/// p[i] = i, g = 1, lr 0.5 gives i - 0.5 in every element, and nothing past the tensor moves:
/// the padding after it holds a sentinel and a following tensor has no gradient.
#[test]
fn tails_update_every_element_and_nothing_past_the_end() {
    const SENTINEL: f32 = -12345.0;
    on_every_adapter(|ctx| {
        for n in [1, 3, 42, 63, 64, 65, 255, 257, 2049, 4097] {
            let layout = Layout::builder()
                .tensor("x", &[n])
                .tensor("after", &[5])
                .build()
                .unwrap();
            let mut set = ParamSet::new(ctx, layout).unwrap();
            let len = set.layout().arena_len();

            // Whole arenas: parameters i in the tensor, the sentinel elsewhere; gradient 1
            // everywhere, padding included, so an overrun would show.
            let x = set.tensor("x").unwrap().clone();
            let mut arena = vec![SENTINEL; len];
            for i in 0..n {
                arena[x.offset() + i] = i as f32;
            }
            let queue = ctx.queue();
            let buffers = &set.arena_buffers()[0];
            queue.write_buffer(buffers.params(), 0, bytemuck::cast_slice(&arena));
            queue.write_buffer(buffers.grads(), 0, bytemuck::cast_slice(&vec![1.0f32; len]));
            set.set_has_grad("after", false).unwrap();

            let mut opt = Gd::new(&set, gd(0.5)).unwrap();
            opt.step_submit(&set).unwrap();

            let got = set.download_arena().unwrap();
            for (i, &v) in got.iter().enumerate() {
                let want = if x.range().contains(&i) {
                    (i - x.offset()) as f32 - 0.5
                } else {
                    SENTINEL
                };
                assert_eq!(v, want, "n = {n}, arena element {i}");
            }
            assert_eq!(
                got[x.offset() + n - 1],
                n as f32 - 1.5,
                "n = {n}: last element"
            );
        }
    });
}

#[test]
fn cpu_reference_updates_tails_exactly() {
    let layout = layout_of(&[42]);
    let mut set = cpu::ParamSet::new(layout);
    set.upload(
        "t0",
        Array1::from_iter((0..42).map(|i| i as f32))
            .into_dyn()
            .view(),
    )
    .unwrap();
    set.grads_mut().fill(1.0);
    let mut opt = cpu::Gd::new(&set, gd(0.5)).unwrap();
    cpu::Optimizer::step(&mut opt, &mut set).unwrap();
    let p = set.param("t0").unwrap();
    assert_eq!(p[[41]], 40.5);
    assert!(p.iter().enumerate().all(|(i, &v)| v == i as f32 - 0.5));
}

#[test]
fn invalid_hyperparameters_are_typed_errors() {
    let ctx = &contexts()[0];
    let set = scalar_set(ctx, &[1.0]);
    let cpu_set = cpu::ParamSet::new(layout_of(&[1]));
    for lr in [-0.1, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert!(matches!(
            Gd::new(&set, gd(lr)),
            Err(Error::InvalidHyperparameter { name: "lr", .. })
        ));
        assert!(matches!(
            cpu::Gd::new(&cpu_set, gd(lr)),
            Err(Error::InvalidHyperparameter { name: "lr", .. })
        ));
    }
    // lr = 0 is allowed and leaves the parameters alone.
    let mut opt = Gd::new(&set, gd(0.0)).unwrap();
    fill_grads(&set, 1.0);
    opt.step_submit(&set).unwrap();
    assert_eq!(first(&set, "t0"), 1.0);
}

#[test]
fn an_optimizer_refuses_another_set() {
    let ctx = &contexts()[0];
    let a = scalar_set(ctx, &[1.0]);
    let b = scalar_set(ctx, &[1.0]);
    let mut opt = Gd::new(&a, gd(0.1)).unwrap();
    assert!(matches!(opt.step_submit(&b), Err(Error::WrongParamSet)));
    assert_eq!(opt.step_counts(), &[0], "a refused step counts nothing");
}

/// Every slot of the step ring used in one encoder: step k (1-based) has lr = k / 1000, so
/// after n steps with g = 1, p = 1 - n (n + 1) / 2000.
#[test]
fn a_full_ring_of_steps_before_one_submit_keeps_each_rate() {
    on_every_adapter(|ctx| {
        let set = scalar_set(ctx, &[1.0]);
        let mut opt = Gd::new(&set, gd(0.1)).unwrap();
        fill_grads(&set, 1.0);
        let n = opt.steps_in_flight();
        assert!(n >= 2);
        let rates: Vec<f64> = (1..=n).map(|k| k as f64 / 1000.0).collect();
        step_with_rates(ctx, &mut opt, &set, &rates, true);
        let want = 1.0 - (n * (n + 1)) as f64 / 2000.0;
        let got = first(&set, "t0") as f64;
        assert!(
            (got - want).abs() < 1e-5,
            "{n} steps: got {got}, want {want}"
        );
    });
}
