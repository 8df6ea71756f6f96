//! The pictures: optimizer paths on the test surfaces, loss curves of the main job and the
//! benchmark's bandwidth plot. The examples' own files are included as modules, so the code
//! tested is the code that draws.

mod common;

#[path = "../examples/paths/main.rs"]
#[allow(dead_code)]
mod paths;

#[path = "../examples/train/plot.rs"]
mod train_plot;

#[path = "../examples/bench_report/plot.rs"]
mod bench_plot;

use std::path::{Path, PathBuf};

use paths::descent::{self, Method, Noise};
use paths::surface::{Surface, HIMMELBLAU, ROSENBROCK};

const NO_NOISE: Noise = Noise {
    sigma: 0.0,
    seed: 1,
};

/// Steps of the end-point checks: the example's default.
const STEPS: usize = 2000;

/// A fresh folder under Cargo's scratch space for integration tests.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// Reads `file` and checks it is well-formed XML with an `<svg>` root.
fn read_svg(file: &Path) -> String {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    let doc = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{} is not well-formed XML: {e}", file.display()));
    assert_eq!(
        doc.root_element().tag_name().name(),
        "svg",
        "{}",
        file.display()
    );
    text
}

/// The text of every `<text>` element.
fn texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).expect("checked by read_svg");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_owned())
        .collect()
}

/// How many elements named `tag` have attribute `attr` equal to `value` (case-insensitive).
fn count(svg: &str, tag: &str, attr: &str, value: &str) -> usize {
    let doc = roxmltree::Document::parse(svg).expect("checked by read_svg");
    doc.descendants()
        .filter(|n| n.has_tag_name(tag))
        .filter(|n| {
            n.attribute(attr)
                .is_some_and(|v| v.eq_ignore_ascii_case(value))
        })
        .count()
}

fn hex(c: plotters::style::RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

#[test]
fn paths_example_draws_every_optimizer_on_every_surface() {
    let out = scratch("paths");
    let options = paths::Options {
        out: out.clone(),
        steps: 300,
        adamw: true,
        ..Default::default()
    };
    paths::run(&options).expect("the paths example runs");

    for surface in Surface::ALL {
        let svg = read_svg(&out.join(format!("paths-{}.svg", surface.name)));
        let labels = texts(&svg);
        for method in Method::ALL {
            let label = paths::plot::label(surface, method);
            assert!(
                labels.contains(&label),
                "{}: no legend `{label}`",
                surface.name
            );
            // The path and its legend sample.
            let lines = count(&svg, "polyline", "stroke", &hex(paths::plot::color(method)));
            assert!(
                lines >= 2,
                "{} {}: {lines} lines",
                surface.name,
                method.name()
            );
        }
        assert!(labels.iter().any(|t| t.starts_with("start (")));
        assert!(labels.iter().any(|t| t.contains("minim")));
        // A minimum is a cross of two lines, and the legend has one more cross.
        let crosses = count(&svg, "line", "stroke", "#000000") / 2;
        assert_eq!(crosses, surface.minima.len() + 1, "{}", surface.name);
    }
}

#[test]
fn paths_command_line() {
    let parse = |args: &[&str]| paths::parse_args(args.iter().map(|s| s.to_string()));
    let o = parse(&[
        "--out", "x", "--steps", "7", "--noise", "0.5", "--seed", "3",
    ])
    .expect("valid")
    .expect("not --help");
    assert_eq!(
        (o.out, o.steps, o.noise.sigma, o.noise.seed),
        ("x".into(), 7, 0.5, 3)
    );
    assert!(parse(&["--help"]).expect("valid").is_none());
    assert!(parse(&["--noise", "-1"]).is_err());
    assert!(parse(&["--steps"]).is_err());
}

/// The GPU path of every method on every adapter, held to the CPU reference's.
fn gpu_paths(surface: &Surface, methods: &[Method]) -> Vec<(Method, Vec<[f32; 2]>)> {
    // on_every_adapter takes an Fn, hence the cell.
    let all = std::cell::RefCell::new(Vec::new());
    common::on_every_adapter(|ctx| {
        for &method in methods {
            let gpu = descent::gpu_path(ctx, surface, method, STEPS, NO_NOISE).expect("gpu path");
            let cpu = descent::cpu_path(surface, method, STEPS, NO_NOISE).expect("cpu path");
            let what = format!("{} {} on {}", surface.name, method.name(), ctx.describe());
            common::assert_many_steps_close(gpu.as_flattened(), cpu.as_flattened(), &what);
            all.borrow_mut().push((method, gpu));
        }
    });
    all.into_inner()
}

#[test]
fn rosenbrock_paths_reach_the_minimum() {
    let methods = [
        Method::Gd,
        Method::Momentum,
        Method::Sgd,
        Method::Nesterov,
        Method::Adam,
    ];
    for (method, path) in gpu_paths(&ROSENBROCK, &methods) {
        let end = *path.last().expect("non-empty");
        let (_, distance) = ROSENBROCK.nearest_minimum(end);
        if method == Method::Gd {
            // Plain GD is the slow one along the valley floor: far from done, but on its way.
            assert!(end[0] > 0.5 && distance < 0.5, "gd ends at {end:?}");
        } else {
            assert!(distance < 1e-2, "{} ends at {end:?}", method.name());
        }
    }
}

#[test]
fn himmelblau_paths_end_at_a_minimum() {
    let lower_left = HIMMELBLAU.minima[2];
    let upper_left = HIMMELBLAU.minima[1];
    for (method, path) in gpu_paths(&HIMMELBLAU, &Method::ALL) {
        let end = *path.last().expect("non-empty");
        let (minimum, distance) = HIMMELBLAU.nearest_minimum(end);
        // AdamW's decay pulls it a little towards the origin.
        let tolerance = if method == Method::AdamW { 1e-2 } else { 1e-4 };
        assert!(distance < tolerance, "{} ends at {end:?}", method.name());
        // The picture's point: from beside the maximum, Adam goes elsewhere.
        let expected = match method {
            Method::Adam | Method::AdamW => upper_left,
            _ => lower_left,
        };
        assert_eq!(minimum, expected, "{} ends at {end:?}", method.name());
    }
}

#[test]
fn gradient_noise_is_seeded() {
    let noise = |seed| Noise { sigma: 5.0, seed };
    let path = |seed| descent::cpu_path(&ROSENBROCK, Method::Adam, 50, noise(seed)).expect("path");
    assert_eq!(path(7), path(7));
    assert_ne!(path(7), path(8));
    assert_ne!(
        path(7),
        descent::cpu_path(&ROSENBROCK, Method::Adam, 50, NO_NOISE).unwrap()
    );
}

#[test]
fn train_loss_curves_have_every_optimizer() {
    let names = ["gd", "momentum", "sgd", "adam", "adamw"];
    let curve = |k: usize| -> Vec<(usize, f64, f64)> {
        (0..=10)
            .map(|e| {
                (
                    e,
                    0.8 / (1.0 + e as f64 * (k + 1) as f64),
                    0.7 / (1.0 + e as f64),
                )
            })
            .collect()
    };
    let curves: Vec<train_plot::Curves> = names
        .iter()
        .enumerate()
        .map(|(k, name)| train_plot::Curves {
            label: format!("{name}, lr 0.1"),
            gpu: curve(k),
            cpu: curve(k),
        })
        .collect();
    let file = scratch("train").join("nested/losses.svg");
    train_plot::draw(&file, &curves, "made-up losses").expect("drawn");

    let svg = read_svg(&file);
    let labels = texts(&svg);
    for name in names {
        let label = format!("{name}, lr 0.1 (GPU)");
        assert!(labels.contains(&label), "no legend `{label}`");
    }
    assert!(labels.contains(&"CPU reference (dashed)".to_owned()));
    assert!(labels.contains(&"train loss (MSE)".to_owned()));
    assert!(labels.contains(&"test loss (MSE)".to_owned()));
}

#[test]
fn bench_bandwidth_plot_has_every_optimizer() {
    let names = ["gd", "adam"];
    let points: Vec<bench_plot::Point> = names
        .iter()
        .flat_map(|name| {
            [4096, 262_144, 4_194_304].map(|n| bench_plot::Point {
                name: name.to_string(),
                elements: n,
                gpu_gbps: 1.0 + (n as f64).log10(),
                cpu_gbps: 40.0,
                copy_gbps: 2.0,
            })
        })
        .collect();
    let file = scratch("bench").join("report-bandwidth.svg");
    bench_plot::draw(&file, &points, "made-up adapter").expect("drawn");

    let svg = read_svg(&file);
    let labels = texts(&svg);
    for name in names {
        let label = format!("{name}: GPU (solid), CPU (dashed)");
        assert!(labels.contains(&label), "no legend `{label}`");
    }
    // A log axis labels powers of ten: 4,096 to 4,194,304 elements span 1e4 to 1e6.
    for decade in ["1e4", "1e5", "1e6"] {
        assert!(labels.iter().any(|t| t == decade), "no x label {decade}");
    }
}
