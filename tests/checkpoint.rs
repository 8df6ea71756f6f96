//! Checkpoints: a run resumed from a file follows the uninterrupted run for every optimizer,
//! from the GPU to the CPU reference and back; bad files are refused with typed errors and
//! change nothing; a failed save leaves the old file in place.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use ndarray::{ArrayD, IxDyn};
use safetensors::Dtype;
use wgpu_optim::checkpoint::Hyperparameters;
use wgpu_optim::cpu::{self, Optimizer as _, Reference, Update};
use wgpu_optim::{
    Adam, AdamConfig, AdamWConfig, Checkpoint, Context, Error, Fused, GdConfig, Layout,
    MomentumConfig, Optimizer, ParamSet, Sgd, SgdConfig,
};

/// Steps before the save, and in all.
const SAVE_AT: usize = 7;
const TOTAL: usize = 13;

/// Tensors of several shapes, an empty one, one past a chunk and a name with slashes.
fn layout() -> Layout {
    Layout::builder()
        .tensor("w", &[3, 5])
        .tensor("empty", &[4, 0])
        .tensor("b", &[65])
        .tensor("block.0/big", &[4097])
        .tensor("one", &[1])
        .build()
        .expect("layout")
}

/// Initial values and a fresh random gradient for every tensor and step.
struct Problem {
    layout: Layout,
    init: Vec<ArrayD<f32>>,
    grads: Vec<Vec<ArrayD<f32>>>,
}

fn problem(seed: u64) -> Problem {
    let layout = layout();
    let mut rng = Rng::new(seed);
    let mut draw = || -> Vec<ArrayD<f32>> {
        layout
            .tensors()
            .iter()
            .map(|t| rng.array(t.shape()))
            .collect()
    };
    let init = draw();
    let grads = (0..TOTAL).map(|_| draw()).collect();
    Problem {
        layout,
        init,
        grads,
    }
}

/// Tensors left without a gradient in some steps, so step counts differ when saved: `b`
/// every other step, `block.0/big` in the first three.
fn has_grad(step: usize, tensor: usize) -> bool {
    !((tensor == 2 && step.is_multiple_of(2)) || (tensor == 3 && step < 3))
}

fn run_gpu(set: &mut ParamSet, opt: &mut dyn Optimizer, p: &Problem, steps: Range<usize>) {
    for k in steps {
        for (i, (t, g)) in p.layout.tensors().iter().zip(&p.grads[k]).enumerate() {
            set.upload_grad(t.name(), g.view()).expect("upload grad");
            set.set_has_grad(t.name(), has_grad(k, i)).expect("tensor");
        }
        opt.step_submit(set).expect("gpu step");
    }
}

fn run_cpu(
    set: &mut cpu::ParamSet,
    opt: &mut dyn cpu::Optimizer,
    p: &Problem,
    steps: Range<usize>,
) {
    for k in steps {
        for (i, (t, g)) in p.layout.tensors().iter().zip(&p.grads[k]).enumerate() {
            set.upload_grad(t.name(), g.view()).expect("upload grad");
            set.set_has_grad(t.name(), has_grad(k, i)).expect("tensor");
        }
        opt.step(set).expect("cpu step");
    }
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// A fresh, empty directory for one test's files; tests run in parallel, so no two share one.
fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "wgpu-optim-ckpt-{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs `config` for `TOTAL` steps on both sides, and again with a save after `SAVE_AT` steps
/// on each side and a resume from each file on each side: CPU -> CPU must be bit-identical
/// to the uninterrupted CPU run, the others within `MANY_STEPS_1E5` of the uninterrupted run
/// of the side that finishes.
fn check_resume<R>(ctx: &Context, config: R, seed: u64)
where
    R: Hyperparameters + Update + PartialEq,
{
    let p = problem(seed);
    let dir = scratch(&format!("resume-{}-{seed}", R::NAME));
    let what = |path: &str| format!("{} {path} on {}", R::NAME, ctx.describe());

    // The uninterrupted run, on both sides.
    let (mut gpu_set, mut cpu_set) = twin_sets(ctx, &p.layout, &p.init);
    let mut gpu_straight = Fused::new(&gpu_set, config).expect("gpu optimizer");
    let mut cpu_straight = Reference::new(&cpu_set, config).expect("cpu optimizer");
    run_gpu(&mut gpu_set, &mut gpu_straight, &p, 0..TOTAL);
    run_cpu(&mut cpu_set, &mut cpu_straight, &p, 0..TOTAL);
    let (gpu_end, cpu_end) = (gpu_params(&gpu_set), cpu_params(&cpu_set));

    // The first part, saved on each side.
    let (mut gpu_set, mut cpu_set) = twin_sets(ctx, &p.layout, &p.init);
    let mut gpu_head = Fused::new(&gpu_set, config).expect("gpu optimizer");
    let mut cpu_head = Reference::new(&cpu_set, config).expect("cpu optimizer");
    run_gpu(&mut gpu_set, &mut gpu_head, &p, 0..SAVE_AT);
    run_cpu(&mut cpu_set, &mut cpu_head, &p, 0..SAVE_AT);
    let (gpu_file, cpu_file) = (dir.join("gpu.safetensors"), dir.join("cpu.safetensors"));
    gpu_head.save(&gpu_set, &gpu_file).expect("gpu save");
    cpu_head.save(&cpu_set, &cpu_file).expect("cpu save");
    let counts = cpu_head.step_counts().to_vec();
    assert_eq!(gpu_head.step_counts(), counts);
    assert_eq!(counts, [7, 7, 3, 4, 7], "counts that differ per tensor");
    let (gpu_saved, cpu_saved) = (gpu_params(&gpu_set), cpu_params(&cpu_set));

    // CPU -> CPU: the same bits as never stopping, state included.
    let mut set = cpu::ParamSet::new(p.layout.clone());
    let mut opt = Reference::<R>::load(&mut set, &cpu_file).expect("cpu load");
    assert_eq!(opt.config(), &config);
    assert_eq!(opt.step_counts(), counts);
    assert_eq!(bits(&cpu_params(&set)), bits(&cpu_saved));
    run_cpu(&mut set, &mut opt, &p, SAVE_AT..TOTAL);
    assert_eq!(
        bits(&cpu_params(&set)),
        bits(&cpu_end),
        "{}",
        what("CPU -> CPU")
    );
    assert_eq!(opt.step_counts(), cpu_straight.step_counts());
    for &name in config.state() {
        let (resumed, straight) = (opt.state(name).unwrap(), cpu_straight.state(name).unwrap());
        assert_eq!(
            bits(resumed.as_slice().unwrap()),
            bits(straight.as_slice().unwrap()),
            "{}",
            what(&format!("CPU -> CPU state {name}"))
        );
    }

    // GPU -> CPU.
    let mut set = cpu::ParamSet::new(p.layout.clone());
    let mut opt = Reference::<R>::load(&mut set, &gpu_file).expect("cpu load of gpu file");
    assert_eq!(opt.config(), &config);
    assert_eq!(opt.step_counts(), counts);
    assert_eq!(bits(&cpu_params(&set)), bits(&gpu_saved));
    run_cpu(&mut set, &mut opt, &p, SAVE_AT..TOTAL);
    assert_many_steps_close(&cpu_params(&set), &cpu_end, &what("GPU -> CPU"));
    assert_eq!(opt.step_counts(), cpu_straight.step_counts());

    // CPU -> GPU and GPU -> GPU, each into a fresh set.
    for (file, saved, path) in [
        (&cpu_file, &cpu_saved, "CPU -> GPU"),
        (&gpu_file, &gpu_saved, "GPU -> GPU"),
    ] {
        let mut set = ParamSet::new(ctx, p.layout.clone()).expect("gpu set");
        let mut opt = Fused::<R>::load(&set, file).expect("gpu load");
        assert_eq!(opt.config(), &config);
        assert_eq!(opt.step_counts(), counts);
        assert_eq!(bits(&gpu_params(&set)), bits(saved), "{}", what(path));
        run_gpu(&mut set, &mut opt, &p, SAVE_AT..TOTAL);
        assert_many_steps_close(&gpu_params(&set), &gpu_end, &what(path));
        assert_eq!(opt.step_counts(), gpu_straight.step_counts());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gd_resumes_on_course() {
    on_every_adapter(|ctx| check_resume(ctx, GdConfig { lr: 0.05 }, 1));
}

#[test]
fn momentum_resumes_on_course() {
    let config = MomentumConfig {
        lr: 0.05,
        beta: 0.8,
    };
    on_every_adapter(|ctx| check_resume(ctx, config, 2));
}

#[test]
fn sgd_with_momentum_resumes_on_course() {
    let config = SgdConfig {
        lr: 0.02,
        momentum: 0.9,
        dampening: 0.1,
        weight_decay: 1e-2,
        ..Default::default()
    };
    on_every_adapter(|ctx| check_resume(ctx, config, 3));
}

#[test]
fn adam_resumes_on_course() {
    let config = AdamConfig {
        lr: 0.01,
        ..Default::default()
    };
    on_every_adapter(|ctx| check_resume(ctx, config, 4));
}

#[test]
fn adam_amsgrad_resumes_on_course() {
    let config = AdamConfig {
        lr: 0.01,
        beta1: 0.8,
        weight_decay: 0.1,
        amsgrad: true,
        ..Default::default()
    };
    on_every_adapter(|ctx| check_resume(ctx, config, 5));
}

#[test]
fn adamw_resumes_on_course() {
    let config = AdamWConfig {
        lr: 0.01,
        amsgrad: true,
        ..Default::default()
    };
    on_every_adapter(|ctx| check_resume(ctx, config, 6));
}

// The file itself.

fn amsgrad() -> AdamConfig {
    AdamConfig {
        lr: 0.1 + 0.2,
        eps: 1e-8,
        amsgrad: true,
        ..Default::default()
    }
}

/// A CPU Adam (AMSGrad) set after `SAVE_AT` steps, saved to `dir/good.safetensors`.
fn good_file(dir: &Path) -> (PathBuf, Problem) {
    let p = problem(9);
    let mut set = cpu::ParamSet::new(p.layout.clone());
    for (t, v) in p.layout.tensors().iter().zip(&p.init) {
        set.upload(t.name(), v.view()).expect("upload");
    }
    let mut opt = cpu::Adam::new(&set, amsgrad()).expect("adam");
    run_cpu(&mut set, &mut opt, &p, 0..SAVE_AT);
    let path = dir.join("good.safetensors");
    let mut checkpoint = opt.checkpoint(&set).expect("checkpoint");
    checkpoint.set_user("epoch", "3");
    checkpoint.write(&path).expect("write");
    (path, p)
}

#[test]
fn the_file_holds_pytorch_names_in_their_shapes_and_every_hyperparameter() {
    let dir = scratch("layout");
    let (path, p) = good_file(&dir);
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();

    let mut want: Vec<(String, Dtype, Vec<usize>)> = Vec::new();
    for t in p.layout.tensors() {
        let name = t.name();
        want.push((format!("param/{name}"), Dtype::F32, t.shape().to_vec()));
        for state in ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"] {
            want.push((
                format!("state/{name}/{state}"),
                Dtype::F32,
                t.shape().to_vec(),
            ));
        }
        want.push((format!("state/{name}/step"), Dtype::I64, vec![]));
    }
    want.sort();
    let mut got: Vec<(String, Dtype, Vec<usize>)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.dtype(), view.shape().to_vec()))
        .collect();
    got.sort();
    assert_eq!(got, want);

    let step = |name: &str| {
        let data = file.tensor(&format!("state/{name}/step")).unwrap().data();
        i64::from_le_bytes(data.try_into().unwrap())
    };
    assert_eq!(
        ["w", "empty", "b", "block.0/big", "one"].map(step),
        [7, 7, 3, 4, 7]
    );

    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta: BTreeMap<String, String> = header.metadata().clone().unwrap().into_iter().collect();
    let config = amsgrad();
    let want: BTreeMap<String, String> = [
        ("format", "wgpu-optim checkpoint".to_owned()),
        ("format_version", "1".to_owned()),
        ("crate_version", env!("CARGO_PKG_VERSION").to_owned()),
        ("optimizer", "adam".to_owned()),
        ("optimizer.lr", "0.30000000000000004".to_owned()),
        ("optimizer.beta1", "0.9".to_owned()),
        ("optimizer.beta2", "0.999".to_owned()),
        ("optimizer.eps", "1e-8".to_owned()),
        ("optimizer.weight_decay", "0.0".to_owned()),
        ("optimizer.amsgrad", "true".to_owned()),
        ("optimizer.maximize", "false".to_owned()),
        ("optimizer.decoupled_weight_decay", "false".to_owned()),
        ("user.epoch", "3".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(meta, want);
    assert_eq!(meta["optimizer.lr"].parse::<f64>().unwrap(), config.lr);

    // The same, through the crate.
    let checkpoint = Checkpoint::read(&path).unwrap();
    assert_eq!(checkpoint.optimizer(), "adam");
    assert_eq!(checkpoint.crate_version(), env!("CARGO_PKG_VERSION"));
    assert_eq!(checkpoint.hyperparameter("eps"), Some("1e-8"));
    assert_eq!(checkpoint.user("epoch"), Some("3"));
    assert_eq!(checkpoint.user("seed"), None);
    assert_eq!(checkpoint.step_count("b"), Some(3));
    assert_eq!(checkpoint.param("w").unwrap().shape(), [3, 5]);
    assert_eq!(checkpoint.state("one", "exp_avg_sq").unwrap().shape(), [1]);
    assert!(checkpoint.state("one", "momentum_buffer").is_none());
    assert_eq!(checkpoint.tensor_names().count(), 5);
    let _ = std::fs::remove_dir_all(&dir);
}

// Bad files.

/// A tensor of a file being rewritten.
#[derive(Clone)]
struct Entry {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl safetensors::View for Entry {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        (&self.data[..]).into()
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

type Tensors = BTreeMap<String, Entry>;
type Meta = Option<HashMap<String, String>>;

/// Writes `src` to `dst` after `edit` has changed its tensors and metadata.
fn rewrite(src: &Path, dst: &Path, edit: impl FnOnce(&mut Tensors, &mut Meta)) {
    let bytes = std::fs::read(src).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta = header.metadata().clone();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Tensors = file
        .tensors()
        .into_iter()
        .map(|(name, v)| {
            let entry = Entry {
                dtype: v.dtype(),
                shape: v.shape().to_vec(),
                data: v.data().to_vec(),
            };
            (name, entry)
        })
        .collect();
    edit(&mut tensors, &mut meta);
    std::fs::write(dst, safetensors::serialize(tensors, meta).unwrap()).unwrap();
}

/// A CPU set of the test layout filled with sevens, to see that a failed load leaves it alone.
fn sevens(layout: &Layout) -> cpu::ParamSet {
    let mut set = cpu::ParamSet::new(layout.clone());
    for t in layout.tensors() {
        set.upload(t.name(), ArrayD::from_elem(IxDyn(t.shape()), 7.0).view())
            .unwrap();
    }
    set
}

/// Loads `path` as Adam into a set of `layout` on the CPU, expecting an error, and checks
/// that the set was left untouched.
fn refused_on_cpu(path: &Path, layout: &Layout) -> Error {
    let mut set = sevens(layout);
    let before = set.params().clone();
    let err = cpu::Adam::load(&mut set, path).expect_err("a bad file must be refused");
    assert_eq!(
        set.params(),
        &before,
        "a failed load changed the set ({err})"
    );
    err
}

/// A variant of the good file, changed by `edit`, refused on the CPU with the error returned.
fn refused_edit(edit: impl FnOnce(&mut Tensors, &mut Meta)) -> Error {
    let dir = scratch("edit");
    let (good, p) = good_file(&dir);
    let bad = dir.join("bad.safetensors");
    rewrite(&good, &bad, edit);
    let err = refused_on_cpu(&bad, &p.layout);
    let _ = std::fs::remove_dir_all(&dir);
    err
}

fn meta_of(meta: &mut Meta) -> &mut HashMap<String, String> {
    meta.as_mut().expect("metadata")
}

#[test]
fn an_unchanged_rewrite_still_loads() {
    let dir = scratch("unchanged");
    let (good, p) = good_file(&dir);
    let copy = dir.join("copy.safetensors");
    rewrite(&good, &copy, |_, _| {});
    let mut set = sevens(&p.layout);
    let opt = cpu::Adam::load(&mut set, &copy).expect("load");
    assert_eq!(opt.step_counts(), [7, 7, 3, 4, 7]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_wrong_optimizer_is_refused() {
    let dir = scratch("kind");
    let (good, p) = good_file(&dir);
    let mut set = sevens(&p.layout);
    let before = set.params().clone();
    let err = cpu::Sgd::load(&mut set, &good).unwrap_err();
    assert!(
        matches!(&err, Error::WrongOptimizer { expected: "sgd", found } if found == "adam"),
        "{err}"
    );
    let err = cpu::AdamW::load(&mut set, &good).unwrap_err();
    assert!(matches!(err, Error::WrongOptimizer { .. }), "{err}");
    assert_eq!(set.params(), &before);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tensors_that_do_not_match_the_set_are_refused() {
    let dir = scratch("names");
    let (good, _) = good_file(&dir);

    // A tensor the file lacks, listed first.
    let renamed = Layout::builder()
        .tensor("v", &[3, 5])
        .tensor("empty", &[4, 0])
        .tensor("b", &[65])
        .tensor("block.0/big", &[4097])
        .tensor("one", &[1])
        .build()
        .unwrap();
    let err = refused_on_cpu(&good, &renamed);
    assert!(
        matches!(&err, Error::MissingCheckpointTensor(n) if n == "param/v"),
        "{err}"
    );

    // A tensor the set lacks.
    let fewer = Layout::builder()
        .tensor("w", &[3, 5])
        .tensor("empty", &[4, 0])
        .tensor("b", &[65])
        .tensor("block.0/big", &[4097])
        .build()
        .unwrap();
    let err = refused_on_cpu(&good, &fewer);
    assert!(
        matches!(&err, Error::UnexpectedCheckpointTensor(n) if n == "param/one"),
        "{err}"
    );

    // Same names and sizes, another shape, on the last tensor so a partial write would show.
    let reshaped = Layout::builder()
        .tensor("w", &[3, 5])
        .tensor("empty", &[4, 0])
        .tensor("b", &[65])
        .tensor("block.0/big", &[4097])
        .tensor("one", &[1, 1])
        .build()
        .unwrap();
    let err = refused_on_cpu(&good, &reshaped);
    assert!(
        matches!(&err, Error::CheckpointShape { name, expected, found }
            if name == "param/one" && expected == &[1, 1] && found == &[1]),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_extra_and_misshapen_state_is_refused() {
    let err = refused_edit(|t, _| {
        t.remove("state/one/max_exp_avg_sq");
    });
    assert!(
        matches!(&err, Error::MissingCheckpointTensor(n) if n == "state/one/max_exp_avg_sq"),
        "{err}"
    );

    let err = refused_edit(|t, _| {
        t.remove("state/one/step");
    });
    assert!(
        matches!(&err, Error::MissingCheckpointTensor(n) if n == "state/one/step"),
        "{err}"
    );

    let err = refused_edit(|t, _| {
        t.remove("param/one");
    });
    assert!(
        matches!(&err, Error::MissingCheckpointTensor(n) if n == "param/one"),
        "{err}"
    );

    let err = refused_edit(|t, _| {
        let extra = t["state/one/exp_avg"].clone();
        t.insert("state/one/momentum_buffer".into(), extra);
    });
    assert!(
        matches!(&err, Error::UnexpectedCheckpointTensor(n) if n == "state/one/momentum_buffer"),
        "{err}"
    );

    let err = refused_edit(|t, _| {
        let extra = t["param/one"].clone();
        t.insert("one".into(), extra);
    });
    assert!(
        matches!(&err, Error::UnexpectedCheckpointTensor(n) if n == "one"),
        "{err}"
    );

    let err = refused_edit(|t, _| {
        t.get_mut("state/b/exp_avg").unwrap().shape = vec![5, 13];
    });
    assert!(
        matches!(&err, Error::CheckpointShape { name, .. } if name == "state/b/exp_avg"),
        "{err}"
    );

    let err = refused_edit(|t, _| {
        t.get_mut("state/b/step").unwrap().shape = vec![1];
    });
    assert!(
        matches!(&err, Error::CheckpointShape { name, .. } if name == "state/b/step"),
        "{err}"
    );

    let err = refused_edit(|t, _| {
        t.get_mut("state/b/step").unwrap().data = (-1i64).to_le_bytes().to_vec();
    });
    assert!(matches!(err, Error::CorruptCheckpoint(_)), "{err}");
}

#[test]
fn wrong_element_types_are_refused() {
    let err = refused_edit(|t, _| {
        let e = t.get_mut("param/w").unwrap();
        e.data = e
            .data
            .chunks_exact(4)
            .flat_map(|b| (f32::from_le_bytes(b.try_into().unwrap()) as f64).to_le_bytes())
            .collect();
        e.dtype = Dtype::F64;
    });
    assert!(
        matches!(&err, Error::CheckpointDtype { name, expected: "F32", found }
            if name == "param/w" && found == "F64"),
        "{err}"
    );

    let err = refused_edit(|t, _| {
        let e = t.get_mut("state/one/exp_avg_sq").unwrap();
        e.data.truncate(2);
        e.dtype = Dtype::F16;
    });
    assert!(
        matches!(&err, Error::CheckpointDtype { name, .. } if name == "state/one/exp_avg_sq"),
        "{err}"
    );

    let err = refused_edit(|t, _| {
        let e = t.get_mut("state/w/step").unwrap();
        e.data = 7.0f32.to_le_bytes().to_vec();
        e.dtype = Dtype::F32;
    });
    assert!(
        matches!(&err, Error::CheckpointDtype { name, expected: "I64", .. }
            if name == "state/w/step"),
        "{err}"
    );
}

#[test]
fn missing_or_garbled_metadata_is_refused() {
    let err = refused_edit(|_, meta| *meta = None);
    assert!(
        matches!(&err, Error::CheckpointMetadata { key, .. } if key == "format"),
        "{err}"
    );

    for key in [
        "format",
        "format_version",
        "crate_version",
        "optimizer",
        "optimizer.lr",
        "optimizer.amsgrad",
    ] {
        let err = refused_edit(|_, meta| {
            meta_of(meta).remove(key);
        });
        assert!(
            matches!(&err, Error::CheckpointMetadata { key: k, .. } if k == key),
            "{key}: {err}"
        );
    }

    for (key, value) in [
        ("format", "safetensors"),
        ("format_version", "one"),
        ("optimizer.beta1", "0.9x"),
        ("optimizer.maximize", "no"),
        ("optimizer.momentum", "0.9"),
    ] {
        let err = refused_edit(|_, meta| {
            meta_of(meta).insert(key.into(), value.into());
        });
        assert!(
            matches!(&err, Error::CheckpointMetadata { key: k, .. } if k == key),
            "{key} = {value}: {err}"
        );
    }

    let err = refused_edit(|_, meta| {
        meta_of(meta).insert("optimizer.lr".into(), "-1.0".into());
    });
    assert!(
        matches!(err, Error::InvalidHyperparameter { name: "lr", .. }),
        "{err}"
    );

    let err = refused_edit(|_, meta| {
        meta_of(meta).insert("format_version".into(), "2".into());
    });
    assert!(
        matches!(
            err,
            Error::CheckpointVersion {
                found: 2,
                supported: 1
            }
        ),
        "{err}"
    );
}

#[test]
fn truncated_and_corrupt_files_are_refused() {
    let dir = scratch("corrupt");
    let (good, p) = good_file(&dir);
    let bytes = std::fs::read(&good).unwrap();
    let bad = dir.join("bad.safetensors");
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;

    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("four bytes", bytes[..4].to_vec()),
        ("half the header", bytes[..8 + header_len / 2].to_vec()),
        ("one byte short", bytes[..bytes.len() - 1].to_vec()),
        ("one byte long", [&bytes[..], &[0]].concat()),
        (
            "half the data",
            bytes[..(bytes.len() + header_len) / 2].to_vec(),
        ),
    ];
    let mut garbled = bytes.clone();
    garbled[8] = b'x';
    cases.push(("garbled header", garbled));
    let mut huge = bytes.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    cases.push(("header length past the end", huge));
    cases.push(("not safetensors", b"PK\x03\x04 a zip file, say".to_vec()));

    for (what, contents) in cases {
        std::fs::write(&bad, contents).unwrap();
        let err = refused_on_cpu(&bad, &p.layout);
        assert!(matches!(err, Error::CorruptCheckpoint(_)), "{what}: {err}");
    }

    let err = refused_on_cpu(&dir.join("absent.safetensors"), &p.layout);
    assert!(
        matches!(&err, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_gpu_load_leaves_the_set_untouched() {
    let dir = scratch("gpu-untouched");
    let (good, p) = good_file(&dir);
    let missing = dir.join("missing-state.safetensors");
    rewrite(&good, &missing, |t, _| {
        t.remove("state/one/exp_avg");
    });
    let wrong_type = dir.join("wrong-type.safetensors");
    rewrite(&good, &wrong_type, |t, _| {
        t.get_mut("state/one/step").unwrap().dtype = Dtype::U64;
    });
    let truncated = dir.join("truncated.safetensors");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 3]).unwrap();

    on_every_adapter(|ctx| {
        let set = ParamSet::new(ctx, p.layout.clone()).unwrap();
        for t in p.layout.tensors() {
            set.upload(t.name(), ArrayD::from_elem(IxDyn(t.shape()), 7.0).view())
                .unwrap();
        }
        let before = gpu_params(&set);
        for file in [&missing, &wrong_type, &truncated] {
            let err = Adam::load(&set, file).expect_err("a bad file must be refused");
            assert_eq!(gpu_params(&set), before, "{}: {err}", file.display());
        }
        let err = Sgd::load(&set, &good).unwrap_err();
        assert!(matches!(err, Error::WrongOptimizer { .. }));
        assert_eq!(gpu_params(&set), before);

        // The good file does load, into the same set.
        let opt = Adam::load(&set, &good).unwrap();
        assert_eq!(opt.step_counts(), [7, 7, 3, 4, 7]);
        assert_ne!(gpu_params(&set), before);
    });
    let _ = std::fs::remove_dir_all(&dir);
}

// Saving.

#[test]
fn a_failed_save_leaves_the_old_file_intact() {
    let dir = scratch("failed-save");
    let (good, p) = good_file(&dir);
    let contents = std::fs::read(&good).unwrap();

    // A set of another layout than the optimizer's.
    let set = cpu::ParamSet::new(p.layout.clone());
    let opt = cpu::Adam::new(&set, amsgrad()).unwrap();
    let other = cpu::ParamSet::new(layout_of(&[3]));
    let err = opt.save(&other, &good).unwrap_err();
    assert!(matches!(err, Error::WrongParamSet), "{err}");
    assert_eq!(std::fs::read(&good).unwrap(), contents);

    // A directory where the file should go: the rename fails after the write.
    let occupied = dir.join("occupied");
    std::fs::create_dir(&occupied).unwrap();
    std::fs::write(occupied.join("inside"), b"kept").unwrap();
    let err = opt.save(&set, &occupied).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert_eq!(std::fs::read(occupied.join("inside")).unwrap(), b"kept");

    // A directory that does not exist.
    let err = opt
        .save(&set, dir.join("absent/ckpt.safetensors"))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{err}"
    );

    // Nothing was left behind, and the good file is as it was.
    assert_eq!(files_in(&dir), ["good.safetensors", "occupied"]);
    assert_eq!(std::fs::read(&good).unwrap(), contents);

    // A save that works replaces the file whole.
    opt.save(&set, &good).unwrap();
    assert_eq!(files_in(&dir), ["good.safetensors", "occupied"]);
    let back = Checkpoint::read(&good).unwrap();
    assert_eq!(back.step_count("w"), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_gpu_optimizer_saves_only_with_its_own_set() {
    let dir = scratch("gpu-wrong-set");
    let path = dir.join("ckpt.safetensors");
    on_every_adapter(|ctx| {
        let set = ParamSet::new(ctx, layout()).unwrap();
        let other = ParamSet::new(ctx, layout()).unwrap();
        let opt = Adam::new(&set, amsgrad()).unwrap();
        opt.save(&set, &path).unwrap();
        let contents = std::fs::read(&path).unwrap();
        let err = opt.save(&other, &path).unwrap_err();
        assert!(matches!(err, Error::WrongParamSet), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), contents);
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn user_notes_survive_a_round_trip() {
    let dir = scratch("user");
    let path = dir.join("ckpt.safetensors");
    let set = cpu::ParamSet::new(layout());
    let opt = cpu::Sgd::new(
        &set,
        SgdConfig {
            momentum: 0.5,
            ..Default::default()
        },
    )
    .unwrap();
    let mut checkpoint = opt.checkpoint(&set).unwrap();
    checkpoint.set_user("epoch", "12");
    checkpoint.set_user("note", "resumed twice; ünïcode ok");
    checkpoint.set_user("epoch", "13");
    checkpoint.write(&path).unwrap();

    let back = Checkpoint::read(&path).unwrap();
    assert_eq!(back.user("epoch"), Some("13"));
    assert_eq!(back.user("note"), Some("resumed twice; ünïcode ok"));
    let mut fresh = cpu::ParamSet::new(layout());
    let loaded = cpu::Sgd::from_checkpoint(&mut fresh, &back).unwrap();
    assert_eq!(loaded.config().momentum, 0.5);
    let _ = std::fs::remove_dir_all(&dir);
}
