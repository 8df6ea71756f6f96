//! Saving and loading the GPU driver and the CPU reference.

use std::path::Path;

use ndarray::{ArrayViewD, IxDyn};

use super::{Checkpoint, Hyperparameters};
use crate::cpu::{self, Reference, Update};
use crate::optim::Fused;
use crate::Optimizer;
use crate::{readback, Error, ParamSet, Result};

impl<R: Hyperparameters> Fused<R> {
    /// Reads the parameters of `set` and the optimizer's state back from the device (submits
    /// and waits), with the step counts, kind and hyperparameters.
    ///
    /// Submit every recorded step first: the step counts include steps that are recorded but
    /// not yet submitted, and the buffers do not.
    pub fn checkpoint(&self, set: &ParamSet) -> Result<Checkpoint> {
        self.check_set(set)?;
        let ctx = set.context();
        let params = set.download_arena()?;
        let state = self
            .state
            .iter()
            .map(|arena| {
                let mut host = Vec::with_capacity(set.layout().arena_len());
                for (buffer, part) in arena.iter().zip(set.arena_buffers()) {
                    host.extend(readback::read_f32(ctx, buffer, 0, part.range().len())?);
                }
                Ok(host)
            })
            .collect::<Result<Vec<_>>>()?;
        let state: Vec<&[f32]> = state.iter().map(Vec::as_slice).collect();
        // With non-finite skipping the device holds the counts of the executed steps.
        let steps = Optimizer::read_step_counts(self, set)?;
        Checkpoint::capture(&self.config, set.layout(), &steps, &params, &state)
    }

    /// Saves `set` and the optimizer to a safetensors file (see [`crate::checkpoint`] for the
    /// layout). The file at `path` is replaced only once the new one is complete.
    pub fn save(&self, set: &ParamSet, path: impl AsRef<Path>) -> Result<()> {
        self.checkpoint(set)?.write(path)
    }

    /// Builds the optimizer `checkpoint` describes for `set`, and writes the checkpoint's
    /// parameters into `set` and its state and step counts into the optimizer (the writes are
    /// queued and take effect at the next submit).
    ///
    /// The checkpoint is checked in full first: on any error nothing is written to `set`.
    pub fn from_checkpoint(set: &ParamSet, checkpoint: &Checkpoint) -> Result<Self> {
        let restore = checkpoint.restore::<R>(set.layout())?;
        let mut opt = Self::new(set, restore.config)?;

        let queue = set.context().queue();
        for (t, (param, state)) in set.layout().tensors().iter().zip(&restore.tensors) {
            if t.is_empty() {
                continue;
            }
            // Parameters through `upload`, which also keeps an f16 set's copy in step; state
            // arenas (always f32) are laid out like the parameter buffers: same index, same
            // element offset.
            let view = ndarray::ArrayView1::from(&param[..]).into_dyn();
            set.upload(t.name(), view)?;
            let (buffer, first) = set.locate(t);
            let index = set
                .arena_buffers()
                .iter()
                .position(|b| std::ptr::eq(b, buffer))
                .unwrap_or(0);
            for (arena, values) in opt.state.iter().zip(state) {
                queue.write_buffer(&arena[index], first * 4, bytemuck::cast_slice(values));
            }
        }
        opt.steps = restore.steps;
        Ok(opt)
    }

    /// Loads a file written by [`Fused::save`] or [`Reference::save`] into `set` and a new
    /// optimizer; see [`Fused::from_checkpoint`].
    pub fn load(set: &ParamSet, path: impl AsRef<Path>) -> Result<Self> {
        Self::from_checkpoint(set, &Checkpoint::read(path)?)
    }
}

impl<R: Update + Hyperparameters> Reference<R> {
    /// Copies the parameters of `set` and the optimizer's state, with the step counts, kind
    /// and hyperparameters.
    pub fn checkpoint(&self, set: &cpu::ParamSet) -> Result<Checkpoint> {
        let state: Vec<&[f32]> = self
            .state
            .iter()
            .map(|a| a.as_slice().unwrap_or(&[]))
            .collect();
        let params = set.params().as_slice().unwrap_or(&[]);
        Checkpoint::capture(&self.config, set.layout(), &self.steps, params, &state)
    }

    /// Saves `set` and the optimizer to a safetensors file, in the layout of
    /// [`Fused::save`], which it loads into.
    pub fn save(&self, set: &cpu::ParamSet, path: impl AsRef<Path>) -> Result<()> {
        self.checkpoint(set)?.write(path)
    }

    /// Builds the optimizer `checkpoint` describes for `set`, and writes the checkpoint's
    /// parameters into `set` and its state and step counts into the optimizer.
    ///
    /// The checkpoint is checked in full first: on any error nothing is written to `set`.
    pub fn from_checkpoint(set: &mut cpu::ParamSet, checkpoint: &Checkpoint) -> Result<Self> {
        let restore = checkpoint.restore::<R>(set.layout())?;
        let mut opt = Self::new(set, restore.config)?;

        // The set lends its layout or its parameters, not both at once.
        let tensors = set.layout().tensors().to_vec();
        for (t, (param, state)) in tensors.iter().zip(&restore.tensors) {
            let view = ArrayViewD::from_shape(IxDyn(t.shape()), param)
                .map_err(|e| Error::CorruptCheckpoint(e.to_string()))?;
            set.upload(t.name(), view)?;
            for (arena, values) in opt.state.iter_mut().zip(state) {
                if let Some(arena) = arena.as_slice_mut() {
                    arena[t.range()].copy_from_slice(values);
                }
            }
        }
        opt.steps = restore.steps;
        Ok(opt)
    }

    /// Loads a file written by [`Reference::save`] or [`Fused::save`] into `set` and a new
    /// optimizer; see [`Reference::from_checkpoint`].
    pub fn load(set: &mut cpu::ParamSet, path: impl AsRef<Path>) -> Result<Self> {
        Self::from_checkpoint(set, &Checkpoint::read(path)?)
    }
}
