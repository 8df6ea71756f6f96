//! The command line: options, their defaults and the optimizers they name.

use std::path::PathBuf;

use wgpu_optim::cpu as reference;
use wgpu_optim::{
    AdamConfig, AdamWConfig, GdConfig, GradPolicy, MomentumConfig, ParamSet, SgdConfig,
};

use crate::checkpoint::Saving;

pub const USAGE: &str = "\
Trains a one-hidden-layer MLP on the red wine quality data with GPU optimizers and the CPU
reference, and compares them.

Usage: cargo run --release --example train -- [options]

Options:
  --optimizer <name>  gd, momentum, sgd, adam or adamw (default: all five, then a
                      comparison); sgd is torch.optim.SGD, momentum the exponential average
  --lr <f>            learning rate (default: gd 0.1, momentum 0.1, sgd 0.01, adam 0.001,
                      adamw 0.001)
  --momentum <f>      sgd's momentum (default 0.9; 0 keeps no buffer); momentum's beta
                      (default 0.9)
  --nesterov          sgd with Nesterov momentum
  --weight-decay <f>  sgd and adam (L2, default 0), adamw (decoupled, default 0.01)
  --amsgrad           adam and adamw with AMSGrad
  --clip <f>          clip each step's gradients to this global L2 norm, on the device
  --epochs <n>        passes over the training split (default 40)
  --batch-size <n>    minibatch size (default 32); at least the training size (1279)
                      gives full-batch gradient descent
  --seed <n>          seed of the split, the initial weights and the batches (default 42)
  --hidden <n>        hidden units, 1 to 1024 (default 32)
  --tol <f>           stop once the full-batch gradient norm falls below this (default 0:
                      never)
  --save <path>       save the GPU side's parameters and optimizer state to this
                      safetensors file at the end (needs --optimizer unless resuming)
  --save-every <n>    also save after every n-th epoch (needs --save)
  --resume <path>     start from a file written by --save: the optimizer and its
                      hyperparameters come from the file, into both the GPU and the CPU
                      side, and training goes on from the epoch it was saved after up to
                      --epochs, which counts from the start of the first run. Give the
                      same --seed, --batch-size and --hidden as the run that saved: the
                      batches are then the same as those of an uninterrupted run
  --plot <file.svg>   where the loss curves go (default target/plots/train-losses.svg):
                      train and test loss per epoch of every optimizer, GPU solid, CPU
                      reference dashed
  --no-plot           write no loss curves
  --quiet             print the final table only
  --help              print this help
";

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Gd,
    Momentum,
    Sgd,
    Adam,
    AdamW,
}

/// Hyperparameters besides the learning rate, each `None` for the optimizer's default.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extras {
    pub momentum: Option<f64>,
    pub nesterov: bool,
    pub weight_decay: Option<f64>,
    pub amsgrad: bool,
    pub clip: Option<f64>,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Gd, Kind::Momentum, Kind::Sgd, Kind::Adam, Kind::AdamW];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Gd => "gd",
            Kind::Momentum => "momentum",
            Kind::Sgd => "sgd",
            Kind::Adam => "adam",
            Kind::AdamW => "adamw",
        }
    }

    /// Rates at which the test loss falls well below the linear model's (about 0.42) within
    /// the default epochs and batch size. Adam's is PyTorch's default: faster rates overfit
    /// and, being chaotic, let the GPU and CPU runs drift apart from their last-bit
    /// differences. SGD's momentum of 0.9 multiplies its steps by up to ten, hence 0.01.
    pub fn default_lr(self) -> f64 {
        match self {
            Kind::Gd | Kind::Momentum => 0.1,
            Kind::Sgd => 0.01,
            Kind::Adam | Kind::AdamW => 0.001,
        }
    }

    fn sgd(x: Extras) -> SgdConfig {
        SgdConfig {
            momentum: x.momentum.unwrap_or(0.9),
            nesterov: x.nesterov,
            weight_decay: x.weight_decay.unwrap_or(0.0),
            ..Default::default()
        }
    }

    fn momentum(x: Extras) -> MomentumConfig {
        MomentumConfig {
            beta: x.momentum.unwrap_or(0.9),
            ..Default::default()
        }
    }

    fn adam(x: Extras) -> AdamConfig {
        AdamConfig {
            weight_decay: x.weight_decay.unwrap_or(0.0),
            amsgrad: x.amsgrad,
            ..Default::default()
        }
    }

    fn adamw(x: Extras) -> AdamWConfig {
        let defaults = AdamWConfig::default();
        AdamWConfig {
            weight_decay: x.weight_decay.unwrap_or(defaults.weight_decay),
            amsgrad: x.amsgrad,
            ..defaults
        }
    }

    /// The GPU optimizer with the crate's defaults apart from `lr` and `extras`.
    pub fn gpu(
        self,
        lr: f64,
        extras: Extras,
        set: &ParamSet,
    ) -> wgpu_optim::Result<Box<dyn Saving>> {
        let mut opt: Box<dyn Saving> = match self {
            Kind::Gd => Box::new(GdConfig::default().init(set)?),
            Kind::Momentum => Box::new(Self::momentum(extras).init(set)?),
            Kind::Sgd => Box::new(Self::sgd(extras).init(set)?),
            Kind::Adam => Box::new(Self::adam(extras).init(set)?),
            Kind::AdamW => Box::new(Self::adamw(extras).init(set)?),
        };
        opt.set_learning_rate(lr)?;
        opt.set_grad_policy(set, extras.policy())?;
        Ok(opt)
    }

    /// The same optimizer on the CPU reference.
    pub fn cpu(
        self,
        lr: f64,
        extras: Extras,
        set: &reference::ParamSet,
    ) -> wgpu_optim::Result<Box<dyn reference::Optimizer>> {
        let mut opt: Box<dyn reference::Optimizer> = match self {
            Kind::Gd => Box::new(reference::Gd::new(set, GdConfig::default())?),
            Kind::Momentum => Box::new(reference::Momentum::new(set, Self::momentum(extras))?),
            Kind::Sgd => Box::new(reference::Sgd::new(set, Self::sgd(extras))?),
            Kind::Adam => Box::new(reference::Adam::new(set, Self::adam(extras))?),
            Kind::AdamW => Box::new(reference::AdamW::new(set, Self::adamw(extras))?),
        };
        opt.set_learning_rate(lr)?;
        opt.set_grad_policy(extras.policy())?;
        Ok(opt)
    }
}

impl Extras {
    /// Clipping to a global gradient norm when `--clip` asks for it.
    fn policy(&self) -> GradPolicy {
        GradPolicy {
            max_norm: self.clip,
            ..Default::default()
        }
    }
}

#[derive(Debug)]
pub struct Options {
    pub kinds: Vec<Kind>,
    pub lr: Option<f64>,
    pub extras: Extras,
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub hidden: usize,
    pub tol: f64,
    pub save: Option<PathBuf>,
    pub save_every: Option<usize>,
    pub resume: Option<PathBuf>,
    pub quiet: bool,
    /// Where the loss curves are drawn, if anywhere.
    pub plot: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            kinds: Kind::ALL.to_vec(),
            lr: None,
            extras: Extras::default(),
            epochs: 40,
            batch_size: 32,
            seed: 42,
            hidden: 32,
            tol: 0.0,
            save: None,
            save_every: None,
            resume: None,
            quiet: false,
            plot: Some(PathBuf::from("target/plots/train-losses.svg")),
        }
    }
}

/// Parses the command line; `Ok(None)` asks for the help text.
pub fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut o = Options::default();
    while let Some(arg) = args.next() {
        // Both `--lr 0.1` and `--lr=0.1`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--help" | "-h" => return Ok(None),
            "--quiet" | "-q" => o.quiet = true,
            "--optimizer" => {
                let name = value()?;
                let kind = Kind::parse(&name).ok_or_else(|| {
                    format!("unknown optimizer `{name}`; expected gd, momentum, sgd, adam or adamw")
                })?;
                o.kinds = vec![kind];
            }
            "--lr" => {
                o.lr = Some(number(&flag, &value()?, |lr: &f64| {
                    lr.is_finite() && *lr >= 0.0
                })?)
            }
            "--momentum" => {
                o.extras.momentum =
                    Some(number(&flag, &value()?, |m: &f64| (0.0..1.0).contains(m))?)
            }
            "--nesterov" => o.extras.nesterov = true,
            "--weight-decay" => {
                o.extras.weight_decay = Some(number(&flag, &value()?, |w: &f64| {
                    w.is_finite() && *w >= 0.0
                })?)
            }
            "--amsgrad" => o.extras.amsgrad = true,
            "--clip" => {
                o.extras.clip = Some(number(&flag, &value()?, |m: &f64| {
                    m.is_finite() && *m > 0.0
                })?)
            }
            "--plot" => o.plot = Some(PathBuf::from(value()?)),
            "--no-plot" => o.plot = None,
            "--epochs" => o.epochs = number(&flag, &value()?, |_| true)?,
            "--batch-size" => o.batch_size = number(&flag, &value()?, |&n| n > 0)?,
            "--seed" => o.seed = number(&flag, &value()?, |_| true)?,
            "--hidden" => o.hidden = number(&flag, &value()?, |&n| (1..=1024).contains(&n))?,
            "--tol" => o.tol = number(&flag, &value()?, |t: &f64| t.is_finite() && *t >= 0.0)?,
            "--save" => o.save = Some(PathBuf::from(value()?)),
            "--save-every" => o.save_every = Some(number(&flag, &value()?, |&n| n > 0)?),
            "--resume" => o.resume = Some(PathBuf::from(value()?)),
            _ => return Err(format!("unknown option `{arg}`")),
        }
    }
    check_checkpoint_options(&o)?;
    Ok(Some(o))
}

/// Refuses combinations of --save, --save-every and --resume that could not do what they say.
fn check_checkpoint_options(o: &Options) -> Result<(), String> {
    if o.save_every.is_some() && o.save.is_none() {
        return Err("--save-every needs --save".into());
    }
    if o.save.is_some() && o.resume.is_none() && o.kinds.len() != 1 {
        return Err("--save needs --optimizer: a checkpoint holds one optimizer".into());
    }
    let x = &o.extras;
    let tuned = o.lr.is_some()
        || x.momentum.is_some()
        || x.nesterov
        || x.weight_decay.is_some()
        || x.amsgrad;
    if o.resume.is_some() && tuned {
        return Err(
            "--resume takes the optimizer's hyperparameters from the checkpoint; \
             drop --lr, --momentum, --nesterov, --weight-decay and --amsgrad"
                .into(),
        );
    }
    Ok(())
}

/// Parses `text` as the value of `flag` and checks it with `valid`.
fn number<T: std::str::FromStr>(
    flag: &str,
    text: &str,
    valid: impl Fn(&T) -> bool,
) -> Result<T, String> {
    match text.parse::<T>() {
        Ok(v) if valid(&v) => Ok(v),
        _ => Err(format!("invalid value `{text}` for {flag}; see --help")),
    }
}
