//! The L2 norm of all gradients of a set, reduced on the device.

use wgpu::util::DeviceExt;

use crate::kernel::{dispatch_size, MIN_BINDING};
use crate::{readback, shaders, Context, ParamSet, Result};

/// Pipelines, bind groups and buffers of the two-pass reduction, created on first use.
#[derive(Debug)]
pub(crate) struct NormKernel {
    partial_sums: wgpu::ComputePipeline,
    finish: wgpu::ComputePipeline,
    // One per binding of the arena, each with its dispatch size.
    passes: Vec<(wgpu::BindGroup, (u32, u32))>,
    norm: wgpu::Buffer,
}

impl NormKernel {
    pub fn new(set: &ParamSet) -> Result<Self> {
        let ctx = set.context();
        ctx.capture("gradient norm kernel", || Self::create(set))
    }

    fn create(set: &ParamSet) -> Self {
        let ctx = set.context();
        let device = ctx.device();
        let n_chunks = set.layout().chunks().len() as u64;

        // Buffers: one partial sum per chunk of the set, then the norm itself.
        let storage = |label, size: u64| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: size.max(MIN_BINDING),
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        };
        let partials = storage("wgpu-optim norm partials", n_chunks * 4);
        let norm = storage("wgpu-optim norm", 4);

        // Layout shared by both passes: chunks, gradients, partials, norm, chunk base.
        let storage_entry = |binding, read_only| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let uniform_entry = wgpu::BindGroupLayoutEntry {
            binding: 4,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let bind_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("wgpu-optim norm"),
            entries: &[
                storage_entry(0, true),
                storage_entry(1, true),
                storage_entry(2, false),
                storage_entry(3, false),
                uniform_entry,
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
                let grads = wgpu::BufferBinding {
                    buffer: buffer.grads(),
                    offset: segment.offset_in(&buffer.range()),
                    size: wgpu::BufferSize::new(segment.range.len() as u64 * 4),
                };
                let resources = [
                    table.chunks.as_entire_binding(),
                    wgpu::BindingResource::Buffer(grads),
                    partials.as_entire_binding(),
                    norm.as_entire_binding(),
                    base.as_entire_binding(),
                ];
                let entries: Vec<wgpu::BindGroupEntry> = resources
                    .into_iter()
                    .enumerate()
                    .map(|(i, resource)| wgpu::BindGroupEntry {
                        binding: i as u32,
                        resource,
                    })
                    .collect();
                let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("wgpu-optim norm"),
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
            label: Some("wgpu-optim norm"),
            source: wgpu::ShaderSource::Wgsl(shaders::NORM.into()),
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("wgpu-optim norm"),
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
        log::debug!("norm kernel: {n_chunks} chunks");

        Self {
            partial_sums: pipeline("partial_sums"),
            finish: pipeline("finish"),
            passes,
            norm,
        }
    }

    pub fn record(&self, encoder: &mut wgpu::CommandEncoder) {
        let Some((first, _)) = self.passes.first() else {
            return;
        };
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("wgpu-optim grad norm"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.partial_sums);
        for (bind_group, (x, y)) in &self.passes {
            pass.set_bind_group(0, bind_group, &[]);
            pass.dispatch_workgroups(*x, *y, 1);
        }
        pass.set_pipeline(&self.finish);
        pass.set_bind_group(0, first, &[]);
        pass.dispatch_workgroups(1, 1, 1);
    }

    /// The last norm computed; a set without elements has norm 0.
    pub fn read(&self, ctx: &Context) -> Result<f32> {
        if self.passes.is_empty() {
            return Ok(0.0);
        }
        Ok(readback::read_f32(ctx, &self.norm, 0, 1)?[0])
    }
}
