//! Blocking reads of device buffers, for tests, examples and checkpoints (never inside a step).

use crate::{Context, Error, Result};

/// Copies `len` f32 values starting at byte `offset` of `buffer` to the host.
pub(crate) fn read_f32(
    ctx: &Context,
    buffer: &wgpu::Buffer,
    offset: u64,
    len: usize,
) -> Result<Vec<f32>> {
    Ok(bytemuck::pod_collect_to_vec(&read_bytes(
        ctx,
        buffer,
        offset,
        len as u64 * 4,
    )?))
}

/// Copies `bytes` bytes (a multiple of 4) starting at byte `offset` of `buffer` to the host.
pub(crate) fn read_bytes(
    ctx: &Context,
    buffer: &wgpu::Buffer,
    offset: u64,
    bytes: u64,
) -> Result<Vec<u8>> {
    if bytes == 0 {
        return Ok(Vec::new());
    }

    // Staging buffer the host can map.
    let staging = ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("wgpu-optim readback"),
        size: bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });

    // Copy, submit, map, wait.
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(buffer, offset, &staging, 0, bytes);
    ctx.queue().submit([encoder.finish()]);
    let (tx, rx) = std::sync::mpsc::channel();
    staging.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    ctx.wait_idle()?;
    rx.recv()
        .map_err(|e| Error::Readback(e.to_string()))?
        .map_err(|e| Error::Readback(e.to_string()))?;

    let view = staging
        .get_mapped_range(..)
        .map_err(|e| Error::Readback(e.to_string()))?;
    let values = view.to_vec();
    drop(view);
    staging.unmap();
    Ok(values)
}
