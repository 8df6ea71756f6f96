//! What every optimizer offers, the one fused driver they all share, and the bookkeeping
//! common to them: validation and per-tensor step counts.

use crate::kernel::{flags, state_buffers, StepKernel, StepUniform, TensorStep};
use crate::{Error, ParamSet, Precision, Result};

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

    /// How many updates each tensor has received (recorded, not necessarily executed; with
    /// non-finite skipping, skipped steps count here too).
    fn step_counts(&self) -> &[u64];

    /// Steps that may be recorded before a submit; past that, a later step would overwrite
    /// the values of one not yet executed.
    fn steps_in_flight(&self) -> usize;

    /// Bytes of optimizer state held on the device.
    fn state_bytes(&self) -> u64;

    /// Sets loss scaling, clipping and non-finite skipping for the steps recorded from now
    /// on; anything invalid is refused and changes nothing. Switching skipping on or off
    /// moves the step counts between host and device, so submit every recorded step first;
    /// the skipped-step count starts again from 0.
    fn set_grad_policy(&mut self, set: &ParamSet, policy: GradPolicy) -> Result<()>;

    /// The gradient policy in force.
    fn grad_policy(&self) -> &GradPolicy;

    /// The L2 norm of the unscaled gradients in the last executed step that computed one
    /// (with clipping or skipping on); NaN if a gradient was not finite. Reads back.
    fn read_grad_norm(&self, set: &ParamSet) -> Result<f32>;

    /// How many executed steps were skipped for a non-finite gradient. Reads back.
    fn read_skipped_steps(&self, set: &ParamSet) -> Result<u64>;

    /// Updates each tensor has received in the executed steps: counted on the device when
    /// steps may be skipped (reads back), else the recorded counts.
    fn read_step_counts(&self, set: &ParamSet) -> Result<Vec<u64>>;
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

    /// WGSL source for parameter sets stored in f16 with f32 master weights.
    const SHADER_F16: &'static str;

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

    /// Bias corrections `[1 - beta1^t, sqrt(1 - beta2^t)]` from f64, rounded once; `[1, 1]`
    /// for rules without them. Used when steps may be skipped and `t` lives on the device.
    fn bias_corrections(&self, _t: u64) -> [f32; 2] {
        [1.0, 1.0]
    }
}

/// What happens to gradients before the update: loss-scale division, global-norm clipping,
/// and skipping steps with inf or NaN gradients, all on the device in the same step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradPolicy {
    /// Gradients are divided by this (multiplied by `1 / loss_scale` rounded once from f64),
    /// as mixed-precision loss scaling needs; > 0 and finite, default 1.
    pub loss_scale: f64,
    /// Clip to this global L2 norm (of the unscaled gradients, over every tensor of the set),
    /// as `torch.nn.utils.clip_grad_norm_`: multiply by `min(1, max_norm / (norm + 1e-6))`.
    /// > 0 and finite; default none.
    pub max_norm: Option<f64>,
    /// Skip the whole step (no parameter, state or step count changes) when any gradient is
    /// inf or NaN; default false. Step counts then live on the device: read them with
    /// [`Fused::read_step_counts`]. Submit every recorded step before switching it.
    pub skip_non_finite: bool,
}

impl Default for GradPolicy {
    fn default() -> Self {
        Self {
            loss_scale: 1.0,
            max_norm: None,
            skip_non_finite: false,
        }
    }
}

impl GradPolicy {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        let inverse = (1.0 / self.loss_scale) as f32;
        if !(self.loss_scale.is_finite() && self.loss_scale > 0.0 && inverse.is_normal()) {
            return Err(Error::InvalidHyperparameter {
                name: "loss_scale",
                value: self.loss_scale,
                reason: "must be > 0 with 1 / loss_scale a normal f32",
            });
        }
        match self.max_norm {
            Some(m) if !(m > 0.0 && (m as f32).is_finite()) => Err(Error::InvalidHyperparameter {
                name: "max_norm",
                value: m,
                reason: "must be > 0 and finite in f32",
            }),
            _ => Ok(()),
        }
    }

    /// Whether the guard passes (norm and non-finite test) must run before the update.
    pub(crate) fn guarded(&self) -> bool {
        self.skip_non_finite || self.max_norm.is_some()
    }

    /// Adds the policy's values to a step's uniform.
    pub(crate) fn apply(&self, uniform: &mut StepUniform) {
        uniform.inv_scale = (1.0 / self.loss_scale) as f32;
        uniform.max_norm = self.max_norm.unwrap_or(0.0) as f32;
        uniform.flags |= flags::when(self.skip_non_finite, flags::SKIP_NON_FINITE)
            | flags::when(self.max_norm.is_some(), flags::CLIP);
    }
}

/// Entries the device's bias-correction table can hold (8 MiB).
pub(crate) const BIAS_CAPACITY: usize = 1 << 20;

/// The bias-correction table: entries up to the step from which both corrections are
/// exactly 1 in f32 (a later `t` reads the last entry). Betas so close to 1 that this takes
/// more than [`BIAS_CAPACITY`] steps are refused rather than corrected wrongly.
pub(crate) fn bias_table<R: Rule>(config: &R) -> Result<Vec<[f32; 2]>> {
    let mut table = vec![[1.0, 1.0]];
    for t in 1..BIAS_CAPACITY as u64 {
        let entry = config.bias_corrections(t);
        table.push(entry);
        if entry == [1.0, 1.0] {
            return Ok(table);
        }
    }
    Err(Error::InvalidHyperparameter {
        name: "beta2",
        value: f64::NAN,
        reason: "too close to 1 to skip non-finite steps: the bias corrections do not reach 1 \
                 within 2^20 steps",
    })
}

/// Step size and sqrt(1 - beta2^t) as the device computes them when steps may be skipped:
/// the corrections from the f64 table, the step size divided in f32.
pub(crate) fn skip_mode_factors<R: Rule>(config: &R, uniform: &StepUniform, t: u64) -> (f32, f32) {
    let [bc1, bc2_sqrt] = config.bias_corrections(t);
    (uniform.lr / bc1, bc2_sqrt)
}

/// The rule's kernel for the precision `set` is stored in.
fn shader<R: Rule>(set: &ParamSet) -> &'static str {
    match set.precision() {
        Precision::F32 => R::SHADER,
        Precision::F16 => R::SHADER_F16,
    }
}

/// The GPU driver of every optimizer: state buffers, kernel and step counts for one rule.
///
/// Use it through its aliases [`Gd`](crate::Gd), [`Momentum`](crate::Momentum),
/// [`Sgd`](crate::Sgd), [`Adam`](crate::Adam) and [`AdamW`](crate::AdamW).
#[derive(Debug)]
pub struct Fused<R: Rule> {
    pub(crate) config: R,
    policy: GradPolicy,
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
        let kernel = StepKernel::new(set, R::NAME, shader::<R>(set), &bound, &[])?;
        Ok(Self {
            config,
            policy: GradPolicy::default(),
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
    ///
    /// When steps may be skipped, new betas rewrite the device's bias-correction table at
    /// the next submit, so steps recorded but not yet submitted use them too.
    pub fn set_config(&mut self, config: R) -> Result<()> {
        check_config_change(&self.config, &config)?;
        if self.policy.skip_non_finite {
            self.kernel.guard().write_bias(&bias_table(&config)?);
        }
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
        let mut uniform = config.uniform();
        self.policy.apply(&mut uniform);
        advance_steps(&mut self.steps, set.has_grad(), &mut self.table, |t| {
            config.tensor_factors(t)
        });
        self.kernel.record(set, encoder, &uniform, &self.table);
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

    fn grad_policy(&self) -> &GradPolicy {
        &self.policy
    }

    fn set_grad_policy(&mut self, set: &ParamSet, policy: GradPolicy) -> Result<()> {
        policy.validate()?;
        self.kernel.check_set(set)?;
        if policy.skip_non_finite != self.policy.skip_non_finite {
            if self.policy.skip_non_finite {
                self.steps = self.kernel.guard().read_counts(set.context())?;
            }
            let bias = if policy.skip_non_finite {
                // The device counts in u32.
                let most = self.steps.iter().copied().max().unwrap_or(0);
                if most >= u32::MAX as u64 {
                    return Err(Error::LimitExceeded {
                        what: "step count of a tensor when skipping non-finite steps",
                        requested: most,
                        limit: u32::MAX as u64 - 1,
                    });
                }
                bias_table(&self.config)?
            } else {
                Vec::new()
            };
            let bound: Vec<Option<&[wgpu::Buffer]>> = (0..R::STATE_BINDINGS)
                .map(|i| self.state.get(i).map(Vec::as_slice))
                .collect();
            self.kernel = StepKernel::new(set, R::NAME, shader::<R>(set), &bound, &bias)?;
            if policy.skip_non_finite {
                self.kernel.guard().write_counts(&self.steps);
            }
        }
        self.policy = policy;
        Ok(())
    }

    fn read_grad_norm(&self, set: &ParamSet) -> Result<f32> {
        self.kernel.check_set(set)?;
        Ok(self.kernel.guard().read_header(set.context())?.norm)
    }

    fn read_skipped_steps(&self, set: &ParamSet) -> Result<u64> {
        self.kernel.check_set(set)?;
        Ok(self
            .kernel
            .guard()
            .read_header(set.context())?
            .skipped
            .into())
    }

    fn read_step_counts(&self, set: &ParamSet) -> Result<Vec<u64>> {
        self.kernel.check_set(set)?;
        if self.policy.skip_non_finite {
            self.kernel.guard().read_counts(set.context())
        } else {
            Ok(self.steps.clone())
        }
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

/// Rejects a negative value, or one that is not finite in f64 or once rounded to the f32
/// the kernels use.
pub(crate) fn check_non_negative(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && (value as f32).is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidHyperparameter {
            name,
            value,
            reason: "must be >= 0 and finite in f32",
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
