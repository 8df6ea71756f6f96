//! Fused optimizer steps on the GPU through wgpu, with a CPU reference on ndarray.
//!
//! Parameters and gradients of many named tensors live in one arena of GPU storage buffers
//! (a [`ParamSet`]). An optimizer ([`Gd`], [`Momentum`], [`Adam`]) owns its state buffers and
//! records one fused WGSL dispatch over every tensor into the caller's command encoder, so a
//! training loop whose backward kernels write gradients into the set can record its whole
//! step and submit once. [`cpu`] computes the same updates on the host, in the same order of
//! operations, for checking and for benchmarks. [`checkpoint`] saves a set with its optimizer's
//! state to a safetensors file and resumes from it, on either side.
//!
//! On devices with f16 shaders, [`ParamSet::new_f16`] stores parameters and gradients in f16
//! beside f32 master weights, which the same optimizers update in f32.
//!
//! What every optimizer computes is written down in the repository's `SPEC.md` and in each config
//! struct's documentation; where the crate differs from PyTorch, the docs say so.
//!
//! ```no_run
//! use ndarray::{ArrayD, IxDyn};
//! use wgpu_optim::{AdamConfig, Context, Layout, Optimizer, ParamSet};
//!
//! # fn main() -> wgpu_optim::Result<()> {
//! let ctx = Context::new()?;
//! let layout = Layout::builder().tensor("w", &[11, 32]).tensor("b", &[32]).build()?;
//! let set = ParamSet::new(&ctx, layout)?;
//! set.upload("w", ArrayD::from_elem(IxDyn(&[11, 32]), 0.1).view())?;
//!
//! let mut adam = AdamConfig { lr: 1e-2, ..Default::default() }.init(&set)?;
//! let mut encoder = ctx.device().create_command_encoder(&Default::default());
//! // ... the caller's backward kernels write gradients into set.grad_binding("w")? ...
//! adam.step(&mut encoder, &set)?;
//! ctx.queue().submit([encoder.finish()]);
//!
//! let w = set.download("w")?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod adam;
mod arena;
pub mod checkpoint;
mod context;
pub mod cpu;
mod error;
mod gd;
mod kernel;
mod layout;
pub mod measure;
mod momentum;
mod norm;
mod optim;
mod params;
mod precision;
mod readback;
mod sgd;
pub mod shaders;

pub use adam::{Adam, AdamConfig, AdamW, AdamWConfig};
pub use checkpoint::Checkpoint;
pub use context::Context;
pub use error::{Error, Result};
pub use gd::{Gd, GdConfig};
pub use kernel::{flags, StepUniform, TensorStep, STEPS_IN_FLIGHT};
pub use layout::{Layout, LayoutBuilder, TensorInfo, CHUNK_LEN, TENSOR_ALIGN};
pub use momentum::{Momentum, MomentumConfig};
pub use optim::{Fused, GradPolicy, Optimizer, Rule};
pub use params::{ArenaBuffer, ParamSet};
pub use precision::{f16_bits, f16_to_f32, round_to_f16, Precision};
pub use sgd::{Sgd, SgdConfig};

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctest;
