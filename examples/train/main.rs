//! Trains a small MLP regressor on the red wine quality data with each optimizer on the GPU,
//! runs the same training on the CPU reference from the same initial weights and batches,
//! and compares losses, parameters and wall time.
//!
//! ```text
//! cargo run --release --example train
//! cargo run --release --example train -- --optimizer gd --batch-size 2000 --epochs 300 --tol 0.04
//! cargo run --release --example train -- --optimizer adam --epochs 20 --save adam.safetensors
//! cargo run --release --example train -- --epochs 40 --resume adam.safetensors
//! ```
//!
//! `--save` writes the GPU side's parameters and optimizer state, with the epoch and the
//! options that decide the batches as notes; `--resume` loads that file into both sides and
//! trains on up to `--epochs`, counted from the start. The batch generator is replayed through
//! the epochs already trained, so the resumed GPU side takes the very steps of a run that never
//! stopped.
//!
//! Losses are mean squared errors in quality points squared: features are standardised with
//! the training split's mean and standard deviation, and the quality is centred on its
//! training mean (a model that always predicts that mean scores the target's variance, about
//! 0.65; a linear model about 0.42).
//!
//! The train and test loss curves of every run are drawn to `target/plots/train-losses.svg`
//! (`--plot` elsewhere, `--no-plot` not at all).

mod checkpoint;
mod cli;
mod cpu;
mod data;
mod gpu;
mod model;
mod plot;

use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use wgpu_optim::cpu as reference;
use wgpu_optim::{Context, Layout, Optimizer, ParamSet};

use crate::checkpoint::{Resume, Saving};
use crate::cli::{Kind, Options, USAGE};
use crate::cpu::CpuModel;
use crate::data::Rng;
use crate::gpu::GpuModel;
use crate::model::{mse, Model, Positions};

/// Share of the wines held out for testing.
const TEST_FRACTION: f64 = 0.2;

/// Streams of the seeded generator, so each purpose draws its own numbers.
const SPLIT_STREAM: u64 = 1;
const INIT_STREAM: u64 = 2;
const BATCH_STREAM: u64 = 3;

fn main() -> ExitCode {
    env_logger::init();
    let options = match cli::parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\nrun with --help for the options");
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

fn run(o: &Options) -> Result<(), Box<dyn Error>> {
    // Data.
    let text = std::fs::read_to_string(data::CSV_PATH)
        .map_err(|e| format!("cannot read {}: {e}", data::CSV_PATH))?;
    let table = data::parse(&text).map_err(|e| format!("{}: {e}", data::CSV_PATH))?;
    let split = data::split(&table, &mut Rng::new(o.seed, SPLIT_STREAM), TEST_FRACTION);
    let positions = Positions {
        n_train: split.train.len(),
        n_test: split.test.len(),
        batch_size: o.batch_size.min(split.train.len()),
    };

    // A checkpoint to resume from is checked against the options before any work.
    let resume = match &o.resume {
        Some(path) => Some(Resume::open(path, o)?),
        None => None,
    };

    // Model on both sides; the GPU set and passes serve every optimizer in turn.
    let ctx = Context::new()?;
    let layout = Model::layout(o.hidden)?;
    let model = Model::new(&layout)?;
    let set = ParamSet::new(&ctx, layout.clone())?;

    // The norm's pipelines are built on first use; build them now, outside any timing.
    set.grad_norm()?;
    let mut trainer = Trainer {
        gpu: GpuModel::new(&set, model, &split, &positions)?,
        cpu: CpuModel::new(model, &split, &positions),
        set,
        layout,
        model,
        positions,
        options: o,
    };
    if !o.quiet {
        println!("adapter: {}", ctx.describe());
        println!("data: {}", split.describe());
        println!(
            "model: 11 -> {} tanh -> 1, {} parameters; {} batches of {} per epoch\n",
            o.hidden,
            model.n_params(),
            trainer.positions.batches().len(),
            trainer.positions.batch_size
        );
    }

    let mut outcomes = Vec::new();
    match &resume {
        Some(resume) => outcomes.push(trainer.train(resume.kind, Some(resume))?),
        None => {
            for &kind in &o.kinds {
                outcomes.push(trainer.train(kind, None)?);
            }
        }
    }
    print_summary(&outcomes);
    if let Some(file) = &o.plot {
        draw_losses(file, &outcomes, o)?;
        if !o.quiet {
            println!("\nloss curves written to {}", file.display());
        }
    }
    Ok(())
}

/// Train and test loss curves of every run, GPU and CPU.
fn draw_losses(
    file: &std::path::Path,
    outcomes: &[Outcome],
    o: &Options,
) -> Result<(), Box<dyn Error>> {
    let points = |side: &Side| {
        side.curve
            .iter()
            .map(|&(epoch, e)| (epoch, e.train, e.test))
            .collect()
    };
    let curves: Vec<plot::Curves> = outcomes
        .iter()
        .map(|r| plot::Curves {
            label: format!("{}, lr {}", r.kind.name(), r.lr),
            gpu: points(&r.gpu),
            cpu: points(&r.cpu),
        })
        .collect();
    let title = format!(
        "Red wine quality, 11 -> {} tanh -> 1, batches of {}, seed {}",
        o.hidden, o.batch_size, o.seed
    );
    plot::draw(file, &curves, &title)
}

/// Losses and gradient norm of one side after an epoch.
#[derive(Clone, Copy, Debug)]
struct Eval {
    train: f64,
    test: f64,
    norm: f64,
}

/// Progress of one side (GPU or CPU) of a run.
#[derive(Debug, Default)]
struct Side {
    epochs: usize,
    last: Option<Eval>,
    done: bool,
    time: Duration,
    /// Every evaluation so far, by epoch, for the loss curves.
    curve: Vec<(usize, Eval)>,
}

impl Side {
    /// Records an evaluation; the side is done once its gradient norm is below `tol`.
    fn finish_epoch(&mut self, eval: Eval, tol: f64, started: Instant) {
        self.time += started.elapsed();
        self.last = Some(eval);
        self.curve.push((self.epochs, eval));
        self.done = eval.norm < tol;
    }
}

struct Outcome {
    kind: Kind,
    lr: f64,
    gpu: Side,
    cpu: Side,
    max_diff: f32,
}

struct Trainer<'a> {
    set: ParamSet,
    gpu: GpuModel,
    cpu: CpuModel,
    layout: Layout,
    model: Model,
    positions: Positions,
    options: &'a Options,
}

impl Trainer<'_> {
    /// Trains with `kind` on both sides in lockstep: each epoch's order is drawn once and fed
    /// to both, and each side's wall time is counted apart. With `resume`, both sides start
    /// from its file, after the epoch it was saved after.
    fn train(&mut self, kind: Kind, resume: Option<&Resume>) -> Result<Outcome, Box<dyn Error>> {
        let o = self.options;
        let mut cpu_set = reference::ParamSet::new(self.layout.clone());
        let (mut gpu_opt, mut cpu_opt, start) = match resume {
            // The file's parameters and optimizer state on both sides.
            Some(resume) => (
                resume.gpu(&self.set)?,
                resume.cpu(&mut cpu_set)?,
                resume.epoch,
            ),

            // Same initial weights on both sides, and fresh optimizer state.
            None => {
                for (name, values) in self
                    .model
                    .initial_weights(&mut Rng::new(o.seed, INIT_STREAM))
                {
                    self.set.upload(name, values.view())?;
                    cpu_set.upload(name, values.view())?;
                }
                let lr = o.lr.unwrap_or(kind.default_lr());
                let gpu = kind.gpu(lr, o.extras, &self.set)?;
                (gpu, kind.cpu(lr, o.extras, &cpu_set)?, 0)
            }
        };
        let lr = gpu_opt.learning_rate();
        let mut params = vec![0.0; self.layout.arena_len()];

        if !o.quiet {
            if start > 0 {
                println!("{} (lr {lr}), resumed after epoch {start}", kind.name());
            } else {
                println!("{} (lr {lr})", kind.name());
            }
            println!(
                "{:>5}  {:>9}  {:>9}  {:>9}  {:>9}  {:>10}  {:>10}",
                "epoch",
                "GPU train",
                "GPU test",
                "CPU train",
                "CPU test",
                "GPU |grad|",
                "CPU |grad|"
            );
        }
        let mut gpu = Side {
            epochs: start,
            ..Side::default()
        };
        let mut cpu = Side {
            epochs: start,
            ..Side::default()
        };
        let mut batch_rng = Rng::new(o.seed, BATCH_STREAM);
        // Orders of the epochs trained before the save, drawn again and dropped, so each
        // later epoch gets the order it has in a run that never stopped.
        for _ in 0..start {
            batch_rng.permutation(self.positions.n_train);
        }
        let mut saved = None;
        // A checkpoint saved after --epochs is still evaluated once.
        for epoch in start..=o.epochs.max(start) {
            let mut gpu_trained = false;
            // The first pass only evaluates the initial (or resumed) weights.
            let order = (epoch > start).then(|| batch_rng.permutation(self.positions.n_train));

            if !gpu.done {
                let started = Instant::now();
                if let Some(order) = &order {
                    self.gpu_epoch(gpu_opt.as_mut(), order)?;
                    gpu.epochs = epoch;
                }
                gpu.finish_epoch(self.gpu_eval()?, o.tol, started);
                gpu_trained = order.is_some();
            }
            if !cpu.done {
                let started = Instant::now();
                if let Some(order) = &order {
                    self.cpu_epoch(cpu_opt.as_mut(), &mut cpu_set, &mut params, order)?;
                    cpu.epochs = epoch;
                }
                cpu.finish_epoch(self.cpu_eval(&mut cpu_set, &mut params), o.tol, started);
            }

            if !o.quiet && (gpu.epochs == epoch || cpu.epochs == epoch) {
                print_row(epoch, &gpu, &cpu);
            }
            if gpu_trained && o.save_every.is_some_and(|n| epoch.is_multiple_of(n)) {
                saved = self.save(gpu_opt.as_ref(), epoch)?;
            }
            if gpu.done && cpu.done {
                break;
            }
        }
        if saved != Some(gpu.epochs) {
            self.save(gpu_opt.as_ref(), gpu.epochs)?;
        }

        // Parameters of both sides, tensor by tensor (the arena's padding is left out).
        let gpu_params = self.set.download_arena()?;
        let max_diff = self
            .layout
            .tensors()
            .iter()
            .flat_map(|t| t.range())
            .map(|i| (gpu_params[i] - cpu_set.params()[i]).abs())
            .fold(0.0f32, f32::max);
        if !o.quiet {
            for (name, side) in [("GPU", &gpu), ("CPU", &cpu)] {
                if side.done {
                    println!(
                        "{name} stopped after epoch {}: |grad| below {}",
                        side.epochs, o.tol
                    );
                }
            }
            println!(
                "GPU {:.2} s, CPU {:.2} s; \
                 largest |GPU - CPU| parameter difference {max_diff:.2e}\n",
                gpu.time.as_secs_f64(),
                cpu.time.as_secs_f64()
            );
        }
        Ok(Outcome {
            kind,
            lr,
            gpu,
            cpu,
            max_diff,
        })
    }

    /// Saves the GPU side after `epoch` if --save asks for it, and says which epoch it saved.
    fn save(&self, opt: &dyn Saving, epoch: usize) -> Result<Option<usize>, Box<dyn Error>> {
        let Some(path) = &self.options.save else {
            return Ok(None);
        };
        checkpoint::save(opt, &self.set, self.options, epoch, path)?;
        if !self.options.quiet {
            println!("saved epoch {epoch} to {}", path.display());
        }
        Ok(Some(epoch))
    }

    /// One epoch of minibatch steps, each recorded as forward, backward and the optimizer's
    /// update in one encoder, submitted as often as the optimizer's step ring requires.
    fn gpu_epoch(&self, opt: &mut dyn Optimizer, order: &[u32]) -> Result<(), Box<dyn Error>> {
        let ctx = self.set.context();
        self.gpu.set_order(order);
        let n_batches = self.positions.batches().len();
        let per_submit = opt.steps_in_flight().max(1);
        for first in (0..n_batches).step_by(per_submit) {
            // Record.
            let mut encoder = ctx.device().create_command_encoder(&Default::default());
            for batch in first..(first + per_submit).min(n_batches) {
                self.gpu.record_batch(&mut encoder, batch);
                opt.step(&mut encoder, &self.set)?;
            }

            // Submit; nothing is read back during training.
            ctx.queue().submit([encoder.finish()]);
        }
        Ok(())
    }

    /// Losses of both splits and the norm of the full-batch gradient, on the GPU.
    fn gpu_eval(&self) -> Result<Eval, Box<dyn Error>> {
        let ctx = self.set.context();
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        self.gpu.record_eval(&mut encoder, &self.set)?;
        ctx.queue().submit([encoder.finish()]);
        let (train, test) = self.gpu.read_losses()?;
        let norm = self.set.read_grad_norm()? as f64;
        Ok(Eval { train, test, norm })
    }

    /// The same epoch on the CPU reference.
    fn cpu_epoch(
        &mut self,
        opt: &mut dyn reference::Optimizer,
        set: &mut reference::ParamSet,
        params: &mut [f32],
        order: &[u32],
    ) -> Result<(), Box<dyn Error>> {
        self.cpu.set_order(order);
        for batch in self.positions.batches() {
            // The set lends its parameters and gradients one at a time, so the passes read a
            // copy of the parameters.
            params.copy_from_slice(arena(set.params()));
            self.cpu.forward(params, batch.clone());
            self.cpu.backward(params, arena_mut(set.grads_mut()), batch);
            opt.step(set)?;
        }
        Ok(())
    }

    /// The same evaluation on the CPU reference.
    fn cpu_eval(&mut self, set: &mut reference::ParamSet, params: &mut [f32]) -> Eval {
        params.copy_from_slice(arena(set.params()));
        self.cpu.forward(params, self.positions.eval());
        self.cpu
            .backward(params, arena_mut(set.grads_mut()), self.positions.train());
        Eval {
            train: mse(self.cpu.residuals(self.positions.train())),
            test: mse(self.cpu.residuals(self.positions.test())),
            norm: set.grad_norm(),
        }
    }
}

fn arena(a: &ndarray::Array1<f32>) -> &[f32] {
    a.as_slice().expect("the CPU arena is one contiguous array")
}

fn arena_mut(a: &mut ndarray::Array1<f32>) -> &mut [f32] {
    a.as_slice_mut()
        .expect("the CPU arena is one contiguous array")
}

fn print_row(epoch: usize, gpu: &Side, cpu: &Side) {
    // A side that stopped early shows blanks from then on.
    let cells = |side: &Side| match side.last.filter(|_| side.epochs == epoch) {
        Some(e) => (
            format!("{:9.5}", e.train),
            format!("{:9.5}", e.test),
            format!("{:10.3e}", e.norm),
        ),
        None => ("-".into(), "-".into(), "-".into()),
    };
    let (gtr, gte, gn) = cells(gpu);
    let (ctr, cte, cn) = cells(cpu);
    println!("{epoch:>5}  {gtr:>9}  {gte:>9}  {ctr:>9}  {cte:>9}  {gn:>10}  {cn:>10}");
}

fn print_summary(outcomes: &[Outcome]) {
    println!(
        "{:<9} {:>6} {:>7}  {:>9} {:>9}  {:>9} {:>9}  {:>10}  {:>13}  {:>6} {:>6}",
        "optimizer",
        "lr",
        "epochs",
        "GPU train",
        "GPU test",
        "CPU train",
        "CPU test",
        "GPU |grad|",
        "max |GPU-CPU|",
        "GPU s",
        "CPU s"
    );
    for r in outcomes {
        let (Some(g), Some(c)) = (r.gpu.last, r.cpu.last) else {
            continue;
        };
        // The sides stop on their own norms, so they could in principle stop apart.
        let epochs = if r.gpu.epochs == r.cpu.epochs {
            r.gpu.epochs.to_string()
        } else {
            format!("{}/{}", r.gpu.epochs, r.cpu.epochs)
        };
        println!(
            "{:<9} {:>6} {:>7}  {:>9.5} {:>9.5}  {:>9.5} {:>9.5}  \
             {:>10.3e}  {:>13.2e}  {:>6.2} {:>6.2}",
            r.kind.name(),
            r.lr,
            epochs,
            g.train,
            g.test,
            c.train,
            c.test,
            g.norm,
            r.max_diff,
            r.gpu.time.as_secs_f64(),
            r.cpu.time.as_secs_f64()
        );
    }
}
