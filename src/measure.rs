//! Measuring tools for the benchmarks and the report: a device timer and a plain copy kernel
//! as the bandwidth yardstick.

use std::time::{Duration, Instant};

use crate::kernel::{dispatch_size, MIN_BINDING};
use crate::{readback, shaders, Context, Error, Result};

/// Times recorded GPU work with timestamp queries where the device has them, else with the
/// wall clock around submit and a blocking wait.
#[derive(Debug)]
pub struct GpuTimer {
    queries: Option<(wgpu::QuerySet, wgpu::Buffer)>,
}

impl GpuTimer {
    /// A timer for `ctx`'s device.
    pub fn new(ctx: &Context) -> Self {
        let features = ctx.device().features();
        let wanted =
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS;
        let queries = features.contains(wanted).then(|| {
            let device = ctx.device();
            let set = device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("wgpu-optim timer"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            });
            let resolve = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgpu-optim timer"),
                size: MIN_BINDING,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            (set, resolve)
        });
        Self { queries }
    }

    /// Whether times come from the device's timestamps rather than the wall clock.
    pub fn uses_timestamps(&self) -> bool {
        self.queries.is_some()
    }

    /// Time per iteration of `record`, run `iters` times with a submit every `per_submit`
    /// iterations (for optimizers, at most their steps in flight).
    pub fn time(
        &self,
        ctx: &Context,
        iters: usize,
        per_submit: usize,
        mut record: impl FnMut(&mut wgpu::CommandEncoder) -> Result<()>,
    ) -> Result<Duration> {
        let iters = iters.max(1);
        let per_submit = per_submit.max(1);
        ctx.wait_idle()?;
        let started = Instant::now();
        let mut done = 0;
        while done < iters {
            let mut encoder = ctx.device().create_command_encoder(&Default::default());
            if let (0, Some((set, _))) = (done, &self.queries) {
                encoder.write_timestamp(set, 0);
            }
            let batch = per_submit.min(iters - done);
            for _ in 0..batch {
                record(&mut encoder)?;
            }
            done += batch;
            if let (true, Some((set, resolve))) = (done == iters, &self.queries) {
                encoder.write_timestamp(set, 1);
                encoder.resolve_query_set(set, 0..2, resolve, 0);
            }
            ctx.queue().submit([encoder.finish()]);
        }
        ctx.wait_idle()?;
        let wall = started.elapsed();

        let Some((_, resolve)) = &self.queries else {
            return Ok(wall / iters as u32);
        };
        let bytes = readback::read_bytes(ctx, resolve, 0, 16)?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes);
        let period = ctx.queue().get_timestamp_period() as f64;
        let nanos = ticks[1].saturating_sub(ticks[0]) as f64 * period;
        Ok(Duration::from_nanos((nanos / iters as f64) as u64))
    }
}

/// `dst <- src` over `len` f32, four at a time: the memory traffic of an optimizer without
/// its arithmetic.
#[derive(Debug)]
pub struct CopyKernel {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    dispatch: (u32, u32),
    len: usize,
}

impl CopyKernel {
    /// Allocates two buffers of `len` f32 (a multiple of 4, within one storage binding) and
    /// compiles the kernel.
    pub fn new(ctx: &Context, len: usize) -> Result<Self> {
        let bytes = len as u64 * 4;
        let limit = ctx.limits().max_storage_buffer_binding_size;
        if bytes > limit || !len.is_multiple_of(4) || len == 0 {
            return Err(Error::LimitExceeded {
                what: "copy kernel bytes (a non-zero multiple of 16 within one binding)",
                requested: bytes,
                limit,
            });
        }
        ctx.capture("copy kernel", || {
            let device = ctx.device();
            let buffer = |label| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size: bytes,
                    usage: wgpu::BufferUsages::STORAGE,
                    mapped_at_creation: false,
                })
            };
            let (src, dst) = (buffer("wgpu-optim copy src"), buffer("wgpu-optim copy dst"));
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("wgpu-optim copy"),
                source: wgpu::ShaderSource::Wgsl(shaders::COPY.into()),
            });
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("wgpu-optim copy"),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("wgpu-optim copy"),
                layout: &pipeline.get_bind_group_layout(0),
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: src.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: dst.as_entire_binding(),
                    },
                ],
            });
            let groups = (len / 4).div_ceil(1024) as u32;
            let max = ctx.limits().max_compute_workgroups_per_dimension;
            Self {
                pipeline,
                bind_group,
                dispatch: dispatch_size(groups, max),
                len,
            }
        })
    }

    /// Elements copied per dispatch.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a copy kernel has at least one quad.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes moved per dispatch (read and written).
    pub fn bytes(&self) -> u64 {
        self.len as u64 * 8
    }

    /// Records one copy.
    pub fn record(&self, encoder: &mut wgpu::CommandEncoder) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("wgpu-optim copy"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(self.dispatch.0, self.dispatch.1, 1);
    }
}
