//! The GPU parameter set: parameters and gradients of named tensors in arena buffers.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::arena::{Plan, Segment};
use crate::layout::{Layout, TensorInfo};
use crate::norm::NormKernel;
use crate::{readback, Context, Error, Result};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One device buffer of the arena: a run of whole tensors, in a parameter buffer and a
/// gradient buffer of the same size.
#[derive(Debug)]
pub struct ArenaBuffer {
    params: wgpu::Buffer,
    grads: wgpu::Buffer,
    range: Range<usize>,
}

impl ArenaBuffer {
    /// Parameters of the tensors in this buffer.
    pub fn params(&self) -> &wgpu::Buffer {
        &self.params
    }

    /// Gradients of the tensors in this buffer, same layout.
    pub fn grads(&self) -> &wgpu::Buffer {
        &self.grads
    }

    /// Arena elements the buffer holds; element `i` of the arena is at byte
    /// `4 * (i - range.start)` of the buffer.
    pub fn range(&self) -> Range<usize> {
        self.range.clone()
    }
}

/// A segment's work table on the device, beside its place in the arena.
#[derive(Debug)]
pub(crate) struct SegmentTable {
    pub segment: Segment,
    pub chunks: wgpu::Buffer,
}

/// Named tensors of parameters and their gradients in GPU storage buffers of identical
/// layout.
///
/// Each tensor starts on a 256-byte boundary, so a caller's own kernels (a backward pass, say)
/// can bind a single tensor with [`ParamSet::grad_binding`] and write gradients in place. A
/// set larger than the device's largest buffer is spread over several, each holding whole
/// tensors; a buffer larger than one storage binding is updated through several bindings.
#[derive(Debug)]
pub struct ParamSet {
    ctx: Context,
    layout: Arc<Layout>,
    buffers: Vec<ArenaBuffer>,
    segments: Vec<SegmentTable>,
    has_grad: Vec<bool>,
    norm: OnceLock<NormKernel>,
    id: u64,
}

impl ParamSet {
    /// Allocates zeroed parameter and gradient buffers for `layout` on `ctx`'s device.
    ///
    /// Fails with [`Error::LimitExceeded`] before allocating anything if a tensor is larger
    /// than one device buffer, and with [`Error::OutOfMemory`] if the device cannot hold it.
    pub fn new(ctx: &Context, layout: Layout) -> Result<Self> {
        Self::with_plan(ctx, layout, false)
    }

    /// Like [`ParamSet::new`], but every tensor gets a binding of its own, so an optimizer
    /// step costs one dispatch per tensor: the way not to do it, kept to measure what the
    /// fused pass saves.
    pub fn new_with_dispatch_per_tensor(ctx: &Context, layout: Layout) -> Result<Self> {
        Self::with_plan(ctx, layout, true)
    }

    fn with_plan(ctx: &Context, layout: Layout, binding_per_tensor: bool) -> Result<Self> {
        let limits = ctx.limits();
        let plan = Plan::new(
            &layout,
            limits.max_buffer_size,
            limits.max_storage_buffer_binding_size,
            binding_per_tensor,
        )?;

        // Buffers: parameters and gradients share the layout; both start zeroed.
        let usage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC;
        let device = ctx.device();
        let make = |label, range: &Range<usize>| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: (range.len() as u64 * 4).max(crate::kernel::MIN_BINDING),
                usage,
                mapped_at_creation: false,
            })
        };
        let (buffers, segments) = ctx.capture("parameter set buffers", || {
            let buffers: Vec<ArenaBuffer> = plan
                .buffers
                .iter()
                .map(|range| ArenaBuffer {
                    params: make("wgpu-optim params", range),
                    grads: make("wgpu-optim grads", range),
                    range: range.clone(),
                })
                .collect();

            // Work tables map each workgroup to a chunk of one tensor; built once.
            let segments: Vec<SegmentTable> = plan
                .segments
                .iter()
                .map(|segment| SegmentTable {
                    chunks: crate::kernel::storage_from_slice(
                        ctx,
                        "wgpu-optim chunks",
                        &segment.table(&layout),
                    ),
                    segment: segment.clone(),
                })
                .collect();
            (buffers, segments)
        })?;
        log::debug!(
            "parameter set: {} tensors, {} elements in {} buffers, {} bindings",
            layout.tensors().len(),
            layout.arena_len(),
            buffers.len(),
            segments.len()
        );

        let has_grad = vec![true; layout.tensors().len()];
        Ok(Self {
            ctx: ctx.clone(),
            layout: Arc::new(layout),
            buffers,
            segments,
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

    /// The device buffers of the arena, in arena order (one unless the set is larger than
    /// the device's largest buffer).
    pub fn arena_buffers(&self) -> &[ArenaBuffer] {
        &self.buffers
    }

    /// Bytes of device memory held by parameters and gradients.
    pub fn allocated_bytes(&self) -> u64 {
        self.buffers
            .iter()
            .map(|b| b.params.size() + b.grads.size())
            .sum()
    }

    pub(crate) fn segments(&self) -> &[SegmentTable] {
        &self.segments
    }

    /// The buffer holding `tensor`, and the tensor's byte offset in it.
    pub(crate) fn locate(&self, tensor: &TensorInfo) -> (&ArenaBuffer, u64) {
        let buffer = self
            .buffers
            .iter()
            .rfind(|b| b.range.start <= tensor.offset())
            .unwrap_or(&self.buffers[0]);
        (buffer, (tensor.offset() - buffer.range.start) as u64 * 4)
    }

    /// Binding of one tensor's parameters, for a caller's own kernels.
    pub fn param_binding(&self, name: &str) -> Result<wgpu::BufferBinding<'_>> {
        self.binding(name, ArenaBuffer::params)
    }

    /// Binding of one tensor's gradient, for a caller's backward kernels to write into.
    pub fn grad_binding(&self, name: &str) -> Result<wgpu::BufferBinding<'_>> {
        self.binding(name, ArenaBuffer::grads)
    }

    fn binding<'a>(
        &'a self,
        name: &str,
        which: fn(&ArenaBuffer) -> &wgpu::Buffer,
    ) -> Result<wgpu::BufferBinding<'a>> {
        let t = self.layout.tensor(name)?;
        let bytes = t.len() as u64 * 4;
        let size =
            std::num::NonZeroU64::new(bytes).ok_or_else(|| Error::EmptyTensor(name.to_owned()))?;
        let limit = self.ctx.limits().max_storage_buffer_binding_size;
        if bytes > limit {
            return Err(Error::LimitExceeded {
                what: "bytes of one tensor bound as one storage binding",
                requested: bytes,
                limit,
            });
        }
        let (buffer, offset) = self.locate(t);
        Ok(wgpu::BufferBinding {
            buffer: which(buffer),
            offset,
            size: Some(size),
        })
    }

    /// Writes a tensor's parameters (queued; takes effect at the next submit).
    pub fn upload(&self, name: &str, values: ArrayViewD<'_, f32>) -> Result<()> {
        self.write(name, values, ArenaBuffer::params)
    }

    /// Writes a tensor's gradient (queued; takes effect at the next submit).
    pub fn upload_grad(&self, name: &str, values: ArrayViewD<'_, f32>) -> Result<()> {
        self.write(name, values, ArenaBuffer::grads)
    }

    fn write(
        &self,
        name: &str,
        values: ArrayViewD<'_, f32>,
        which: fn(&ArenaBuffer) -> &wgpu::Buffer,
    ) -> Result<()> {
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
        let (buffer, offset) = self.locate(t);
        let queue = self.ctx.queue();
        match values.as_slice() {
            Some(contiguous) => {
                queue.write_buffer(which(buffer), offset, bytemuck::cast_slice(contiguous))
            }
            None => {
                let data: Vec<f32> = values.iter().copied().collect();
                queue.write_buffer(which(buffer), offset, bytemuck::cast_slice(&data));
            }
        }
        Ok(())
    }

    /// Reads a tensor's parameters back, in its shape (submits and waits).
    pub fn download(&self, name: &str) -> Result<ArrayD<f32>> {
        self.read(name, ArenaBuffer::params)
    }

    /// Reads a tensor's gradient back, in its shape (submits and waits).
    pub fn download_grad(&self, name: &str) -> Result<ArrayD<f32>> {
        self.read(name, ArenaBuffer::grads)
    }

    fn read(&self, name: &str, which: fn(&ArenaBuffer) -> &wgpu::Buffer) -> Result<ArrayD<f32>> {
        let t = self.layout.tensor(name)?;
        let (buffer, offset) = self.locate(t);
        let data = readback::read_f32(&self.ctx, which(buffer), offset, t.len())?;
        ArrayD::from_shape_vec(IxDyn(t.shape()), data).map_err(|e| Error::Readback(e.to_string()))
    }

    /// Reads the whole parameter arena back, padding included.
    pub fn download_arena(&self) -> Result<Vec<f32>> {
        let mut arena = Vec::with_capacity(self.layout.arena_len());
        for b in &self.buffers {
            arena.extend(readback::read_f32(&self.ctx, &b.params, 0, b.range.len())?);
        }
        Ok(arena)
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
    /// the submit. The reduction's pipelines are built on the first call.
    pub fn record_grad_norm(&self, encoder: &mut wgpu::CommandEncoder) -> Result<()> {
        self.norm_kernel()?.record(encoder);
        Ok(())
    }

    /// Reads the norm recorded by the last [`ParamSet::record_grad_norm`] that was submitted.
    pub fn read_grad_norm(&self) -> Result<f32> {
        self.norm_kernel()?.read(&self.ctx)
    }

    /// Computes the L2 norm of all gradients on the device and reads the one number back.
    pub fn grad_norm(&self) -> Result<f32> {
        let mut encoder = self
            .ctx
            .device()
            .create_command_encoder(&Default::default());
        self.record_grad_norm(&mut encoder)?;
        self.ctx.queue().submit([encoder.finish()]);
        self.read_grad_norm()
    }

    fn norm_kernel(&self) -> Result<&NormKernel> {
        if let Some(kernel) = self.norm.get() {
            return Ok(kernel);
        }
        let kernel = NormKernel::standalone(self)?;
        Ok(self.norm.get_or_init(|| kernel))
    }
}
