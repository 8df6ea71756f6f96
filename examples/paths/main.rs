//! Optimizer paths on classic 2-D test functions, drawn over their contour lines: every
//! optimizer of the crate descends Rosenbrock's valley and Himmelblau's four-minimum surface
//! from the same start, on the GPU, checked step for step against the CPU reference.
//!
//! ```text
//! cargo run --release --example paths
//! cargo run --release --example paths -- --noise 20 --out target/plots/noisy
//! ```
//!
//! Each path is two parameters in a `ParamSet`: the host computes the analytic gradient at
//! the current point, uploads it, steps, and reads the point back. The learning rates, chosen
//! per function so that every path is worth looking at, are explained in `surface.rs`.
//!
//! Everything here is public and refers to its siblings by relative paths, so that
//! `tests/plots.rs` can include this file as a module and run it in the test process.

pub mod contour;
pub mod descent;
pub mod plot;
pub mod surface;

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;

use wgpu_optim::Context;

use descent::{Method, Noise};
use surface::Surface;

const USAGE: &str = "\
Draws the paths of gd, momentum, sgd (with and without Nesterov) and adam on the Rosenbrock
and Himmelblau functions, computed on the GPU and checked against the CPU reference.

Usage: cargo run --release --example paths -- [options]

Options:
  --out <dir>      where paths-rosenbrock.svg and paths-himmelblau.svg go
                   (default target/plots)
  --steps <n>      steps of each optimizer (default 2000)
  --noise <sigma>  add Gaussian noise of this standard deviation to every gradient
                   component, as small batches would (default 0)
  --seed <n>       seed of the noise (default 1)
  --adamw          also draw adamw (weight decay 0.01; its path is close to adam's)
  --help           print this help

The learning rates differ per optimizer and function; they are printed with the results
and explained in examples/paths/surface.rs.
";

/// Largest coordinate difference allowed between a GPU path and the CPU reference's: about
/// a fiftieth of a pixel at the size drawn. The two agree to a few ULP per step (see
/// SPEC.md), but a long path may amplify that where the surface is steep.
const MAX_DEVIATION: f32 = 1e-4;

pub struct Options {
    pub out: PathBuf,
    pub steps: usize,
    pub noise: Noise,
    pub adamw: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            out: PathBuf::from("target/plots"),
            steps: 2000,
            noise: Noise {
                sigma: 0.0,
                seed: 1,
            },
            adamw: false,
        }
    }
}

/// Parses the command line; `Ok(None)` asks for the help text.
pub fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut o = Options::default();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        let invalid = |text: String| format!("invalid value `{text}` for {arg}; see --help");
        match arg.as_str() {
            "--help" | "-h" => return Ok(None),
            "--out" => o.out = PathBuf::from(value()?),
            "--steps" => {
                let text = value()?;
                o.steps = text.parse().map_err(|_| invalid(text))?;
            }
            "--noise" => {
                let text = value()?;
                o.noise.sigma = match text.parse::<f64>() {
                    Ok(s) if s.is_finite() && s >= 0.0 => s,
                    _ => return Err(invalid(text)),
                };
            }
            "--seed" => {
                let text = value()?;
                o.noise.seed = text.parse().map_err(|_| invalid(text))?;
            }
            "--adamw" => o.adamw = true,
            _ => return Err(format!("unknown option `{arg}`; see --help")),
        }
    }
    Ok(Some(o))
}

fn main() -> ExitCode {
    env_logger::init();
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Descends every surface with every optimizer, checks GPU against CPU, and draws the paths.
pub fn run(o: &Options) -> Result<(), Box<dyn Error>> {
    let ctx = Context::new()?;
    println!("adapter: {}", ctx.describe());
    std::fs::create_dir_all(&o.out)
        .map_err(|e| format!("cannot create {}: {e}", o.out.display()))?;
    let methods: Vec<Method> = Method::ALL
        .into_iter()
        .filter(|&m| o.adamw || m != Method::AdamW)
        .collect();
    let subtitle = match o.noise.sigma {
        0.0 => format!("{} steps", o.steps),
        sigma => format!("{} steps, gradient noise {sigma}", o.steps),
    };

    for surface in Surface::ALL {
        println!("\n{}", surface.title);
        println!(
            "{:<9} {:>6}  {:>21}  {:>10}  {:>15}  {:>13}",
            "optimizer", "lr", "end point", "f(end)", "to nearest min", "max |GPU-CPU|"
        );
        let mut paths = Vec::new();
        for &method in &methods {
            let gpu = descent::gpu_path(&ctx, surface, method, o.steps, o.noise)?;
            let cpu = descent::cpu_path(surface, method, o.steps, o.noise)?;
            let deviation = descent::max_deviation(&gpu, &cpu);
            let end = *gpu.last().expect("the path holds the start");
            let (_, distance) = surface.nearest_minimum(end);
            println!(
                "{:<9} {:>6}  ({:>9.5}, {:>9.5})  {:>10.3e}  {:>15.3e}  {:>13.2e}",
                method.name(),
                surface.lr(method),
                end[0],
                end[1],
                (surface.f)(end[0] as f64, end[1] as f64),
                distance,
                deviation
            );
            if deviation.is_nan() || deviation > MAX_DEVIATION {
                return Err(format!(
                    "{} on {}: GPU and CPU paths differ by {deviation:e}, more than {MAX_DEVIATION:e}",
                    method.name(),
                    surface.name
                )
                .into());
            }
            paths.push((method, gpu));
        }
        let file = o.out.join(format!("paths-{}.svg", surface.name));
        plot::draw(&file, surface, &paths, &subtitle)?;
        println!("written to {}", file.display());
    }
    Ok(())
}
