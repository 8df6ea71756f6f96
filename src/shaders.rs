//! WGSL sources of every kernel, each joined to the shared header at compile time.
//!
//! Every optimizer and the guard passes come in two variants from the same files: one for
//! f32 parameter sets and one (`_F16`) for sets that store parameters and gradients in f16
//! beside f32 master weights. The variants differ only in the precision headers under
//! `shaders/precision/`, which define how gradients are loaded and parameters loaded and
//! stored.

/// Declarations shared by every kernel that reads gradients: step values, work table, guard.
pub const COMMON: &str = include_str!("../shaders/common.wgsl");

// One optimizer's kernel: the shared header, the gradient and parameter access of one
// precision around the shared update part, then the rule itself.
macro_rules! rule_kernel {
    ($enable:literal, $precision:literal, $rule:literal) => {
        concat!(
            $enable,
            include_str!("../shaders/common.wgsl"),
            include_str!(concat!("../shaders/precision/grads_", $precision, ".wgsl")),
            include_str!("../shaders/update.wgsl"),
            include_str!(concat!("../shaders/precision/params_", $precision, ".wgsl")),
            include_str!(concat!("../shaders/", $rule, ".wgsl"))
        )
    };
}

/// Gradient descent.
pub const GD: &str = rule_kernel!("", "f32", "gd");

/// Momentum, exponential-average form.
pub const MOMENTUM: &str = rule_kernel!("", "f32", "momentum");

/// PyTorch's SGD.
pub const SGD: &str = rule_kernel!("", "f32", "sgd");

/// Adam and AdamW.
pub const ADAM: &str = rule_kernel!("", "f32", "adam");

/// The guard passes: gradient norm, clipping factor, non-finite test, step counts.
pub const NORM: &str = concat!(
    include_str!("../shaders/common.wgsl"),
    include_str!("../shaders/precision/grads_f32.wgsl"),
    include_str!("../shaders/norm.wgsl")
);

// WGSL wants `enable` directives before any declaration, hence first in the f16 variants.

/// Gradient descent on f16 parameters with f32 master weights.
pub const GD_F16: &str = rule_kernel!("enable f16;\n\n", "f16", "gd");

/// Momentum on f16 parameters with f32 master weights.
pub const MOMENTUM_F16: &str = rule_kernel!("enable f16;\n\n", "f16", "momentum");

/// PyTorch's SGD on f16 parameters with f32 master weights.
pub const SGD_F16: &str = rule_kernel!("enable f16;\n\n", "f16", "sgd");

/// Adam and AdamW on f16 parameters with f32 master weights.
pub const ADAM_F16: &str = rule_kernel!("enable f16;\n\n", "f16", "adam");

/// The guard passes over f16 gradients.
pub const NORM_F16: &str = concat!(
    "enable f16;\n\n",
    include_str!("../shaders/common.wgsl"),
    include_str!("../shaders/precision/grads_f16.wgsl"),
    include_str!("../shaders/norm.wgsl")
);

/// A plain copy, the bandwidth yardstick of the benchmarks.
pub const COPY: &str = include_str!("../shaders/copy.wgsl");

/// Every f32 kernel source with its name, for tools that translate them all.
pub const ALL: &[(&str, &str)] = &[
    ("gd", GD),
    ("momentum", MOMENTUM),
    ("sgd", SGD),
    ("adam", ADAM),
    ("norm", NORM),
    ("copy", COPY),
];

/// Every f16 kernel source with its name; they need the WGSL `f16` extension (wgpu's
/// `Features::SHADER_F16`).
pub const ALL_F16: &[(&str, &str)] = &[
    ("gd_f16", GD_F16),
    ("momentum_f16", MOMENTUM_F16),
    ("sgd_f16", SGD_F16),
    ("adam_f16", ADAM_F16),
    ("norm_f16", NORM_F16),
];
