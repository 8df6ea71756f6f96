//! The model's passes on the GPU: buffers, the `mlp.wgsl` pipelines and their recording.
//!
//! Gradients are written straight into the parameter set's gradient arena, so a training step
//! is forward, backward and the optimizer's update recorded into one encoder.

use std::error::Error;
use std::ops::Range;

use wgpu::util::DeviceExt;
use wgpu_optim::{Context, ParamSet};

use crate::data::{Split, N_FEATURES};
use crate::model::{grad_scale, mse, Model, Positions};

const WORKGROUP_SIZE: u32 = 64;

/// A run of positions for one pass; mirrors `Run` in `mlp.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Run {
    start: u32,
    count: u32,
    scale: f32,
    _pad: u32,
}

impl Run {
    fn new(positions: Range<usize>) -> Self {
        Self {
            start: positions.start as u32,
            count: positions.len() as u32,
            scale: grad_scale(positions.len()),
            _pad: 0,
        }
    }
}

/// Buffers, pipelines and the bind group of the model, created once for all optimizers.
pub struct GpuModel {
    ctx: Context,
    forward: wgpu::ComputePipeline,
    backward: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    indices: wgpu::Buffer,
    residuals: wgpu::Buffer,
    staging: wgpu::Buffer,
    /// Byte distance between two runs in the uniform ring.
    run_stride: u64,
    /// Each run's position count, in ring order: the batches, then evaluation, then the
    /// full-batch gradient.
    run_counts: Vec<u32>,
    n_params: u32,
    n_train: usize,
    eval: Range<usize>,
}

impl GpuModel {
    pub fn new(
        set: &ParamSet,
        model: Model,
        split: &Split,
        positions: &Positions,
    ) -> Result<Self, Box<dyn Error>> {
        let ctx = set.context().clone();
        let device = ctx.device();
        let limits = ctx.limits();
        let hidden_bytes = (positions.len() * model.hidden * 4) as u64;
        if hidden_bytes > limits.max_storage_buffer_binding_size {
            return Err(format!(
                "{hidden_bytes} bytes of hidden activations exceed the device's \
                 storage binding limit; use a smaller --hidden"
            )
            .into());
        }

        // Buffers: data and the position list, which is rewritten with each epoch's order.
        let features = [&split.train.features[..], &split.test.features[..]].concat();
        let targets = [&split.train.targets[..], &split.test.targets[..]].concat();
        let init = |label, contents: &[u8], usage| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage,
            })
        };
        let storage = wgpu::BufferUsages::STORAGE;
        let features = init("features", bytemuck::cast_slice(&features), storage);
        let targets = init("targets", bytemuck::cast_slice(&targets), storage);
        let indices = init(
            "indices",
            bytemuck::cast_slice(&positions.initial()),
            storage | wgpu::BufferUsages::COPY_DST,
        );

        // Buffers: scratch per position, and a host-readable copy of the evaluation residuals.
        let scratch = |label, len: usize, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: (len * 4) as u64,
                usage,
                mapped_at_creation: false,
            })
        };
        let hidden = scratch("hidden", positions.len() * model.hidden, storage);
        let residuals = scratch(
            "residuals",
            positions.len(),
            storage | wgpu::BufferUsages::COPY_SRC,
        );
        let eval = positions.eval();
        let staging = scratch(
            "residuals staging",
            eval.len(),
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );

        // Buffers: one uniform slot per run, written once; the epoch's order lives in
        // `indices`, so batch b always covers the same positions and only a dynamic offset
        // changes between the passes recorded into one encoder.
        let runs: Vec<Run> = positions
            .batches()
            .into_iter()
            .chain([eval.clone(), positions.train()])
            .map(Run::new)
            .collect();
        let run_stride = (std::mem::size_of::<Run>() as u64)
            .next_multiple_of(limits.min_uniform_buffer_offset_alignment.into());
        let mut ring = vec![0u8; runs.len() * run_stride as usize];
        for (slot, run) in ring.chunks_exact_mut(run_stride as usize).zip(&runs) {
            slot[..std::mem::size_of::<Run>()].copy_from_slice(bytemuck::bytes_of(run));
        }
        let ring = init("runs", &ring, wgpu::BufferUsages::UNIFORM);

        // Layout: the run, read-only data and parameters, then scratch and gradients.
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
        let read = wgpu::BufferBindingType::Storage { read_only: true };
        let write = wgpu::BufferBindingType::Storage { read_only: false };
        let bind_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("mlp"),
            entries: &[
                entry(0, wgpu::BufferBindingType::Uniform, true),
                entry(1, read, false),
                entry(2, read, false),
                entry(3, read, false),
                entry(4, read, false),
                entry(5, write, false),
                entry(6, write, false),
                entry(7, write, false),
            ],
        });

        // Bind group: the whole arenas (the model is small, so one buffer holds every
        // tensor); tensors are found by the offsets baked into the pipelines.
        let arena = &set.arena_buffers()[0];
        let run_binding = wgpu::BufferBinding {
            buffer: &ring,
            offset: 0,
            size: wgpu::BufferSize::new(std::mem::size_of::<Run>() as u64),
        };
        let resources = [
            wgpu::BindingResource::Buffer(run_binding),
            features.as_entire_binding(),
            targets.as_entire_binding(),
            indices.as_entire_binding(),
            arena.params().as_entire_binding(),
            hidden.as_entire_binding(),
            residuals.as_entire_binding(),
            arena.grads().as_entire_binding(),
        ];
        let entries: Vec<_> = resources
            .into_iter()
            .enumerate()
            .map(|(binding, resource)| wgpu::BindGroupEntry {
                binding: binding as u32,
                resource,
            })
            .collect();
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("mlp"),
            layout: &bind_layout,
            entries: &entries,
        });

        // Pipelines: the shape and the tensor offsets are override constants.
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("mlp"),
            source: wgpu::ShaderSource::Wgsl(include_str!("mlp.wgsl").into()),
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("mlp"),
            bind_group_layouts: &[Some(&bind_layout)],
            immediate_size: 0,
        });
        let constants = [
            ("N_FEATURES", N_FEATURES as f64),
            ("HIDDEN", model.hidden as f64),
            ("OFFSET_W1", model.w1 as f64),
            ("OFFSET_B1", model.b1 as f64),
            ("OFFSET_W2", model.w2 as f64),
            ("OFFSET_B2", model.b2 as f64),
        ];
        let pipeline = |entry_point| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry_point),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry_point),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &constants,
                    ..Default::default()
                },
                cache: None,
            })
        };

        Ok(Self {
            forward: pipeline("forward"),
            backward: pipeline("backward"),
            bind_group,
            indices,
            residuals,
            staging,
            run_stride,
            run_counts: runs.iter().map(|r| r.count).collect(),
            n_params: model.n_params() as u32,
            n_train: positions.n_train,
            eval,
            ctx,
        })
    }

    /// Writes the epoch's shuffled training order (queued; in effect at the next submit, after
    /// every pass submitted before it).
    pub fn set_order(&self, order: &[u32]) {
        self.ctx
            .queue()
            .write_buffer(&self.indices, 0, bytemuck::cast_slice(order));
    }

    /// Records forward and backward of minibatch `batch`, leaving its gradient in the set.
    pub fn record_batch(&self, encoder: &mut wgpu::CommandEncoder, batch: usize) {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        self.forward_backward(&mut pass, batch, batch);
    }

    /// Records a forward pass over both splits, the full-batch training gradient and its norm,
    /// and the copy of the residuals that [`GpuModel::read_losses`] maps.
    pub fn record_eval(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        set: &ParamSet,
    ) -> wgpu_optim::Result<()> {
        let eval = self.run_counts.len() - 2;
        let full_batch = self.run_counts.len() - 1;

        // Forward and backward in one pass; wgpu orders the dispatches through their buffers.
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.forward_backward(&mut pass, eval, full_batch);
        }

        // Norm of the full-batch gradient, reduced by the library on the device.
        set.record_grad_norm(encoder)?;

        // Residuals of both splits to the staging buffer.
        encoder.copy_buffer_to_buffer(
            &self.residuals,
            self.eval.start as u64 * 4,
            &self.staging,
            0,
            self.staging.size(),
        );
        Ok(())
    }

    /// Maps the residuals copied by the last submitted [`GpuModel::record_eval`] and returns the
    /// training and test losses.
    pub fn read_losses(&self) -> Result<(f64, f64), Box<dyn Error>> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.ctx.wait_idle()?;
        rx.recv()??;

        let view = self.staging.get_mapped_range(..)?;
        let residuals: &[f32] = bytemuck::cast_slice(&view);
        let (train, test) = residuals.split_at(self.n_train);
        let losses = (mse(train), mse(test));
        drop(view);
        self.staging.unmap();
        Ok(losses)
    }

    /// Forward over run `forward`, then backward over run `backward`, whose positions the
    /// forward run must cover.
    fn forward_backward(&self, pass: &mut wgpu::ComputePass<'_>, forward: usize, backward: usize) {
        pass.set_bind_group(0, &self.bind_group, &[self.run_offset(forward)]);
        pass.set_pipeline(&self.forward);
        pass.dispatch_workgroups(self.run_counts[forward].div_ceil(WORKGROUP_SIZE), 1, 1);

        pass.set_bind_group(0, &self.bind_group, &[self.run_offset(backward)]);
        pass.set_pipeline(&self.backward);
        pass.dispatch_workgroups(self.n_params.div_ceil(WORKGROUP_SIZE), 1, 1);
    }

    fn run_offset(&self, run: usize) -> u32 {
        (run as u64 * self.run_stride) as u32
    }
}
