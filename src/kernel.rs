//! Plumbing shared by the optimizer kernels: step values, the ring that keeps each recorded
//! step's values apart, pipeline creation and dispatch geometry.

use wgpu::util::DeviceExt;

use crate::norm::{NormKernel, StepRings};
use crate::{Error, ParamSet, Precision, Result};

/// Smallest size given to a buffer that may be bound, so empty sets still bind.
pub(crate) const MIN_BINDING: u64 = 256;

/// Steps that may be recorded before one submit, at most; see [`crate::Optimizer::step`].
pub const STEPS_IN_FLIGHT: usize = 64;

/// Byte budget of one optimizer's ring of per-tensor step tables.
const TABLE_RING_BUDGET: u64 = 64 << 20;

/// Values of one recorded step, shared by every element; mirrors `StepUniform` in
/// `shaders/common.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct StepUniform {
    /// Learning rate.
    pub lr: f32,
    /// First decay rate (Adam beta1, momentum beta).
    pub beta1: f32,
    /// Second decay rate (Adam beta2).
    pub beta2: f32,
    /// Adam's eps.
    pub eps: f32,
    /// `1 - beta1`, rounded once from f64.
    pub one_minus_beta1: f32,
    /// `1 - beta2`, rounded once from f64.
    pub one_minus_beta2: f32,
    /// Weight decay.
    pub weight_decay: f32,
    /// AdamW's `1 - lr * weight_decay`, rounded once from f64.
    pub decay_factor: f32,
    /// Options, as bits of [`flags`].
    pub flags: u32,
    /// `1 / loss scale`, rounded once from f64; 1 when gradients are not scaled.
    pub inv_scale: f32,
    /// Largest gradient norm before clipping.
    pub max_norm: f32,
    /// Padding to a multiple of 16 bytes.
    pub pad: u32,
}

/// Bits of [`StepUniform::flags`]; mirrored by the `FLAG_` constants of `shaders/common.wgsl`.
pub mod flags {
    /// Ascend instead of descend: the gradient is negated first.
    pub const MAXIMIZE: u32 = 1;
    /// SGD keeps a momentum buffer.
    pub const MOMENTUM: u32 = 2;
    /// SGD's Nesterov update.
    pub const NESTEROV: u32 = 4;
    /// Adam uses the running maximum of the second moment.
    pub const AMSGRAD: u32 = 8;
    /// Adam's weight decay is decoupled (AdamW).
    pub const DECOUPLED: u32 = 16;
    /// A step with an inf or NaN gradient is skipped whole; step counts live on the device.
    pub const SKIP_NON_FINITE: u32 = 32;
    /// Gradients are clipped to a global norm.
    pub const CLIP: u32 = 64;

    /// Every flag with its WGSL name.
    pub const ALL: &[(&str, u32)] = &[
        ("FLAG_MAXIMIZE", MAXIMIZE),
        ("FLAG_MOMENTUM", MOMENTUM),
        ("FLAG_NESTEROV", NESTEROV),
        ("FLAG_AMSGRAD", AMSGRAD),
        ("FLAG_DECOUPLED", DECOUPLED),
        ("FLAG_SKIP_NON_FINITE", SKIP_NON_FINITE),
        ("FLAG_CLIP", CLIP),
    ];

    /// `flag` if `on`, else 0.
    pub(crate) fn when(on: bool, flag: u32) -> u32 {
        if on {
            flag
        } else {
            0
        }
    }
}

/// Per-tensor values of one recorded step; mirrors `TensorStep` in `shaders/common.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TensorStep {
    /// 1 if the tensor has a gradient this step, else 0 (it is then left untouched).
    pub has_grad: u32,
    /// Adam's `lr / (1 - beta1^t)`, from f64.
    pub step_size: f32,
    /// Adam's `sqrt(1 - beta2^t)`, from f64.
    pub bc2_sqrt: f32,
    /// 1 on the tensor's first step, else 0.
    pub first: u32,
}

/// `1 - x` in f64, rounded once to f32.
pub(crate) fn one_minus(x: f64) -> f32 {
    (1.0 - x) as f32
}

/// Creates a read-only storage buffer holding exactly `data` (zeros if it is empty, since a
/// buffer cannot be bound empty).
pub(crate) fn storage_from_slice<T: bytemuck::Pod>(
    ctx: &crate::Context,
    label: &str,
    data: &[T],
) -> wgpu::Buffer {
    let mut bytes = bytemuck::cast_slice::<T, u8>(data).to_vec();
    if bytes.is_empty() {
        bytes.resize(MIN_BINDING as usize, 0);
    }
    ctx.device()
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: &bytes,
            usage: wgpu::BufferUsages::STORAGE,
        })
}

/// Creates a zeroed f32 state arena: one buffer per arena buffer of `set`, holding the same
/// elements (state is f32 whatever the set's precision).
pub(crate) fn state_buffers(set: &ParamSet, label: &str) -> Result<Vec<wgpu::Buffer>> {
    let ctx = set.context();
    ctx.capture("optimizer state buffers", || {
        set.arena_buffers()
            .iter()
            .map(|b| {
                ctx.device().create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size: (b.range().len() as u64 * 4).max(MIN_BINDING),
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_DST
                        | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                })
            })
            .collect()
    })
}

/// Workgroup counts (x, y) covering `n` chunks within the per-dimension limit.
pub(crate) fn dispatch_size(n: u32, max_per_dim: u32) -> (u32, u32) {
    if n == 0 {
        return (0, 0);
    }
    let x = n.min(max_per_dim);
    (x, n.div_ceil(x))
}

fn storage_entry(binding: u32, read_only: bool, dynamic: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: dynamic,
            min_binding_size: None,
        },
        count: None,
    }
}

/// One dispatch: a bind group over one binding of the arena and its workgroup counts.
pub(crate) type Pass = (wgpu::BindGroup, (u32, u32));

/// One optimizer's compiled kernel, its bind groups (one per binding of the arena) and its
/// ring of step slots, all created once; recording a step only writes the slot's values and
/// encodes one dispatch per binding.
#[derive(Debug)]
pub(crate) struct StepKernel {
    pipeline: wgpu::ComputePipeline,
    passes: Vec<Pass>,
    guard: NormKernel,
    uniforms: wgpu::Buffer,
    tables: wgpu::Buffer,
    uniform_stride: u64,
    table_stride: u64,
    slots: usize,
    next_slot: usize,
    set_id: u64,
}

impl StepKernel {
    /// Compiles `source` and binds it to `set` and the optimizer's `state` arenas (bindings
    /// 5, 6, ... in order, then an f16 set's master weights at 9; each arena one buffer per arena buffer of `set`, or `None` where
    /// the shader declares state this config does not use). `bias` is the bias-correction
    /// table used when steps may be skipped (empty otherwise).
    pub fn new(
        set: &ParamSet,
        label: &'static str,
        source: &str,
        state: &[Option<&[wgpu::Buffer]>],
        bias: &[[f32; 2]],
    ) -> Result<Self> {
        let ctx = set.context();
        let limits = ctx.limits();
        let n_tensors = set.layout().tensors().len().max(1) as u64;

        let align_u = limits.min_uniform_buffer_offset_alignment as u64;
        let align_s = limits.min_storage_buffer_offset_alignment as u64;
        let uniform_stride = (std::mem::size_of::<StepUniform>() as u64).next_multiple_of(align_u);
        let table_bytes = n_tensors * std::mem::size_of::<TensorStep>() as u64;
        let table_stride = table_bytes.next_multiple_of(align_s);
        if table_stride > limits.max_storage_buffer_binding_size {
            return Err(Error::LimitExceeded {
                what: "per-step tensor table bytes",
                requested: table_stride,
                limit: limits.max_storage_buffer_binding_size,
            });
        }
        let slots = (TABLE_RING_BUDGET / table_stride).clamp(2, STEPS_IN_FLIGHT as u64) as usize;

        // Buffers: a ring of uniform slots and a ring of per-tensor tables, one slot a step.
        let (uniforms, tables) = ctx.capture(label, || {
            let ring = |label, size| {
                ctx.device().create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size,
                    usage: wgpu::BufferUsages::UNIFORM
                        | wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            };
            (
                ring("wgpu-optim step uniforms", uniform_stride * slots as u64),
                ring("wgpu-optim step tables", table_stride * slots as u64),
            )
        })?;

        // The guard passes read the same slots.
        let table_bytes = n_tensors * std::mem::size_of::<TensorStep>() as u64;
        let rings = StepRings {
            uniforms: &uniforms,
            tables: &tables,
            table_bytes,
        };
        let guard = NormKernel::new(set, &rings, bias)?;

        let (pipeline, passes) = ctx.capture(label, || {
            Self::create(set, label, source, state, &rings, guard.guard())
        })?;
        log::debug!(
            "{label}: {} bindings, {slots} step slots of {table_stride} B",
            passes.len()
        );
        Ok(Self {
            pipeline,
            passes,
            guard,
            uniforms,
            tables,
            uniform_stride,
            table_stride,
            slots,
            next_slot: 0,
            set_id: set.id(),
        })
    }

    fn create(
        set: &ParamSet,
        label: &str,
        source: &str,
        state: &[Option<&[wgpu::Buffer]>],
        rings: &StepRings<'_>,
        guard: &wgpu::Buffer,
    ) -> (wgpu::ComputePipeline, Vec<Pass>) {
        let device = set.context().device();
        let placeholder = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgpu-optim unused state"),
            size: MIN_BINDING,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });

        // Layout: uniform, work table, tensor table, gradients, parameters, state.
        let mut entries = vec![
            wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: true,
                    min_binding_size: None,
                },
                count: None,
            },
            storage_entry(1, true, false),
            storage_entry(2, true, true),
            storage_entry(3, true, false),
            storage_entry(4, false, false),
        ];
        for i in 0..state.len() {
            entries.push(storage_entry(5 + i as u32, false, false));
        }
        entries.push(storage_entry(8, true, false));
        let precision = set.precision();
        if precision == Precision::F16 {
            entries.push(storage_entry(9, false, false));
        }
        let bind_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(label),
            entries: &entries,
        });

        // Bind groups: one per binding of the arena, fixed for the optimizer's life; only
        // the dynamic offsets of the step slot change per step.
        let max_groups = set.context().limits().max_compute_workgroups_per_dimension;
        let buffers = set.arena_buffers();
        let passes = set
            .segments()
            .iter()
            .map(|table| {
                let segment = &table.segment;
                let arena = &buffers[segment.buffer];
                let window = |buffer, bytes: u64| {
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer,
                        offset: segment.offset_in(&arena.range(), bytes),
                        size: wgpu::BufferSize::new(segment.range.len() as u64 * bytes),
                    })
                };
                let stored = precision.bytes();
                let mut resources = vec![
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: rings.uniforms,
                        offset: 0,
                        size: wgpu::BufferSize::new(std::mem::size_of::<StepUniform>() as u64),
                    }),
                    table.chunks.as_entire_binding(),
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: rings.tables,
                        offset: 0,
                        size: wgpu::BufferSize::new(rings.table_bytes),
                    }),
                    window(arena.grads(), stored),
                    window(arena.params(), stored),
                ];
                resources.extend(state.iter().map(|arena| match arena {
                    Some(buffers) => window(&buffers[segment.buffer], 4),
                    None => placeholder.as_entire_binding(),
                }));
                // Bindings 0 to 4, the state from 5, then the guard at 8.
                let mut entries: Vec<wgpu::BindGroupEntry> = resources
                    .into_iter()
                    .enumerate()
                    .map(|(i, resource)| wgpu::BindGroupEntry {
                        binding: i as u32,
                        resource,
                    })
                    .collect();
                entries.push(wgpu::BindGroupEntry {
                    binding: 8,
                    resource: guard.as_entire_binding(),
                });
                if let Some(master) = arena.master() {
                    entries.push(wgpu::BindGroupEntry {
                        binding: 9,
                        resource: window(master, 4),
                    });
                }
                let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(label),
                    layout: &bind_layout,
                    entries: &entries,
                });
                (
                    bind_group,
                    dispatch_size(segment.chunks.len() as u32, max_groups),
                )
            })
            .collect();

        // Pipeline.
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &[Some(&bind_layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        (pipeline, passes)
    }

    /// Steps that can be recorded before a submit without reusing a slot.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The guard passes and their buffer.
    pub fn guard(&self) -> &NormKernel {
        &self.guard
    }

    /// Checks that `set` is the set this kernel was bound to.
    pub fn check_set(&self, set: &ParamSet) -> Result<()> {
        if set.id() == self.set_id {
            Ok(())
        } else {
            Err(Error::WrongParamSet)
        }
    }

    /// Writes the step's values into the next slot and records one dispatch per binding.
    pub fn record(
        &mut self,
        set: &ParamSet,
        encoder: &mut wgpu::CommandEncoder,
        uniform: &StepUniform,
        table: &[TensorStep],
    ) {
        let slot = self.next_slot;
        self.next_slot = (slot + 1) % self.slots;
        if self.passes.is_empty() || table.iter().all(|t| t.has_grad == 0) {
            return;
        }

        // Step values: each recorded step gets its own slot, so steps recorded before one
        // submit keep their own learning rates and bias corrections.
        let uniform_offset = slot as u64 * self.uniform_stride;
        let table_offset = slot as u64 * self.table_stride;
        let queue = set.context().queue();
        queue.write_buffer(&self.uniforms, uniform_offset, bytemuck::bytes_of(uniform));
        queue.write_buffer(&self.tables, table_offset, bytemuck::cast_slice(table));

        // Encode: the guard passes first when the update needs the norm or the skip
        // decision, then the update, then the device's step counts.
        let offsets = [uniform_offset as u32, table_offset as u32];
        let skipping = uniform.flags & flags::SKIP_NON_FINITE != 0;
        let guarded = skipping || uniform.flags & flags::CLIP != 0;
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("wgpu-optim step"),
            timestamp_writes: None,
        });
        if guarded {
            self.guard.record_guard(&mut pass, &offsets);
        }
        pass.set_pipeline(&self.pipeline);
        for (bind_group, (x, y)) in &self.passes {
            pass.set_bind_group(0, bind_group, &offsets);
            pass.dispatch_workgroups(*x, *y, 1);
        }
        if skipping {
            self.guard.record_counts(&mut pass, &offsets);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatches_fold_into_two_dimensions_past_the_limit() {
        assert_eq!(dispatch_size(0, 65_535), (0, 0));
        assert_eq!(dispatch_size(1, 65_535), (1, 1));
        assert_eq!(dispatch_size(65_535, 65_535), (65_535, 1));
        assert_eq!(dispatch_size(65_536, 65_535), (65_535, 2));
        // Every chunk is covered, and the overshoot stays below one row.
        for n in [65_536u32, 1 << 20, 2_097_151] {
            let (x, y) = dispatch_size(n, 65_535);
            assert!(x * y >= n && x * (y - 1) < n, "{n}");
        }
    }

    #[test]
    fn one_minus_rounds_once_from_f64() {
        // In f32 arithmetic 1 - 0.9f32 is 0.100000024; PyTorch's Python float gives 0.1.
        assert_eq!(one_minus(0.9), 0.1f32);
        assert_eq!(one_minus(0.999), 0.001f32);
    }
}
