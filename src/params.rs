//! The GPU parameter set: parameters and gradients of named tensors in arena buffers.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::arena::{Plan, Segment};
use crate::layout::{Layout, TensorInfo};
use crate::norm::NormKernel;
use crate::precision::{f16_bits, f16_to_f32};
use crate::{readback, Context, Error, Precision, Result};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One device buffer of the arena: a run of whole tensors, in a parameter buffer and a
/// gradient buffer of the same size (and, in an f16 set, an f32 master buffer).
#[derive(Debug)]
pub struct ArenaBuffer {
    params: wgpu::Buffer,
    grads: wgpu::Buffer,
    master: Option<wgpu::Buffer>,
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

    /// The f32 master weights of an f16 set (same elements, 4 bytes each); `None` in an f32
    /// set, whose parameters are their own master.
    pub fn master(&self) -> Option<&wgpu::Buffer> {
        self.master.as_ref()
    }

    /// Arena elements the buffer holds; element `i` of the arena is at byte
    /// `b * (i - range.start)` of the buffer, `b` being [`Precision::bytes`] of the set for
    /// parameters and gradients and 4 for master weights.
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
///
/// An f16 set ([`ParamSet::new_f16`]) stores parameters and gradients in f16 and keeps f32
/// master weights beside them: optimizers update the master weights in f32 (with f32 state)
/// and store each result rounded to f16 as well. Uploads and downloads stay f32 on the host.
#[derive(Debug)]
pub struct ParamSet {
    ctx: Context,
    layout: Arc<Layout>,
    precision: Precision,
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
        Self::with_plan(ctx, layout, false, Precision::F32)
    }

    /// Allocates zeroed f16 parameter and gradient buffers and f32 master weights for
    /// `layout`.
    ///
    /// Fails with [`Error::MissingFeature`] when the device was created without
    /// `wgpu::Features::SHADER_F16` (see [`Context::supports_f16`]), and otherwise as
    /// [`ParamSet::new`] does.
    pub fn new_f16(ctx: &Context, layout: Layout) -> Result<Self> {
        Self::with_plan(ctx, layout, false, Precision::F16)
    }

    /// Like [`ParamSet::new`], but every tensor gets a binding of its own, so an optimizer
    /// step costs one dispatch per tensor: the way not to do it, kept to measure what the
    /// fused pass saves.
    pub fn new_with_dispatch_per_tensor(ctx: &Context, layout: Layout) -> Result<Self> {
        Self::with_plan(ctx, layout, true, Precision::F32)
    }

    fn with_plan(
        ctx: &Context,
        layout: Layout,
        binding_per_tensor: bool,
        precision: Precision,
    ) -> Result<Self> {
        if precision == Precision::F16 && !ctx.supports_f16() {
            return Err(Error::MissingFeature {
                feature: "shader-f16",
            });
        }
        let limits = ctx.limits();
        let plan = Plan::new(
            &layout,
            limits.max_buffer_size,
            limits.max_storage_buffer_binding_size,
            binding_per_tensor,
        )?;

        // Buffers: parameters, gradients and master weights share the layout; all start
        // zeroed.
        let usage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC;
        let device = ctx.device();
        let make = |label, range: &Range<usize>, bytes: u64| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: (range.len() as u64 * bytes).max(crate::kernel::MIN_BINDING),
                usage,
                mapped_at_creation: false,
            })
        };
        let (buffers, segments) = ctx.capture("parameter set buffers", || {
            let buffers: Vec<ArenaBuffer> = plan
                .buffers
                .iter()
                .map(|range| ArenaBuffer {
                    params: make("wgpu-optim params", range, precision.bytes()),
                    grads: make("wgpu-optim grads", range, precision.bytes()),
                    master: (precision == Precision::F16)
                        .then(|| make("wgpu-optim master weights", range, 4)),
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
            "{precision:?} parameter set: {} tensors, {} elements in {} buffers, {} bindings",
            layout.tensors().len(),
            layout.arena_len(),
            buffers.len(),
            segments.len()
        );

        let has_grad = vec![true; layout.tensors().len()];
        Ok(Self {
            ctx: ctx.clone(),
            layout: Arc::new(layout),
            precision,
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

    /// How parameters and gradients are stored.
    pub fn precision(&self) -> Precision {
        self.precision
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

    /// Bytes of device memory held by parameters, gradients and master weights.
    pub fn allocated_bytes(&self) -> u64 {
        self.buffers
            .iter()
            .map(|b| b.params.size() + b.grads.size() + b.master.as_ref().map_or(0, |m| m.size()))
            .sum()
    }

    pub(crate) fn segments(&self) -> &[SegmentTable] {
        &self.segments
    }

    /// The buffer holding `tensor`, and the tensor's first element counted from the
    /// buffer's start.
    pub(crate) fn locate(&self, tensor: &TensorInfo) -> (&ArenaBuffer, u64) {
        let buffer = self
            .buffers
            .iter()
            .rfind(|b| b.range.start <= tensor.offset())
            .unwrap_or(&self.buffers[0]);
        (buffer, (tensor.offset() - buffer.range.start) as u64)
    }

    /// Binding of one tensor's parameters, for a caller's own kernels (f16 in an f16 set,
    /// where writing them does not change the master weights the optimizers update).
    ///
    /// An f16 binding covers the tensor rounded up to whole quads of 8 bytes, as storage
    /// bindings must be a multiple of 4 bytes; the lanes past the tensor's end are padding.
    pub fn param_binding(&self, name: &str) -> Result<wgpu::BufferBinding<'_>> {
        self.binding(name, ArenaBuffer::params, self.precision.bytes())
    }

    /// Binding of one tensor's gradient, for a caller's backward kernels to write into (f16
    /// in an f16 set, rounded up to whole quads like [`ParamSet::param_binding`]).
    pub fn grad_binding(&self, name: &str) -> Result<wgpu::BufferBinding<'_>> {
        self.binding(name, ArenaBuffer::grads, self.precision.bytes())
    }

    /// Binding of one tensor's f32 master weights in an f16 set; fails with
    /// [`Error::WrongPrecision`] in an f32 set, whose [`ParamSet::param_binding`] is the
    /// master.
    pub fn master_binding(&self, name: &str) -> Result<wgpu::BufferBinding<'_>> {
        self.check_f16()?;
        self.binding(name, |b| b.master.as_ref().unwrap_or(&b.params), 4)
    }

    fn check_f16(&self) -> Result<()> {
        match self.precision {
            Precision::F16 => Ok(()),
            actual => Err(Error::WrongPrecision {
                wanted: Precision::F16,
                actual,
            }),
        }
    }

    fn binding<'a>(
        &'a self,
        name: &str,
        which: fn(&ArenaBuffer) -> &wgpu::Buffer,
        element_bytes: u64,
    ) -> Result<wgpu::BufferBinding<'a>> {
        let t = self.layout.tensor(name)?;
        let mut bytes = t.len() as u64 * element_bytes;
        if element_bytes == 2 {
            // Tensors are 128-element aligned, so the rounded-up quad lies in the padding.
            bytes = bytes.next_multiple_of(8);
        }
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
        let (buffer, first) = self.locate(t);
        Ok(wgpu::BufferBinding {
            buffer: which(buffer),
            offset: first * element_bytes,
            size: Some(size),
        })
    }

    /// Writes a tensor's parameters (queued; takes effect at the next submit). In an f16 set
    /// the values become the master weights as they are and the f16 copy rounded to nearest
    /// even.
    pub fn upload(&self, name: &str, values: ArrayViewD<'_, f32>) -> Result<()> {
        let Some((buffer, first, data)) = self.prepare(name, values)? else {
            return Ok(());
        };
        match &buffer.master {
            Some(master) => {
                self.write_f32(master, first, &data);
                self.write_f16(&buffer.params, first, &data);
            }
            None => self.write_f32(&buffer.params, first, &data),
        }
        Ok(())
    }

    /// Writes a tensor's gradient (queued; takes effect at the next submit), rounded to
    /// nearest even in an f16 set.
    pub fn upload_grad(&self, name: &str, values: ArrayViewD<'_, f32>) -> Result<()> {
        let Some((buffer, first, data)) = self.prepare(name, values)? else {
            return Ok(());
        };
        match self.precision {
            Precision::F32 => self.write_f32(&buffer.grads, first, &data),
            Precision::F16 => self.write_f16(&buffer.grads, first, &data),
        }
        Ok(())
    }

    /// Checks the length of `values` against the tensor and finds where it goes; `None` for
    /// an empty tensor, which has nothing to write.
    fn prepare<'v>(
        &self,
        name: &str,
        values: ArrayViewD<'v, f32>,
    ) -> Result<Option<Write<'_, 'v>>> {
        let t = self.layout.tensor(name)?;
        if values.len() != t.len() {
            return Err(Error::LengthMismatch {
                tensor: name.to_owned(),
                expected: t.len(),
                actual: values.len(),
            });
        }
        if t.is_empty() {
            return Ok(None);
        }
        let (buffer, first) = self.locate(t);
        let data = match values.to_slice() {
            Some(contiguous) => Cow::Borrowed(contiguous),
            None => Cow::Owned(values.iter().copied().collect()),
        };
        Ok(Some((buffer, first, data)))
    }

    fn write_f32(&self, buffer: &wgpu::Buffer, first: u64, data: &[f32]) {
        self.ctx
            .queue()
            .write_buffer(buffer, first * 4, bytemuck::cast_slice(data));
    }

    /// Writes `data` rounded to f16. Queue writes come in whole 4-byte words, so an odd
    /// length also zeroes the padding element after the tensor.
    fn write_f16(&self, buffer: &wgpu::Buffer, first: u64, data: &[f32]) {
        let mut bits: Vec<u16> = data.iter().map(|&x| f16_bits(x)).collect();
        if bits.len() % 2 == 1 {
            bits.push(0);
        }
        self.ctx
            .queue()
            .write_buffer(buffer, first * 2, bytemuck::cast_slice(&bits));
    }

    /// Reads a tensor's parameters back, in its shape (submits and waits); in an f16 set,
    /// the f32 master weights.
    pub fn download(&self, name: &str) -> Result<ArrayD<f32>> {
        let t = self.layout.tensor(name)?;
        let (buffer, first) = self.locate(t);
        let master = buffer.master.as_ref().unwrap_or(&buffer.params);
        let data = readback::read_f32(&self.ctx, master, first * 4, t.len())?;
        shaped(t, data)
    }

    /// Reads the f16 copy of a tensor's parameters in an f16 set, widened exactly to f32
    /// (submits and waits); fails with [`Error::WrongPrecision`] in an f32 set.
    pub fn download_f16(&self, name: &str) -> Result<ArrayD<f32>> {
        self.check_f16()?;
        let t = self.layout.tensor(name)?;
        let (buffer, first) = self.locate(t);
        shaped(t, self.read_f16(&buffer.params, first, t.len())?)
    }

    /// Reads a tensor's gradient back, in its shape (submits and waits); widened exactly
    /// from f16 in an f16 set.
    pub fn download_grad(&self, name: &str) -> Result<ArrayD<f32>> {
        let t = self.layout.tensor(name)?;
        let (buffer, first) = self.locate(t);
        let data = match self.precision {
            Precision::F32 => readback::read_f32(&self.ctx, &buffer.grads, first * 4, t.len())?,
            Precision::F16 => self.read_f16(&buffer.grads, first, t.len())?,
        };
        shaped(t, data)
    }

    fn read_f16(&self, buffer: &wgpu::Buffer, first: u64, len: usize) -> Result<Vec<f32>> {
        // Copies come in whole 4-byte words: read an even number of halves.
        let bytes = len.next_multiple_of(2) as u64 * 2;
        let raw = readback::read_bytes(&self.ctx, buffer, first * 2, bytes)?;
        let bits: Vec<u16> = bytemuck::pod_collect_to_vec(&raw);
        Ok(bits[..len].iter().map(|&h| f16_to_f32(h)).collect())
    }

    /// Reads the whole parameter arena back, padding included; in an f16 set, the f32
    /// master weights.
    pub fn download_arena(&self) -> Result<Vec<f32>> {
        let mut arena = Vec::with_capacity(self.layout.arena_len());
        for b in &self.buffers {
            let master = b.master.as_ref().unwrap_or(&b.params);
            arena.extend(readback::read_f32(&self.ctx, master, 0, b.range.len())?);
        }
        Ok(arena)
    }

    /// Reads the bits of the whole f16 parameter arena of an f16 set, padding included;
    /// fails with [`Error::WrongPrecision`] in an f32 set.
    pub fn download_arena_f16(&self) -> Result<Vec<u16>> {
        self.check_f16()?;
        let mut arena = Vec::with_capacity(self.layout.arena_len());
        for b in &self.buffers {
            let raw = readback::read_bytes(&self.ctx, &b.params, 0, b.range.len() as u64 * 2)?;
            arena.extend(bytemuck::pod_collect_to_vec::<u8, u16>(&raw));
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

/// Where an upload goes (a tensor's buffer and its first element there) and what it writes.
type Write<'a, 'v> = (&'a ArenaBuffer, u64, Cow<'v, [f32]>);

fn shaped(t: &TensorInfo, data: Vec<f32>) -> Result<ArrayD<f32>> {
    ArrayD::from_shape_vec(IxDyn(t.shape()), data).map_err(|e| Error::Readback(e.to_string()))
}
