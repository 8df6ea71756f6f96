//! The benchmark report: every optimizer on the GPU against the CPU reference and against
//! the memory-bandwidth yardsticks, measured in one run on one machine.
//!
//! ```text
//! cargo run --release --example bench_report [-- --out report.md --max-size 67108864]
//! ```
//!
//! Beside the markdown goes a log-log plot of the bandwidth section, named after it:
//! `report.md` gets `report-bandwidth.svg`.
//!
//! GPU times come from timestamp queries where the adapter has them, else from the wall clock
//! around submit and wait. Effective bandwidth counts the bytes each optimizer must move per
//! element (GD 12, momentum and SGD with momentum 20, Adam and AdamW 28), divided by the time.

mod cpu_side;
mod plot;
mod policies;
mod sections;

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use wgpu_optim::measure::GpuTimer;
use wgpu_optim::Context;

/// Options of the command line.
struct Options {
    out: String,
    max_size: usize,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        out: "target/bench-report.md".to_owned(),
        max_size: 64 << 20,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--out" => o.out = value()?,
            "--max-size" => {
                o.max_size = value()?
                    .parse()
                    .map_err(|_| "--max-size takes a number of elements".to_owned())?
            }
            "--help" | "-h" => {
                return Err(
                    "usage: bench_report [--out FILE.md] [--max-size ELEMENTS]\n\
                     writes FILE.md (default target/bench-report.md) and FILE-bandwidth.svg"
                        .into(),
                )
            }
            other => return Err(format!("unknown option `{other}`; see --help")),
        }
    }
    Ok(o)
}

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::init();
    let o = parse_args()?;
    let ctx = Context::new()?;
    let timer = GpuTimer::new(&ctx);

    let mut report = String::new();
    writeln!(report, "# wgpu-optim benchmark report\n")?;
    writeln!(
        report,
        "- adapter: {} (driver {})",
        ctx.describe(),
        ctx.adapter_info().driver_info
    )?;
    writeln!(
        report,
        "- GPU time: {}",
        if timer.uses_timestamps() {
            "timestamp queries"
        } else {
            "wall clock around submit and wait"
        }
    )?;
    writeln!(
        report,
        "- CPU reference: {} threads\n",
        rayon::current_num_threads()
    )?;
    print!("{report}");

    let mut bench = sections::Bench {
        ctx: &ctx,
        timer: &timer,
        report,
        bandwidth_points: Vec::new(),
    };
    bench.bandwidth(o.max_size)?;
    bench.many_tensors()?;
    bench.per_tensor_dispatch()?;
    bench.record_time()?;
    bench.policies(o.max_size.min(4 << 20))?;
    bench.cpu_against_memcpy(o.max_size.min(16 << 20))?;
    bench.pytorch()?;

    if let Some(dir) = std::path::Path::new(&o.out).parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&o.out, &bench.report)?;
    println!("\nwritten to {}", o.out);
    let svg = plot_path(Path::new(&o.out));
    plot::draw(&svg, &bench.bandwidth_points, &ctx.describe())?;
    println!("bandwidth plot written to {}", svg.display());
    Ok(())
}

/// `dir/name.md` gives `dir/name-bandwidth.svg`.
fn plot_path(report: &Path) -> PathBuf {
    let stem = report
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bench-report".into());
    report.with_file_name(format!("{stem}-bandwidth.svg"))
}

/// Bytes per second as GB/s (10^9).
fn gbps(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / time.as_secs_f64() / 1e9
}

/// A duration in the unit that reads best.
fn show(time: Duration) -> String {
    let us = time.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.1} us")
    } else if us < 1e6 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}
