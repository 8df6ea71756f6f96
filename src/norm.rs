//! The L2 norm of all gradients of a set, reduced on the device.

use crate::kernel::{dispatch_size, MIN_BINDING};
use crate::{readback, shaders, Context, ParamSet, Result};

/// Pipelines and buffers of the two-pass reduction, created on first use of a set's norm.
#[derive(Debug)]
pub(crate) struct NormKernel {
    partial_sums: wgpu::ComputePipeline,
    finish: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    norm: wgpu::Buffer,
    dispatch: (u32, u32),
}

impl NormKernel {
    pub fn new(set: &ParamSet) -> Self {
        let ctx = set.context();
        let device = ctx.device();
        let n_chunks = set.layout().chunks().len() as u32;

        // Buffers: one partial sum per chunk, then the norm itself.
        let storage = |label, size: u64| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: size.max(MIN_BINDING),
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        };
        let partials = storage("wgpu-optim norm partials", n_chunks as u64 * 4);
        let norm = storage("wgpu-optim norm", 4);

        // Layout and bind group shared by both passes.
        let entry = |binding, read_only| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let bind_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("wgpu-optim norm"),
            entries: &[
                entry(0, true),
                entry(1, true),
                entry(2, false),
                entry(3, false),
            ],
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("wgpu-optim norm"),
            layout: &bind_layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: set.chunk_buffer().as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: set.grad_buffer().as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: partials.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: norm.as_entire_binding(),
                },
            ],
        });

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
            bind_group,
            norm,
            dispatch: dispatch_size(n_chunks, ctx.limits().max_compute_workgroups_per_dimension),
        }
    }

    pub fn record(&self, encoder: &mut wgpu::CommandEncoder) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("wgpu-optim grad norm"),
            timestamp_writes: None,
        });
        pass.set_bind_group(0, &self.bind_group, &[]);
        if self.dispatch.0 > 0 {
            pass.set_pipeline(&self.partial_sums);
            pass.dispatch_workgroups(self.dispatch.0, self.dispatch.1, 1);
        }
        pass.set_pipeline(&self.finish);
        pass.dispatch_workgroups(1, 1, 1);
    }

    pub fn read(&self, ctx: &Context) -> Result<f32> {
        Ok(readback::read_f32(ctx, &self.norm, 0, 1)?[0])
    }
}
