//! The GPU parameter set: layout, round trips, bindings and its typed errors.

mod common;

use common::*;
use ndarray::{ArrayD, IxDyn};
use wgpu_optim::{cpu, Error, Layout, ParamSet};

fn layout() -> Layout {
    Layout::builder()
        .tensor("w", &[3, 5])
        .tensor("empty", &[0])
        .tensor("b", &[5])
        .build()
        .unwrap()
}

#[test]
fn upload_and_download_round_trip_in_shape() {
    on_every_adapter(|ctx| {
        let set = ParamSet::new(ctx, layout()).unwrap();
        let mut rng = Rng::new(1);
        let w = rng.array(&[3, 5]);
        let gw = rng.array(&[3, 5]);
        set.upload("w", w.view()).unwrap();
        set.upload_grad("w", gw.view()).unwrap();
        assert_eq!(set.download("w").unwrap(), w);
        assert_eq!(set.download_grad("w").unwrap(), gw);
        assert_eq!(
            set.download("b").unwrap(),
            ArrayD::<f32>::zeros(IxDyn(&[5]))
        );
        assert_eq!(set.download("empty").unwrap().shape(), &[0]);
    });
}

#[test]
fn tensor_bindings_are_aligned_ranges() {
    on_every_adapter(|ctx| {
        let set = ParamSet::new(ctx, layout()).unwrap();
        let align = ctx.limits().min_storage_buffer_offset_alignment as u64;
        for name in ["w", "b"] {
            let binding = set.grad_binding(name).unwrap();
            let t = set.tensor(name).unwrap();
            assert_eq!(binding.offset % align, 0, "{name}");
            assert_eq!(binding.offset, t.offset() as u64 * 4);
            assert_eq!(binding.size.unwrap().get(), t.len() as u64 * 4);
            assert_eq!(set.param_binding(name).unwrap().offset, binding.offset);
        }
        assert!(matches!(set.grad_binding("empty"), Err(Error::EmptyTensor(n)) if n == "empty"));
    });
}

#[test]
fn bad_input_is_a_typed_error_and_writes_nothing() {
    let ctx = &contexts()[0];
    let mut set = ParamSet::new(ctx, layout()).unwrap();
    let wrong = ArrayD::from_elem(IxDyn(&[4, 5]), 7.0f32);
    match set.upload("w", wrong.view()) {
        Err(Error::LengthMismatch {
            tensor,
            expected,
            actual,
        }) => assert_eq!((tensor.as_str(), expected, actual), ("w", 15, 20)),
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        set.upload_grad("w", wrong.view()),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(set.download("w").unwrap().iter().all(|&v| v == 0.0));
    assert!(set.download_grad("w").unwrap().iter().all(|&v| v == 0.0));

    assert!(matches!(set.download("nope"), Err(Error::UnknownTensor(n)) if n == "nope"));
    assert!(matches!(
        set.set_has_grad("nope", false),
        Err(Error::UnknownTensor(_))
    ));
    assert!(matches!(
        set.param_binding("nope"),
        Err(Error::UnknownTensor(_))
    ));

    let mut host = cpu::ParamSet::new(layout());
    assert!(matches!(
        host.upload("w", wrong.view()),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(host.params().iter().all(|&v| v == 0.0));
}

#[test]
fn the_no_adapter_message_tells_what_to_install() {
    let msg = Error::NoAdapter {
        detail: String::new(),
    }
    .to_string();
    assert!(msg.contains("mesa-vulkan-drivers"), "{msg}");
}

#[test]
fn grad_norm_on_the_device_matches_an_f64_sum() {
    on_every_adapter(|ctx| {
        let layout = layout_of(LENGTHS);
        let set = ParamSet::new(ctx, layout.clone()).unwrap();
        let mut host = cpu::ParamSet::new(layout.clone());
        let mut rng = Rng::new(5);
        for t in layout.tensors() {
            let g = rng.array(t.shape());
            set.upload_grad(t.name(), g.view()).unwrap();
            host.upload_grad(t.name(), g.view()).unwrap();
        }
        let want = host.grad_norm();
        let got = set.grad_norm().unwrap() as f64;
        // f32 partial sums over about a million squares: relative error well under 1e-5.
        assert!((got - want).abs() <= 1e-5 * want, "gpu {got} cpu {want}");

        // Hand value: gradients [3, 4] have norm 5.
        let small = ParamSet::new(ctx, layout_of(&[2, 0])).unwrap();
        small
            .upload_grad("t0", ndarray::arr1(&[3.0f32, 4.0]).into_dyn().view())
            .unwrap();
        assert_eq!(small.grad_norm().unwrap(), 5.0);

        // No tensors at all: norm 0.
        let empty = ParamSet::new(ctx, Layout::builder().build().unwrap()).unwrap();
        assert_eq!(empty.grad_norm().unwrap(), 0.0);
    });
}
