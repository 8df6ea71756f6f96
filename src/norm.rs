//! The guard passes (`shaders/norm.wgsl`): the L2 norm of the gradients, the clipping factor
//! and the non-finite test, reduced on the device; and per-tensor step counts kept on the
//! device when steps may be skipped.

use wgpu::util::DeviceExt;

use crate::kernel::{dispatch_size, Pass, StepUniform, TensorStep, MIN_BINDING};
use crate::{readback, shaders, Context, ParamSet, Precision, Result};

/// The fixed part of the guard buffer; mirrors `Guard` in `shaders/common.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GuardHeader {
    /// L2 norm of the unscaled gradients of the last guarded step (NaN if one was not finite).
    pub norm: f32,
    /// The clipping factor applied in that step (1 without clipping).
    pub clip: f32,
    /// 1 if that step was skipped.
    pub skip: u32,
    /// Steps skipped so far.
    pub skipped: u32,
    /// Word where the bias-correction table starts in the data after the header.
    pub bias_start: u32,
    /// Entries of the bias-correction table.
    pub bias_len: u32,
    /// Tensors counted.
    pub n_tensors: u32,
    /// Padding.
    pub pad: u32,
}

/// Where the guard passes read the step's values: a uniform ring and a tensor-table ring,
/// each bound with a dynamic offset and a binding size.
pub(crate) struct StepRings<'a> {
    pub uniforms: &'a wgpu::Buffer,
    pub tables: &'a wgpu::Buffer,
    pub table_bytes: u64,
}

/// Pipelines, bind groups and the guard buffer, created once.
#[derive(Debug)]
pub(crate) struct NormKernel {
    partial_sums: wgpu::ComputePipeline,
    finish: wgpu::ComputePipeline,
    count_steps: wgpu::ComputePipeline,
    // One per binding of the arena, each with its dispatch size.
    passes: Vec<Pass>,
    guard: wgpu::Buffer,
    n_tensors: usize,
    ctx: Context,
}

impl NormKernel {
    /// Builds the passes over `set`, reading step values from `rings`; `bias` is the
    /// bias-correction table ([bc1, sqrt(bc2)] for t = 0, 1, ...), empty when steps are
    /// never skipped.
    pub fn new(set: &ParamSet, rings: &StepRings<'_>, bias: &[[f32; 2]]) -> Result<Self> {
        let ctx = set.context();
        ctx.capture("gradient guard kernel", || Self::create(set, rings, bias))
    }

    /// A kernel of its own for [`ParamSet::grad_norm`]: no scaling, no clipping, no skips.
    pub fn standalone(set: &ParamSet) -> Result<Self> {
        let device = set.context().device();
        let uniform = StepUniform {
            inv_scale: 1.0,
            ..Default::default()
        };
        let mut uniform_bytes = bytemuck::bytes_of(&uniform).to_vec();
        uniform_bytes.resize(MIN_BINDING as usize, 0);
        let n_tensors = set.layout().tensors().len().max(1);
        let table = vec![TensorStep::default(); n_tensors];
        let init = |label, contents: &[u8], usage| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage,
            })
        };
        let uniforms = init(
            "wgpu-optim norm uniform",
            &uniform_bytes,
            wgpu::BufferUsages::UNIFORM,
        );
        let tables = init(
            "wgpu-optim norm table",
            bytemuck::cast_slice(&table),
            wgpu::BufferUsages::STORAGE,
        );
        let rings = StepRings {
            uniforms: &uniforms,
            tables: &tables,
            table_bytes: tables.size(),
        };
        Self::new(set, &rings, &[])
    }

    fn create(set: &ParamSet, rings: &StepRings<'_>, bias: &[[f32; 2]]) -> Self {
        let ctx = set.context();
        let device = ctx.device();
        let n_chunks = set.layout().chunks().len() as u64;
        let n_tensors = set.layout().tensors().len();

        // Buffers: one partial sum per chunk of the set; the guard with its header, step
        // counts and bias table.
        let partials = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgpu-optim norm partials"),
            size: (n_chunks * 4).max(MIN_BINDING),
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        // Room for any table when steps may be skipped, so new betas can replace it.
        let capacity = if bias.is_empty() {
            0
        } else {
            crate::optim::BIAS_CAPACITY.max(bias.len())
        };
        let bias = if bias.is_empty() {
            &[[1.0, 1.0]][..]
        } else {
            bias
        };
        let header = GuardHeader {
            bias_start: n_tensors as u32,
            bias_len: bias.len() as u32,
            n_tensors: n_tensors as u32,
            clip: 1.0,
            ..Default::default()
        };
        let mut contents = bytemuck::bytes_of(&header).to_vec();
        contents.extend(std::iter::repeat_n(0u8, n_tensors * 4));
        contents.extend_from_slice(bytemuck::cast_slice(bias));
        contents.resize(
            contents.len() + (capacity.saturating_sub(bias.len())) * 8,
            0,
        );
        let guard = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("wgpu-optim guard"),
            contents: &contents,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
        });

        // Layout shared by the three passes.
        let entry = |binding, ty, has_dynamic_offset| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty,
                has_dynamic_offset,
                min_binding_size: None,
            },
            count: None,
        };
        let storage = |read_only| wgpu::BufferBindingType::Storage { read_only };
        let uniform = wgpu::BufferBindingType::Uniform;
        let bind_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("wgpu-optim guard"),
            entries: &[
                entry(0, uniform, true),
                entry(1, storage(true), false),
                entry(2, storage(true), true),
                entry(3, storage(true), false),
                entry(5, storage(false), false),
                entry(6, uniform, false),
                entry(8, storage(false), false),
            ],
        });

        // Bind groups: one per binding of the arena, each with its first chunk's index.
        let max_groups = ctx.limits().max_compute_workgroups_per_dimension;
        let buffers = set.arena_buffers();
        let passes = set
            .segments()
            .iter()
            .map(|table| {
                let segment = &table.segment;
                let buffer = &buffers[segment.buffer];
                let base = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("wgpu-optim norm chunk base"),
                    contents: bytemuck::cast_slice(&[segment.chunks.start as u32, 0, 0, 0]),
                    usage: wgpu::BufferUsages::UNIFORM,
                });
                let window = |buffer, offset, size| {
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer,
                        offset,
                        size: wgpu::BufferSize::new(size),
                    })
                };
                let resources = [
                    (
                        0,
                        window(rings.uniforms, 0, std::mem::size_of::<StepUniform>() as u64),
                    ),
                    (1, table.chunks.as_entire_binding()),
                    (2, window(rings.tables, 0, rings.table_bytes)),
                    (
                        3,
                        window(
                            buffer.grads(),
                            segment.offset_in(&buffer.range(), set.precision().bytes()),
                            segment.range.len() as u64 * set.precision().bytes(),
                        ),
                    ),
                    (5, partials.as_entire_binding()),
                    (6, base.as_entire_binding()),
                    (8, guard.as_entire_binding()),
                ];
                let entries: Vec<wgpu::BindGroupEntry> = resources
                    .into_iter()
                    .map(|(binding, resource)| wgpu::BindGroupEntry { binding, resource })
                    .collect();
                let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("wgpu-optim guard"),
                    layout: &bind_layout,
                    entries: &entries,
                });
                (
                    bind_group,
                    dispatch_size(segment.chunks.len() as u32, max_groups),
                )
            })
            .collect();

        // Pipelines.
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("wgpu-optim guard"),
            source: wgpu::ShaderSource::Wgsl(
                match set.precision() {
                    Precision::F32 => shaders::NORM,
                    Precision::F16 => shaders::NORM_F16,
                }
                .into(),
            ),
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("wgpu-optim guard"),
            bind_group_layouts: &[Some(&bind_layout)],
            immediate_size: 0,
        });
        let pipeline = |entry_point| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry_point),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry_point),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        log::debug!(
            "guard kernel: {n_chunks} chunks, {} bias entries",
            bias.len()
        );

        Self {
            partial_sums: pipeline("partial_sums"),
            finish: pipeline("finish"),
            count_steps: pipeline("count_steps"),
            passes,
            guard,
            n_tensors,
            ctx: ctx.clone(),
        }
    }

    /// The guard buffer (header, then step counts and the bias table).
    pub fn guard(&self) -> &wgpu::Buffer {
        &self.guard
    }

    /// Records the norm, clipping factor and skip decision of a step whose values sit at
    /// `offsets` (uniform slot, tensor-table slot).
    pub fn record_guard(&self, pass: &mut wgpu::ComputePass<'_>, offsets: &[u32; 2]) {
        let Some((first, _)) = self.passes.first() else {
            return;
        };
        pass.set_pipeline(&self.partial_sums);
        for (bind_group, (x, y)) in &self.passes {
            pass.set_bind_group(0, bind_group, offsets);
            pass.dispatch_workgroups(*x, *y, 1);
        }
        pass.set_pipeline(&self.finish);
        pass.set_bind_group(0, first, offsets);
        pass.dispatch_workgroups(1, 1, 1);
    }

    /// Records the advance of the device's step counts after the update.
    pub fn record_counts(&self, pass: &mut wgpu::ComputePass<'_>, offsets: &[u32; 2]) {
        let Some((first, _)) = self.passes.first() else {
            return;
        };
        pass.set_pipeline(&self.count_steps);
        pass.set_bind_group(0, first, offsets);
        pass.dispatch_workgroups((self.n_tensors as u32).div_ceil(256).max(1), 1, 1);
    }

    /// The header as the last executed guard pass left it.
    pub fn read_header(&self, ctx: &Context) -> Result<GuardHeader> {
        if self.passes.is_empty() {
            return Ok(GuardHeader::default());
        }
        let bytes = readback::read_bytes(ctx, &self.guard, 0, 32)?;
        Ok(bytemuck::pod_read_unaligned(&bytes))
    }

    /// The step counts kept on the device.
    pub fn read_counts(&self, ctx: &Context) -> Result<Vec<u64>> {
        let bytes = readback::read_bytes(ctx, &self.guard, 32, self.n_tensors as u64 * 4)?;
        let counts: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
        Ok(counts.into_iter().map(u64::from).collect())
    }

    /// Sets the device's step counts (queued, so it lands before the next submitted step).
    pub fn write_counts(&self, counts: &[u64]) {
        let counts: Vec<u32> = counts
            .iter()
            .map(|&t| t.min(u32::MAX as u64) as u32)
            .collect();
        if !counts.is_empty() {
            self.ctx
                .queue()
                .write_buffer(&self.guard, 32, bytemuck::cast_slice(&counts));
        }
    }

    /// Replaces the bias-correction table (queued; at most `BIAS_CAPACITY` entries, which
    /// the guard holds whenever it has a table at all).
    pub fn write_bias(&self, bias: &[[f32; 2]]) {
        let at = 32 + self.n_tensors as u64 * 4;
        let queue = self.ctx.queue();
        queue.write_buffer(&self.guard, at, bytemuck::cast_slice(bias));
        // The header's bias_len, so steps past the new table read its last entry.
        let len = [bias.len() as u32];
        queue.write_buffer(&self.guard, 20, bytemuck::cast_slice(&len));
    }

    /// Norm alone, for [`ParamSet::record_grad_norm`].
    pub fn record(&self, encoder: &mut wgpu::CommandEncoder) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("wgpu-optim grad norm"),
            timestamp_writes: None,
        });
        self.record_guard(&mut pass, &[0, 0]);
    }

    /// The last norm computed; a set without elements has norm 0.
    pub fn read(&self, ctx: &Context) -> Result<f32> {
        Ok(self.read_header(ctx)?.norm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header's fields sit where `Guard` in `shaders/common.wgsl` has them.
    #[test]
    fn guard_header_mirrors_the_shader() {
        let module = naga::front::wgsl::parse_str(shaders::NORM).unwrap();
        let (_, ty) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some("Guard"))
            .unwrap();
        let naga::TypeInner::Struct { members, .. } = &ty.inner else {
            panic!("Guard is not a struct");
        };
        let offsets: Vec<(String, u32)> = members
            .iter()
            .map(|m| (m.name.clone().unwrap_or_default(), m.offset))
            .collect();
        let rust = [
            ("norm", std::mem::offset_of!(GuardHeader, norm)),
            ("clip", std::mem::offset_of!(GuardHeader, clip)),
            ("skip", std::mem::offset_of!(GuardHeader, skip)),
            ("skipped", std::mem::offset_of!(GuardHeader, skipped)),
            ("bias_start", std::mem::offset_of!(GuardHeader, bias_start)),
            ("bias_len", std::mem::offset_of!(GuardHeader, bias_len)),
            ("n_tensors", std::mem::offset_of!(GuardHeader, n_tensors)),
            ("pad", std::mem::offset_of!(GuardHeader, pad)),
            ("data", std::mem::size_of::<GuardHeader>()),
        ];
        let rust: Vec<(String, u32)> = rust
            .iter()
            .map(|(n, o)| (n.to_string(), *o as u32))
            .collect();
        assert_eq!(offsets, rust);
    }
}
