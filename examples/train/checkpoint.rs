//! Saving and resuming: the GPU optimizer's checkpoint, plus notes of the epoch and of the
//! options that decide the model and the batches, so that a resumed run trains on the same
//! batches as an uninterrupted one.

use std::error::Error;
use std::path::Path;

use wgpu_optim::checkpoint::Hyperparameters;
use wgpu_optim::cpu as reference;
use wgpu_optim::{
    AdamConfig, AdamWConfig, Checkpoint, Fused, GdConfig, MomentumConfig, Optimizer, ParamSet,
    SgdConfig,
};

use crate::cli::{Kind, Options};

/// A GPU optimizer that can also be written to a checkpoint, whatever its kind.
pub trait Saving: Optimizer {
    fn checkpoint(&self, set: &ParamSet) -> wgpu_optim::Result<Checkpoint>;
}

impl<R: Hyperparameters> Saving for Fused<R> {
    fn checkpoint(&self, set: &ParamSet) -> wgpu_optim::Result<Checkpoint> {
        Fused::checkpoint(self, set)
    }
}

/// The note of the last epoch trained before the save.
const EPOCH: &str = "epoch";

/// Options a resumed run must share with the run that saved, as (note, flag, value): the
/// seed draws the split, the initial weights and every epoch's order, the batch size cuts
/// the orders into steps, and the hidden width shapes the tensors.
fn run_notes(o: &Options) -> [(&'static str, &'static str, String); 3] {
    [
        ("seed", "--seed", o.seed.to_string()),
        ("batch_size", "--batch-size", o.batch_size.to_string()),
        ("hidden", "--hidden", o.hidden.to_string()),
    ]
}

/// Writes the GPU side's parameters and optimizer after `epoch` to `path`.
pub fn save(
    opt: &dyn Saving,
    set: &ParamSet,
    o: &Options,
    epoch: usize,
    path: &Path,
) -> Result<(), Box<dyn Error>> {
    let mut checkpoint = opt.checkpoint(set)?;
    checkpoint.set_user(EPOCH, epoch.to_string());
    for (note, _, value) in run_notes(o) {
        checkpoint.set_user(note, value);
    }
    checkpoint
        .write(path)
        .map_err(|e| format!("cannot save: {e}"))?;
    Ok(())
}

/// A checkpoint to resume from, with the optimizer it holds and the epoch it was saved after.
pub struct Resume {
    pub checkpoint: Checkpoint,
    pub kind: Kind,
    pub epoch: usize,
}

impl Resume {
    /// Reads `path` and checks it against the command line.
    pub fn open(path: &Path, o: &Options) -> Result<Self, Box<dyn Error>> {
        let fail = |message: String| format!("cannot resume from {}: {message}", path.display());
        // A read error names the file already.
        let checkpoint = Checkpoint::read(path).map_err(|e| format!("cannot resume: {e}"))?;
        let kind = Kind::parse(checkpoint.optimizer())
            .ok_or_else(|| fail(format!("unknown optimizer `{}`", checkpoint.optimizer())))?;
        if o.kinds.len() == 1 && o.kinds[0] != kind {
            return Err(fail(format!(
                "it holds {}, not {}",
                kind.name(),
                o.kinds[0].name()
            ))
            .into());
        }
        let note = |key: &str| {
            checkpoint.user(key).ok_or_else(|| {
                fail(format!(
                    "it has no `{key}` note; was it saved by this example?"
                ))
            })
        };
        for (key, flag, value) in run_notes(o) {
            let saved = note(key)?;
            if saved != value {
                return Err(fail(format!(
                    "it was saved with {flag} {saved}; resume with the same"
                ))
                .into());
            }
        }
        let epoch = note(EPOCH)?;
        let epoch = epoch
            .parse()
            .map_err(|_| fail(format!("its epoch note `{epoch}` is not a number")))?;
        Ok(Self {
            checkpoint,
            kind,
            epoch,
        })
    }

    /// The GPU optimizer from the file; its parameters go into `set`.
    pub fn gpu(&self, set: &ParamSet) -> wgpu_optim::Result<Box<dyn Saving>> {
        fn load<R: Hyperparameters>(
            set: &ParamSet,
            checkpoint: &Checkpoint,
        ) -> wgpu_optim::Result<Box<dyn Saving>> {
            Ok(Box::new(Fused::<R>::from_checkpoint(set, checkpoint)?))
        }
        let c = &self.checkpoint;
        match self.kind {
            Kind::Gd => load::<GdConfig>(set, c),
            Kind::Momentum => load::<MomentumConfig>(set, c),
            Kind::Sgd => load::<SgdConfig>(set, c),
            Kind::Adam => load::<AdamConfig>(set, c),
            Kind::AdamW => load::<AdamWConfig>(set, c),
        }
    }

    /// The same optimizer on the CPU reference; its parameters go into `set`.
    pub fn cpu(
        &self,
        set: &mut reference::ParamSet,
    ) -> wgpu_optim::Result<Box<dyn reference::Optimizer>> {
        let c = &self.checkpoint;
        Ok(match self.kind {
            Kind::Gd => Box::new(reference::Gd::from_checkpoint(set, c)?),
            Kind::Momentum => Box::new(reference::Momentum::from_checkpoint(set, c)?),
            Kind::Sgd => Box::new(reference::Sgd::from_checkpoint(set, c)?),
            Kind::Adam => Box::new(reference::Adam::from_checkpoint(set, c)?),
            Kind::AdamW => Box::new(reference::AdamW::from_checkpoint(set, c)?),
        })
    }
}
