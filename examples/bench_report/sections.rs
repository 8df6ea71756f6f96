//! The sections of the report, each measured and appended as a markdown table.

use std::error::Error;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use ndarray::{ArrayD, IxDyn};
use wgpu_optim::measure::{CopyKernel, GpuTimer};
use wgpu_optim::{
    cpu, AdamConfig, AdamWConfig, Context, GdConfig, Layout, MomentumConfig, Optimizer, ParamSet,
    SgdConfig,
};

use crate::{cpu_side, plot};
use crate::{gbps, show};

type Res<T = ()> = Result<T, Box<dyn Error>>;

/// The optimizers of the report, each with the bytes it moves per element.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Gd,
    Momentum,
    Sgd,
    Adam,
    AdamW,
}

impl Kind {
    const ALL: [Kind; 5] = [Kind::Gd, Kind::Momentum, Kind::Sgd, Kind::Adam, Kind::AdamW];

    fn name(self) -> &'static str {
        match self {
            Kind::Gd => "gd",
            Kind::Momentum => "momentum",
            Kind::Sgd => "sgd (momentum 0.9)",
            Kind::Adam => "adam",
            Kind::AdamW => "adamw",
        }
    }

    /// Reads of p, g and state plus writes of p and state, 4 bytes each.
    fn bytes_per_element(self) -> u64 {
        match self {
            Kind::Gd => 12,
            Kind::Momentum | Kind::Sgd => 20,
            Kind::Adam | Kind::AdamW => 28,
        }
    }

    fn sgd() -> SgdConfig {
        SgdConfig {
            momentum: 0.9,
            ..Default::default()
        }
    }

    fn gpu(self, set: &ParamSet) -> wgpu_optim::Result<Box<dyn Optimizer>> {
        Ok(match self {
            Kind::Gd => Box::new(GdConfig::default().init(set)?),
            Kind::Momentum => Box::new(MomentumConfig::default().init(set)?),
            Kind::Sgd => Box::new(Self::sgd().init(set)?),
            Kind::Adam => Box::new(AdamConfig::default().init(set)?),
            Kind::AdamW => Box::new(AdamWConfig::default().init(set)?),
        })
    }

    fn cpu(self, set: &cpu::ParamSet) -> wgpu_optim::Result<Box<dyn cpu::Optimizer>> {
        Ok(match self {
            Kind::Gd => Box::new(cpu::Gd::new(set, GdConfig::default())?),
            Kind::Momentum => Box::new(cpu::Momentum::new(set, MomentumConfig::default())?),
            Kind::Sgd => Box::new(cpu::Sgd::new(set, Self::sgd())?),
            Kind::Adam => Box::new(cpu::Adam::new(set, AdamConfig::default())?),
            Kind::AdamW => Box::new(cpu::AdamW::new(set, AdamWConfig::default())?),
        })
    }
}

/// `count` tensors of `len` elements.
fn layout(count: usize, len: usize) -> Res<Layout> {
    Ok((0..count)
        .fold(Layout::builder(), |b, i| b.tensor(format!("t{i}"), &[len]))
        .build()?)
}

/// Small gradients everywhere, so the arithmetic meets ordinary numbers.
fn fill_grads(set: &ParamSet) -> Res {
    for t in set.layout().tensors() {
        set.upload_grad(t.name(), ArrayD::from_elem(IxDyn(t.shape()), 1e-3).view())?;
    }
    Ok(())
}

pub struct Bench<'a> {
    pub ctx: &'a Context,
    pub timer: &'a GpuTimer,
    pub report: String,
    /// The bandwidth section's figures, for the plot.
    pub bandwidth_points: Vec<plot::Point>,
}

impl Bench<'_> {
    /// Appends `text` to the report and prints it.
    pub(crate) fn emit(&mut self, text: &str) {
        print!("{text}");
        self.report.push_str(text);
    }

    /// GPU time per step of `opt` on `set`.
    pub(crate) fn gpu_step(&self, opt: &mut dyn Optimizer, set: &ParamSet) -> Res<Duration> {
        let per_submit = opt.steps_in_flight();
        let one = self.timer.time(self.ctx, 1, 1, |e| opt.step(e, set))?;
        let iters = cpu_side::calibrate(one);
        Ok(self
            .timer
            .time(self.ctx, iters, per_submit, |e| opt.step(e, set))?)
    }

    /// GPU time per copy of the copy kernel.
    fn copy(&self, kernel: &CopyKernel) -> Res<Duration> {
        let one = self.timer.time(self.ctx, 1, 1, |e| {
            kernel.record(e);
            Ok(())
        })?;
        let iters = cpu_side::calibrate(one);
        Ok(self.timer.time(self.ctx, iters, 16, |e| {
            kernel.record(e);
            Ok(())
        })?)
    }

    /// Effective bandwidth of every optimizer against the copy kernel and the CPU reference.
    pub fn bandwidth(&mut self, max_size: usize) -> Res {
        let sizes: Vec<usize> = [4 << 10, 256 << 10, 4 << 20, 16 << 20, 64 << 20]
            .into_iter()
            .filter(|&n| n <= max_size)
            .collect();
        let binding_elements =
            (self.ctx.limits().max_storage_buffer_binding_size / 4) as usize / 4 * 4;
        self.emit("## Effective bandwidth, one tensor\n\n");
        self.emit(
            "Copy: a plain WGSL copy kernel moving the same bytes (up to one storage binding) \
             on the same adapter. GB/s are 10^9 bytes per second.\n\n",
        );
        for kind in Kind::ALL {
            let mut table = format!(
                "### {} ({} bytes per element)\n\n\
                 | elements | GPU step | GPU GB/s | copy GB/s | GPU / copy | CPU step | CPU GB/s | GPU speed-up |\n\
                 | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
                kind.name(),
                kind.bytes_per_element()
            );
            for &n in &sizes {
                let bytes = kind.bytes_per_element() * n as u64;

                // GPU.
                let set = ParamSet::new(self.ctx, layout(1, n)?)?;
                fill_grads(&set)?;
                let mut opt = kind.gpu(&set)?;
                let gpu = self.gpu_step(opt.as_mut(), &set)?;
                drop((opt, set));

                // Copy kernel moving the same bytes, or one binding's worth.
                let copy_len = ((bytes / 8) as usize)
                    .next_multiple_of(4)
                    .min(binding_elements);
                let copy = CopyKernel::new(self.ctx, copy_len)?;
                let copy_gbps = gbps(copy.bytes(), self.copy(&copy)?);
                drop(copy);

                // CPU reference.
                let mut host = cpu::ParamSet::new(layout(1, n)?);
                host.grads_mut().fill(1e-3);
                let mut reference = kind.cpu(&host)?;
                let cpu = cpu_side::time(|| {
                    reference.step(&mut host).expect("cpu step");
                });

                let gpu_gbps = gbps(bytes, gpu);
                self.bandwidth_points.push(plot::Point {
                    name: kind.name().to_owned(),
                    elements: n,
                    gpu_gbps,
                    cpu_gbps: gbps(bytes, cpu),
                    copy_gbps,
                });
                writeln!(
                    table,
                    "| {n} | {} | {gpu_gbps:.2} | {copy_gbps:.2} | {:.2} | {} | {:.2} | {:.2} |",
                    show(gpu),
                    gpu_gbps / copy_gbps,
                    show(cpu),
                    gbps(bytes, cpu),
                    cpu.as_secs_f64() / gpu.as_secs_f64()
                )?;
            }
            table.push('\n');
            self.emit(&table);
        }
        Ok(())
    }

    /// Many small tensors against one large tensor of the same total, Adam.
    pub fn many_tensors(&mut self) -> Res {
        let mut table = String::from(
            "## Many tensors against one of the same total (Adam)\n\n\
             | tensors | GPU step | one tensor | many / one | CPU step | CPU one tensor | CPU many / one |\n\
             | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        );
        for (count, len) in [(1000, 4096), (10_000, 256)] {
            let mut times = Vec::new();
            for (c, l) in [(count, len), (1, count * len)] {
                let set = ParamSet::new(self.ctx, layout(c, l)?)?;
                fill_grads(&set)?;
                let mut opt = Kind::Adam.gpu(&set)?;
                let gpu = self.gpu_step(opt.as_mut(), &set)?;
                let mut host = cpu::ParamSet::new(layout(c, l)?);
                host.grads_mut().fill(1e-3);
                let mut reference = Kind::Adam.cpu(&host)?;
                let cpu = cpu_side::time(|| reference.step(&mut host).expect("cpu step"));
                times.push((gpu, cpu));
            }
            let ((gm, cm), (g1, c1)) = (times[0], times[1]);
            writeln!(
                table,
                "| {count} x {len} | {} | {} | {:.2} | {} | {} | {:.2} |",
                show(gm),
                show(g1),
                gm.as_secs_f64() / g1.as_secs_f64(),
                show(cm),
                show(c1),
                cm.as_secs_f64() / c1.as_secs_f64()
            )?;
        }
        table.push('\n');
        self.emit(&table);
        Ok(())
    }

    /// One dispatch per tensor against the fused pass, Adam.
    pub fn per_tensor_dispatch(&mut self) -> Res {
        let mut table = String::from(
            "## One dispatch per tensor against the fused pass (Adam)\n\n\
             | tensors | fused | dispatch per tensor | per-tensor / fused |\n\
             | --- | ---: | ---: | ---: |\n",
        );
        for (count, len) in [(1000, 4096), (10_000, 256)] {
            let fused = ParamSet::new(self.ctx, layout(count, len)?)?;
            let apart = ParamSet::new_with_dispatch_per_tensor(self.ctx, layout(count, len)?)?;
            let mut times = Vec::new();
            for set in [&fused, &apart] {
                fill_grads(set)?;
                let mut opt = Kind::Adam.gpu(set)?;
                times.push(self.gpu_step(opt.as_mut(), set)?);
            }
            writeln!(
                table,
                "| {count} x {len} | {} | {} | {:.1} |",
                show(times[0]),
                show(times[1]),
                times[1].as_secs_f64() / times[0].as_secs_f64()
            )?;
        }
        table.push('\n');
        self.emit(&table);
        Ok(())
    }

    /// Host time to record one step (no submit), Adam.
    pub fn record_time(&mut self) -> Res {
        let mut table = String::from(
            "## Host time to record one step (Adam, no submit)\n\n\
             | tensors | record |\n| --- | ---: |\n",
        );
        for (count, len) in [(1000, 4096), (10_000, 256)] {
            let set = ParamSet::new(self.ctx, layout(count, len)?)?;
            let mut opt = Kind::Adam.gpu(&set)?;
            let steps = opt.steps_in_flight();
            let mut encoder = self
                .ctx
                .device()
                .create_command_encoder(&Default::default());
            opt.step(&mut encoder, &set)?;
            let t = Instant::now();
            for _ in 1..steps {
                opt.step(&mut encoder, &set)?;
            }
            let per_step = t.elapsed() / (steps - 1).max(1) as u32;
            // Submitted, so the queued step values are consumed rather than left pending.
            self.ctx.queue().submit([encoder.finish()]);
            self.ctx.wait_idle()?;
            writeln!(table, "| {count} x {len} | {} |", show(per_step))?;
        }
        table.push('\n');
        self.emit(&table);
        Ok(())
    }

    /// The CPU reference's bandwidth against a threaded memory copy moving the same bytes.
    pub fn cpu_against_memcpy(&mut self, n: usize) -> Res {
        let mut table = format!(
            "## CPU reference against a threaded memory copy ({n} elements)\n\n\
             | optimizer | CPU step | CPU GB/s | memcpy GB/s | CPU / memcpy |\n\
             | --- | ---: | ---: | ---: | ---: |\n"
        );
        for kind in Kind::ALL {
            let bytes = kind.bytes_per_element() * n as u64;
            let mut host = cpu::ParamSet::new(layout(1, n)?);
            host.grads_mut().fill(1e-3);
            let mut reference = kind.cpu(&host)?;
            let step = cpu_side::time(|| reference.step(&mut host).expect("cpu step"));
            // memcpy reads and writes each f32, so this many move the same bytes.
            let copy = cpu_side::threaded_memcpy((bytes / 8) as usize);
            let (ours, copy) = (gbps(bytes, step), gbps(bytes, copy));
            writeln!(
                table,
                "| {} | {} | {ours:.2} | {copy:.2} | {:.2} |",
                kind.name(),
                show(step),
                ours / copy
            )?;
        }
        table.push('\n');
        self.emit(&table);
        Ok(())
    }

    /// PyTorch's fused CPU Adam on 16,777,216 parameters, when a Python with torch is found
    /// (`WGPU_OPTIM_PYTHON`, else `python3`).
    pub fn pytorch(&mut self) -> Res {
        const N: usize = 16 << 20;
        let python = std::env::var("WGPU_OPTIM_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = format!(
            "import os, time, torch\n\
             torch.set_num_threads({threads})\n\
             p = torch.zeros({N}, requires_grad=True)\n\
             p.grad = torch.full(({N},), 1e-3)\n\
             opt = torch.optim.Adam([p], lr=1e-3, fused=True)\n\
             for _ in range(3): opt.step()\n\
             t = time.perf_counter()\n\
             for _ in range(20): opt.step()\n\
             print(torch.__version__, (time.perf_counter() - t) / 20)\n",
            threads = rayon::current_num_threads()
        );
        let output = std::process::Command::new(&python)
            .args(["-c", &script])
            .output();
        let mut text = String::from("## PyTorch's fused CPU Adam, 16,777,216 parameters\n\n");
        let measured = output
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok());
        let Some(line) = measured else {
            text.push_str("PyTorch not found; set WGPU_OPTIM_PYTHON to a Python with torch.\n");
            self.emit(&text);
            return Ok(());
        };
        let mut fields = line.split_whitespace();
        let version = fields.next().unwrap_or("?").to_owned();
        let seconds: f64 = fields
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(f64::NAN);
        let torch = Duration::from_secs_f64(seconds);

        let mut host = cpu::ParamSet::new(layout(1, N)?);
        host.grads_mut().fill(1e-3);
        let mut reference = Kind::Adam.cpu(&host)?;
        let ours = cpu_side::time(|| reference.step(&mut host).expect("cpu step"));
        let bytes = 28 * N as u64;
        writeln!(
            text,
            "| | step | GB/s |\n| --- | ---: | ---: |\n\
             | PyTorch {version} `Adam(fused=True)` | {} | {:.2} |\n\
             | wgpu-optim CPU reference | {} | {:.2} |\n",
            show(torch),
            gbps(bytes, torch),
            show(ours),
            gbps(bytes, ours)
        )?;
        self.emit(&text);
        Ok(())
    }
}
