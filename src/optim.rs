//! What every optimizer offers, and the bookkeeping they share: validation and per-tensor
//! step counts.

use crate::kernel::TensorStep;
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

/// Rejects a learning rate that is negative or not finite.
pub(crate) fn check_lr(lr: f64) -> Result<()> {
    if lr.is_finite() && lr >= 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidHyperparameter {
            name: "lr",
            value: lr,
            reason: "must be finite and >= 0",
        })
    }
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
/// with `factors(t)`, `t` being its new count; tensors without a gradient get an inactive
/// entry and keep their count.
pub(crate) fn advance_steps(
    steps: &mut [u64],
    has_grad: &[bool],
    table: &mut Vec<TensorStep>,
    factors: impl Fn(u64) -> (f32, f32),
) {
    table.clear();
    table.extend(steps.iter_mut().zip(has_grad).map(|(t, &active)| {
        if !active {
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
