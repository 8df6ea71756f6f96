//! WGSL sources of every kernel, each joined to the shared header at compile time.

/// Declarations shared by every kernel that reads gradients: step values, work table, guard.
pub const COMMON: &str = include_str!("../shaders/common.wgsl");

/// Gradient descent.
pub const GD: &str = concat!(
    include_str!("../shaders/common.wgsl"),
    include_str!("../shaders/update.wgsl"),
    include_str!("../shaders/gd.wgsl")
);

/// Momentum, exponential-average form.
pub const MOMENTUM: &str = concat!(
    include_str!("../shaders/common.wgsl"),
    include_str!("../shaders/update.wgsl"),
    include_str!("../shaders/momentum.wgsl")
);

/// PyTorch's SGD.
pub const SGD: &str = concat!(
    include_str!("../shaders/common.wgsl"),
    include_str!("../shaders/update.wgsl"),
    include_str!("../shaders/sgd.wgsl")
);

/// Adam and AdamW.
pub const ADAM: &str = concat!(
    include_str!("../shaders/common.wgsl"),
    include_str!("../shaders/update.wgsl"),
    include_str!("../shaders/adam.wgsl")
);

/// The guard passes: gradient norm, clipping factor, non-finite test, step counts.
pub const NORM: &str = concat!(
    include_str!("../shaders/common.wgsl"),
    include_str!("../shaders/norm.wgsl")
);

/// A plain copy, the bandwidth yardstick of the benchmarks.
pub const COPY: &str = include_str!("../shaders/copy.wgsl");

/// Every kernel source with its name, for tools that translate them all.
pub const ALL: &[(&str, &str)] = &[
    ("gd", GD),
    ("momentum", MOMENTUM),
    ("sgd", SGD),
    ("adam", ADAM),
    ("norm", NORM),
    ("copy", COPY),
];
