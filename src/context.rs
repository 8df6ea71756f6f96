//! Adapter and device selection, or adoption of a caller's device.

use crate::{Error, Result};

/// A wgpu device and queue together with what the crate needs to know about them.
///
/// Cloning is cheap: wgpu handles are reference counted.
#[derive(Clone, Debug)]
pub struct Context {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
}

impl Context {
    /// Picks an adapter and opens a device on it with the adapter's full limits.
    ///
    /// wgpu's environment variables are honoured: `WGPU_BACKEND` (for example `vulkan` or
    /// `gl`), `WGPU_ADAPTER_NAME` (a case-insensitive substring of the adapter name) and
    /// `WGPU_POWER_PREF` (`low` or `high`).
    pub fn new() -> Result<Self> {
        pollster::block_on(Self::new_async())
    }

    /// The asynchronous form of [`Context::new`].
    pub async fn new_async() -> Result<Self> {
        let instance = instance_from_env();
        let adapter = match std::env::var("WGPU_ADAPTER_NAME") {
            Ok(wanted) => {
                let wanted_lower = wanted.to_lowercase();
                let adapters = instance.enumerate_adapters(wgpu::Backends::all()).await;
                adapters
                    .into_iter()
                    .find(|a| a.get_info().name.to_lowercase().contains(&wanted_lower))
                    .ok_or(Error::NoAdapter {
                        detail: format!(" whose name contains `{wanted}` (WGPU_ADAPTER_NAME)"),
                    })?
            }
            Err(_) => instance
                .request_adapter(&wgpu::RequestAdapterOptions {
                    power_preference: wgpu::PowerPreference::from_env().unwrap_or_default(),
                    ..Default::default()
                })
                .await
                .map_err(|e| Error::NoAdapter {
                    detail: format!(" ({e})"),
                })?,
        };
        Self::from_adapter_async(adapter).await
    }

    /// Every adapter wgpu can see on the backends `WGPU_BACKEND` allows (all by default).
    pub fn enumerate_adapters() -> Vec<wgpu::Adapter> {
        let instance = instance_from_env();
        let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
        pollster::block_on(instance.enumerate_adapters(backends))
    }

    /// Opens a device on `adapter`, requesting the adapter's own limits rather than wgpu's
    /// conservative defaults (128 MiB storage bindings, 256 MiB buffers).
    pub fn from_adapter(adapter: wgpu::Adapter) -> Result<Self> {
        pollster::block_on(Self::from_adapter_async(adapter))
    }

    /// The asynchronous form of [`Context::from_adapter`].
    pub async fn from_adapter_async(adapter: wgpu::Adapter) -> Result<Self> {
        let info = adapter.get_info();
        let limits = adapter.limits();
        // Timestamps let the benchmarks time the device itself; f16 shaders are what f16
        // parameter sets need. Both only where the adapter has them.
        let wanted = wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
            | wgpu::Features::SHADER_F16;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wgpu-optim"),
                required_limits: limits.clone(),
                required_features: adapter.features() & wanted,
                ..Default::default()
            })
            .await
            .map_err(|source| Error::RequestDevice {
                adapter: info.name.clone(),
                source,
            })?;
        log::debug!(
            "opened {} ({:?}); storage binding {} B, buffer {} B",
            info.name,
            info.backend,
            limits.max_storage_buffer_binding_size,
            limits.max_buffer_size
        );
        Ok(Self::from_device(device, queue, info))
    }

    /// Adopts a device and queue the caller already has; the crate then works within the
    /// limits that device was created with.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo) -> Self {
        let limits = device.limits();
        Self {
            device,
            queue,
            info,
            limits,
        }
    }

    /// The device.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// Name, backend and driver of the adapter.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// The limits the device was created with.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// Whether the device can run f16 shaders, which f16 parameter sets need
    /// ([`ParamSet::new_f16`](crate::ParamSet::new_f16)).
    pub fn supports_f16(&self) -> bool {
        self.device.features().contains(wgpu::Features::SHADER_F16)
    }

    /// A one-line description such as `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan)`.
    pub fn describe(&self) -> String {
        format!("{} ({:?})", self.info.name, self.info.backend)
    }

    /// Blocks until all submitted work is done.
    pub fn wait_idle(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::Readback(e.to_string()))
    }
}

impl Context {
    /// Runs `create` with the device's errors captured, so that running out of memory or a
    /// rejected descriptor becomes a typed error instead of wgpu's default panic.
    pub(crate) fn capture<T>(&self, what: &'static str, create: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = create();
        let rejected = pollster::block_on(validation.pop());
        let exhausted = pollster::block_on(oom.pop());
        match (rejected, exhausted) {
            (_, Some(_)) => Err(Error::OutOfMemory { what }),
            (Some(e), None) => Err(Error::Device {
                what,
                message: e.to_string(),
            }),
            (None, None) => Ok(value),
        }
    }
}

fn instance_from_env() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}
