//! The GPU parameter set: one arena buffer of parameters and one of gradients.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::layout::{Layout, TensorInfo};
use crate::norm::NormKernel;
use crate::{readback, Context, Error, Result};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Named tensors of parameters and their gradients in two GPU storage buffers of identical
/// layout.
///
/// Each tensor starts on a 256-byte boundary, so a caller's own kernels (a backward pass, say)
/// can bind a single tensor with [`ParamSet::grad_binding`] and write gradients in place.
#[derive(Debug)]
pub struct ParamSet {
    ctx: Context,
    layout: Arc<Layout>,
    params: wgpu::Buffer,
    grads: wgpu::Buffer,
    chunks: wgpu::Buffer,
    has_grad: Vec<bool>,
    norm: OnceLock<NormKernel>,
    id: u64,
}

impl ParamSet {
    /// Allocates zeroed parameter and gradient buffers for `layout` on `ctx`'s device.
    pub fn new(ctx: &Context, layout: Layout) -> Result<Self> {
        let bytes = (layout.arena_len() as u64 * 4).max(crate::kernel::MIN_BINDING);
        let limits = ctx.limits();
        let binding_limit = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        if bytes > binding_limit {
            return Err(Error::LimitExceeded {
                what: "parameter arena bytes",
                requested: bytes,
                limit: binding_limit,
            });
        }

        // Buffers: parameters and gradients share the layout; both start zeroed.
        let usage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC;
        let make = |label| {
            ctx.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage,
                mapped_at_creation: false,
            })
        };
        let (params, grads, chunks) = ctx.capture("parameter set buffers", || {
            let params = make("wgpu-optim params");
            let grads = make("wgpu-optim grads");

            // The work table maps each workgroup to a chunk of one tensor; built once.
            let chunks =
                crate::kernel::storage_from_slice(ctx, "wgpu-optim chunks", layout.chunks());
            (params, grads, chunks)
        })?;

        let has_grad = vec![true; layout.tensors().len()];
        Ok(Self {
            ctx: ctx.clone(),
            layout: Arc::new(layout),
            params,
            grads,
            chunks,
            has_grad,
            norm: OnceLock::new(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The context the buffers live on.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Tensor names, shapes and places.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Identity of this set, which optimizers check so they are never stepped on another.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Result<&TensorInfo> {
        self.layout.tensor(name)
    }

    /// The whole parameter arena.
    pub fn param_buffer(&self) -> &wgpu::Buffer {
        &self.params
    }

    /// The whole gradient arena.
    pub fn grad_buffer(&self) -> &wgpu::Buffer {
        &self.grads
    }

    pub(crate) fn chunk_buffer(&self) -> &wgpu::Buffer {
        &self.chunks
    }

    /// Binding of one tensor's parameters, for a caller's own kernels.
    pub fn param_binding(&self, name: &str) -> Result<wgpu::BufferBinding<'_>> {
        self.binding(&self.params, name)
    }

    /// Binding of one tensor's gradient, for a caller's backward kernels to write into.
    pub fn grad_binding(&self, name: &str) -> Result<wgpu::BufferBinding<'_>> {
        self.binding(&self.grads, name)
    }

    fn binding<'a>(&self, buffer: &'a wgpu::Buffer, name: &str) -> Result<wgpu::BufferBinding<'a>> {
        let t = self.layout.tensor(name)?;
        let size = std::num::NonZeroU64::new(t.len() as u64 * 4)
            .ok_or_else(|| Error::EmptyTensor(name.to_owned()))?;
        Ok(wgpu::BufferBinding {
            buffer,
            offset: t.offset() as u64 * 4,
            size: Some(size),
        })
    }

    /// Writes a tensor's parameters (queued; takes effect at the next submit).
    pub fn upload(&self, name: &str, values: ArrayViewD<'_, f32>) -> Result<()> {
        self.write(&self.params, name, values)
    }

    /// Writes a tensor's gradient (queued; takes effect at the next submit).
    pub fn upload_grad(&self, name: &str, values: ArrayViewD<'_, f32>) -> Result<()> {
        self.write(&self.grads, name, values)
    }

    fn write(&self, buffer: &wgpu::Buffer, name: &str, values: ArrayViewD<'_, f32>) -> Result<()> {
        let t = self.layout.tensor(name)?;
        if values.len() != t.len() {
            return Err(Error::LengthMismatch {
                tensor: name.to_owned(),
                expected: t.len(),
                actual: values.len(),
            });
        }
        if t.is_empty() {
            return Ok(());
        }
        let data: Vec<f32> = values.iter().copied().collect();
        self.ctx
            .queue()
            .write_buffer(buffer, t.offset() as u64 * 4, bytemuck::cast_slice(&data));
        Ok(())
    }

    /// Reads a tensor's parameters back, in its shape (submits and waits).
    pub fn download(&self, name: &str) -> Result<ArrayD<f32>> {
        self.read(&self.params, name)
    }

    /// Reads a tensor's gradient back, in its shape (submits and waits).
    pub fn download_grad(&self, name: &str) -> Result<ArrayD<f32>> {
        self.read(&self.grads, name)
    }

    fn read(&self, buffer: &wgpu::Buffer, name: &str) -> Result<ArrayD<f32>> {
        let t = self.layout.tensor(name)?;
        let data = readback::read_f32(&self.ctx, buffer, t.offset() as u64 * 4, t.len())?;
        ArrayD::from_shape_vec(IxDyn(t.shape()), data).map_err(|e| Error::Readback(e.to_string()))
    }

    /// Reads the whole parameter arena back, padding included.
    pub fn download_arena(&self) -> Result<Vec<f32>> {
        readback::read_f32(&self.ctx, &self.params, 0, self.layout.arena_len())
    }

    /// Says whether the tensor `name` has a gradient in the coming steps; a tensor without one
    /// is left untouched and its step count does not advance. All tensors have one by default.
    pub fn set_has_grad(&mut self, name: &str, has_grad: bool) -> Result<()> {
        let index = self.layout.index_of(name)?;
        self.has_grad[index] = has_grad;
        Ok(())
    }

    /// Marks every tensor as having (or not having) a gradient.
    pub fn set_all_have_grad(&mut self, has_grad: bool) {
        self.has_grad.fill(has_grad);
    }

    /// Per-tensor gradient flags, in layout order.
    pub fn has_grad(&self) -> &[bool] {
        &self.has_grad
    }

    /// Records the computation of the L2 norm of all gradients (tensors without a gradient
    /// this step included) into `encoder`; read it with [`ParamSet::read_grad_norm`] after
    /// the submit.
    pub fn record_grad_norm(&self, encoder: &mut wgpu::CommandEncoder) {
        self.norm_kernel().record(encoder);
    }

    /// Reads the norm recorded by the last [`ParamSet::record_grad_norm`] that was submitted.
    pub fn read_grad_norm(&self) -> Result<f32> {
        self.norm_kernel().read(&self.ctx)
    }

    /// Computes the L2 norm of all gradients on the device and reads the one number back.
    pub fn grad_norm(&self) -> Result<f32> {
        let mut encoder = self
            .ctx
            .device()
            .create_command_encoder(&Default::default());
        self.record_grad_norm(&mut encoder);
        self.ctx.queue().submit([encoder.finish()]);
        self.read_grad_norm()
    }

    fn norm_kernel(&self) -> &NormKernel {
        self.norm.get_or_init(|| NormKernel::new(self))
    }
}
