//! What every optimizer offers, the one fused driver they all share, and the bookkeeping
//! common to them: validation and per-tensor step counts.

use crate::kernel::{state_buffers, StepKernel, StepUniform, TensorStep};
use crate::{Error, ParamSet, Result};

/// An optimizer whose state lives on the GPU beside a [`ParamSet`].
pub trait Optimizer {
    /// Records one fused update of every tensor of `set` that has a gradient into `encoder`.
    ///
    /// Nothing is submitted and nothing is read back. Each recorded step keeps the
    /// hyperparameters in force when it was recorded; up to [`Optimizer::steps_in_flight`]
    /// steps may be recorded before one submit.
    fn step(&mut self, encoder: &mut wgpu::CommandEncoder, set: &ParamSet) -> Result<()>;

    /// Records one step into a fresh encoder and submits it.
    fn step_submit(&mut self, set: &ParamSet) -> Result<()> {
        let ctx = set.context();
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        self.step(&mut encoder, set)?;
        ctx.queue().submit([encoder.finish()]);
        Ok(())
    }

    /// The learning rate used by the next recorded step.
    fn learning_rate(&self) -> f64;

    /// Changes the learning rate for the steps recorded from now on.
    fn set_learning_rate(&mut self, lr: f64) -> Result<()>;

    /// How many updates each tensor has received (recorded, not necessarily executed).
    fn step_counts(&self) -> &[u64];

    /// Steps that may be recorded before a submit; past that, a later step would overwrite
    /// the values of one not yet executed.
    fn steps_in_flight(&self) -> usize;

    /// Bytes of optimizer state held on the device.
    fn state_bytes(&self) -> u64;
}

/// An update rule: what a config struct tells the shared drivers about its optimizer.
///
/// Implemented by the config structs ([`GdConfig`](crate::GdConfig),
/// [`MomentumConfig`](crate::MomentumConfig), [`SgdConfig`](crate::SgdConfig),
/// [`AdamConfig`](crate::AdamConfig), [`AdamWConfig`](crate::AdamWConfig)); the GPU driver is [`Fused`] and the CPU one
/// [`cpu::Reference`](crate::cpu::Reference).
pub trait Rule: Copy + std::fmt::Debug + Send + Sync + 'static {
    /// Short name, as in the shader file name.
    const NAME: &'static str;

    /// WGSL source, shared header included.
    const SHADER: &'static str;

    /// State bindings the shader declares (5, 6, ...); those past [`Rule::state`] are bound
    /// to a small placeholder buffer.
    const STATE_BINDINGS: usize;

    /// The hyperparameter that decides which state exists, named for error messages.
    const STATE_FIELD: &'static str = "";

    /// Names of the per-parameter state arenas this config needs, in binding order
    /// (PyTorch's vocabulary).
    fn state(&self) -> &'static [&'static str];

    /// Checks every field.
    fn validate(&self) -> Result<()>;

    /// The learning rate.
    fn lr(&self) -> f64;

    /// Sets the learning rate (already validated).
    fn set_lr(&mut self, lr: f64);

    /// Values of the kernel's uniform for one step.
    fn uniform(&self) -> StepUniform;

    /// Per-tensor factors for a tensor's step `t` (1 on its first update); by default none.
    fn tensor_factors(&self, _t: u64) -> (f32, f32) {
        (0.0, 1.0)
    }
}

/// The GPU driver of every optimizer: state buffers, kernel and step counts for one rule.
///
/// Use it through its aliases [`Gd`](crate::Gd), [`Momentum`](crate::Momentum),
/// [`Sgd`](crate::Sgd), [`Adam`](crate::Adam) and [`AdamW`](crate::AdamW).
#[derive(Debug)]
pub struct Fused<R: Rule> {
    pub(crate) config: R,
    // One arena per state name, each one buffer per arena buffer of the set.
    pub(crate) state: Vec<Vec<wgpu::Buffer>>,
    kernel: StepKernel,
    pub(crate) steps: Vec<u64>,
    table: Vec<TensorStep>,
}

impl<R: Rule> Fused<R> {
    /// Validates `config`, allocates zeroed state and compiles the kernel for `set`.
    pub fn new(set: &ParamSet, config: R) -> Result<Self> {
        config.validate()?;
        let state = config
            .state()
            .iter()
            .map(|name| state_buffers(set, name))
            .collect::<Result<Vec<_>>>()?;
        let bound: Vec<Option<&[wgpu::Buffer]>> = (0..R::STATE_BINDINGS)
            .map(|i| state.get(i).map(Vec::as_slice))
            .collect();
        let kernel = StepKernel::new(set, R::NAME, R::SHADER, &bound)?;
        Ok(Self {
            config,
            state,
            kernel,
            steps: vec![0; set.layout().tensors().len()],
            table: Vec::new(),
        })
    }

    /// The hyperparameters in force.
    pub fn config(&self) -> &R {
        &self.config
    }

    /// Replaces every hyperparameter for the steps recorded from now on; state and step
    /// counts are kept. An invalid config, or one that needs other state (turning SGD's
    /// momentum or Adam's AMSGrad on or off), is refused and changes nothing.
    pub fn set_config(&mut self, config: R) -> Result<()> {
        check_config_change(&self.config, &config)?;
        self.config = config;
        Ok(())
    }

    /// Fails with [`Error::WrongParamSet`] unless `set` is the one the optimizer was built for.
    pub(crate) fn check_set(&self, set: &ParamSet) -> Result<()> {
        self.kernel.check_set(set)
    }

    /// The state arena called `name` (one of [`Rule::state`]): one buffer per
    /// [`ParamSet::arena_buffers`] entry, laid out like it.
    pub fn state_buffers(&self, name: &str) -> Option<&[wgpu::Buffer]> {
        self.config
            .state()
            .iter()
            .position(|&s| s == name)
            .map(|i| self.state[i].as_slice())
    }
}

impl<R: Rule> Optimizer for Fused<R> {
    fn step(&mut self, encoder: &mut wgpu::CommandEncoder, set: &ParamSet) -> Result<()> {
        self.kernel.check_set(set)?;
        let config = self.config;
        advance_steps(&mut self.steps, set.has_grad(), &mut self.table, |t| {
            config.tensor_factors(t)
        });
        self.kernel
            .record(set, encoder, &config.uniform(), &self.table);
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr()
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        check_lr(lr)?;
        self.config.set_lr(lr);
        Ok(())
    }

    fn step_counts(&self) -> &[u64] {
        &self.steps
    }

    fn steps_in_flight(&self) -> usize {
        self.kernel.slots()
    }

    fn state_bytes(&self) -> u64 {
        self.state.iter().flatten().map(wgpu::Buffer::size).sum()
    }
}

/// Validates `new` as a replacement for `old`: same state arenas, every field valid.
pub(crate) fn check_config_change<R: Rule>(old: &R, new: &R) -> Result<()> {
    new.validate()?;
    if new.state() != old.state() {
        return Err(Error::InvalidHyperparameter {
            name: R::STATE_FIELD,
            value: f64::NAN,
            reason: "cannot be switched on or off once the optimizer holds its state",
        });
    }
    Ok(())
}

/// Rejects a learning rate that is negative or not finite.
pub(crate) fn check_lr(lr: f64) -> Result<()> {
    check_non_negative("lr", lr)
}

/// Rejects a decay rate outside [0, 1).
pub(crate) fn check_beta(name: &'static str, beta: f64) -> Result<()> {
    if (0.0..1.0).contains(&beta) {
        Ok(())
    } else {
        Err(Error::InvalidHyperparameter {
            name,
            value: beta,
            reason: "must be in [0, 1)",
        })
    }
}

/// Rejects a negative or non-finite value.
pub(crate) fn check_non_negative(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidHyperparameter {
            name,
            value,
            reason: "must be finite and >= 0",
        })
    }
}

/// Advances the step count of every tensor that has a gradient and fills its table entry
/// with `factors(t)`, `t` being its new count; tensors without a gradient get an entry that
/// leaves them untouched and keep their count.
pub(crate) fn advance_steps(
    steps: &mut [u64],
    has_grad: &[bool],
    table: &mut Vec<TensorStep>,
    factors: impl Fn(u64) -> (f32, f32),
) {
    table.clear();
    table.extend(steps.iter_mut().zip(has_grad).map(|(t, &has_grad)| {
        if !has_grad {
            return TensorStep::default();
        }
        *t += 1;
        let (step_size, bc2_sqrt) = factors(*t);
        TensorStep {
            has_grad: 1,
            step_size,
            bc2_sqrt,
            first: u32::from(*t == 1),
        }
    }));
}
