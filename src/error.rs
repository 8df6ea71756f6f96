//! The crate's one error type.

/// Everything that can go wrong in a fallible call of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No wgpu adapter was found (or none matched `WGPU_ADAPTER_NAME`).
    #[error(
        "no GPU adapter found{detail}; on Linux without a GPU install Mesa's software drivers \
         (Debian/Ubuntu: `apt-get install mesa-vulkan-drivers libvulkan1` for lavapipe, \
         `libegl1-mesa` for llvmpipe GL)"
    )]
    NoAdapter {
        /// What was asked for, if anything narrowed the search.
        detail: String,
    },

    /// The adapter refused to create a device.
    #[error("could not create a device on adapter {adapter}: {source}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// What wgpu reported.
        source: wgpu::RequestDeviceError,
    },

    /// A request goes past what the device can hold or index.
    #[error("{what} needs {requested}, but the device allows at most {limit}")]
    LimitExceeded {
        /// The quantity that is too large.
        what: &'static str,
        /// How much was requested.
        requested: u64,
        /// The device's limit.
        limit: u64,
    },

    /// Data handed in does not have the length of the tensor it is meant for.
    #[error("tensor `{tensor}` has {expected} elements, got {actual}")]
    LengthMismatch {
        /// Tensor name.
        tensor: String,
        /// Elements in the tensor.
        expected: usize,
        /// Elements supplied.
        actual: usize,
    },

    /// A hyperparameter is outside its valid range.
    #[error("invalid hyperparameter {name} = {value}: {reason}")]
    InvalidHyperparameter {
        /// Field name, as in the config struct.
        name: &'static str,
        /// The rejected value.
        value: f64,
        /// The rule it breaks.
        reason: &'static str,
    },

    /// No tensor of that name is in the set.
    #[error("no tensor named `{0}` in the parameter set")]
    UnknownTensor(String),

    /// Two tensors were given the same name.
    #[error("tensor name `{0}` is used twice")]
    DuplicateTensor(String),

    /// A tensor of length zero has no buffer range to bind.
    #[error("tensor `{0}` has no elements, so it has no buffer range")]
    EmptyTensor(String),

    /// An optimizer was stepped with a parameter set other than the one it was built for.
    #[error("the optimizer was built for another parameter set")]
    WrongParamSet,

    /// The device ran out of memory while creating something.
    #[error("out of device memory while creating {what}")]
    OutOfMemory {
        /// What was being created.
        what: &'static str,
    },

    /// The device rejected an operation (a wgpu validation error).
    #[error("the device rejected {what}: {message}")]
    Device {
        /// What was being created or recorded.
        what: &'static str,
        /// wgpu's message.
        message: String,
    },

    /// The device lacks a feature the request needs.
    #[error("the device was created without the `{feature}` feature, which this needs")]
    MissingFeature {
        /// The feature, in WebGPU's spelling (`shader-f16`).
        feature: &'static str,
    },

    /// A call that exists for one storage precision was made on a set of the other.
    #[error("this needs a parameter set stored in {wanted:?}; the set is {actual:?}")]
    WrongPrecision {
        /// The precision the call needs.
        wanted: crate::Precision,
        /// The set's precision.
        actual: crate::Precision,
    },

    /// Reading a buffer back from the device failed.
    #[error("reading back from the device failed: {0}")]
    Readback(String),

    /// A checkpoint file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file (or, for a save, the file being replaced).
        path: std::path::PathBuf,
        /// What the operating system reported.
        source: std::io::Error,
    },

    /// A checkpoint is not a readable safetensors file: truncated, or a corrupt header.
    #[error("not a readable checkpoint: {0}")]
    CorruptCheckpoint(String),

    /// A checkpoint's metadata entry is missing or cannot be parsed.
    #[error("checkpoint metadata `{key}` {reason}")]
    CheckpointMetadata {
        /// The metadata key, such as `optimizer.lr`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A checkpoint was written in a format version this crate does not read.
    #[error("checkpoint format version {found} is not supported; this crate reads {supported}")]
    CheckpointVersion {
        /// The version the file declares.
        found: u32,
        /// The version this crate reads and writes.
        supported: u32,
    },

    /// A checkpoint holds the state of another optimizer.
    #[error("the checkpoint holds `{found}` optimizer state, not `{expected}`")]
    WrongOptimizer {
        /// The optimizer it was loaded into.
        expected: &'static str,
        /// The optimizer that wrote it.
        found: String,
    },

    /// A tensor the parameter set or the optimizer needs is not in the checkpoint.
    #[error("the checkpoint has no tensor `{0}`")]
    MissingCheckpointTensor(String),

    /// The checkpoint holds a tensor the parameter set or the optimizer does not have.
    #[error("the checkpoint's tensor `{0}` belongs to no tensor or state of this optimizer")]
    UnexpectedCheckpointTensor(String),

    /// A checkpoint tensor's shape differs from the parameter set's.
    #[error("checkpoint tensor `{name}` has shape {found:?}, expected {expected:?}")]
    CheckpointShape {
        /// The checkpoint tensor.
        name: String,
        /// The shape it must have.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },

    /// A checkpoint tensor is stored with another element type than the format prescribes.
    #[error("checkpoint tensor `{name}` is {found}, expected {expected}")]
    CheckpointDtype {
        /// The checkpoint tensor.
        name: String,
        /// The element type the format prescribes (safetensors' name, such as `F32`).
        expected: &'static str,
        /// The element type in the file.
        found: String,
    },
}

/// Shorthand for `Result<T, wgpu_optim::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
