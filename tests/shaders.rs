//! Every kernel passes naga's validation and translates to the languages of the backends
//! that cannot run here (Metal, DX12) as well as those that can (Vulkan, GL); and the step
//! structs agree byte for byte between WGSL and Rust.

use naga::back::{glsl, hlsl, msl, spv};
use naga::valid::{Capabilities, ValidationFlags, Validator};
use wgpu_optim::{flags, shaders, StepUniform, TensorStep};

fn parse(name: &str, source: &str) -> (naga::Module, naga::valid::ModuleInfo) {
    parse_with(name, source, Capabilities::empty())
}

fn parse_with(
    name: &str,
    source: &str,
    capabilities: Capabilities,
) -> (naga::Module, naga::valid::ModuleInfo) {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
    let info = Validator::new(ValidationFlags::all(), capabilities)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
    (module, info)
}

/// Translates `module` to SPIR-V (Vulkan), MSL (Metal), HLSL (DX12) at `shader_model`, and,
/// with `glsl`, to GLSL per entry point as wgpu's GL backend does; panics on any error.
fn translate(
    name: &str,
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
    shader_model: hlsl::ShaderModel,
    glsl: bool,
) {
    assert!(!module.entry_points.is_empty(), "{name}: no entry point");

    // Vulkan.
    spv::write_vec(module, info, &spv::Options::default(), None)
        .unwrap_or_else(|e| panic!("{name}: SPIR-V: {e}"));

    // Metal.
    let msl_options = msl::Options {
        lang_version: (2, 1),
        ..Default::default()
    };
    msl::write_string(module, info, &msl_options, &msl::PipelineOptions::default())
        .unwrap_or_else(|e| panic!("{name}: MSL: {e}"));

    // DX12.
    let mut hlsl_out = String::new();
    let hlsl_options = hlsl::Options {
        shader_model,
        ..Default::default()
    };
    hlsl::Writer::new(
        &mut hlsl_out,
        &hlsl_options,
        &hlsl::PipelineOptions::default(),
    )
    .write(module, info, None)
    .unwrap_or_else(|e| panic!("{name}: HLSL: {e}"));

    // GL: one translation per entry point.
    if !glsl {
        return;
    }
    for ep in &module.entry_points {
        let mut glsl_out = String::new();
        let pipeline = glsl::PipelineOptions {
            shader_stage: naga::ShaderStage::Compute,
            entry_point: ep.name.clone(),
            multiview: None,
        };
        glsl::Writer::new(
            &mut glsl_out,
            module,
            info,
            &glsl::Options::default(),
            &pipeline,
            naga::proc::BoundsCheckPolicies::default(),
        )
        .and_then(|mut w| w.write())
        .unwrap_or_else(|e| panic!("{name}/{}: GLSL: {e}", ep.name));
    }
}

#[test]
fn every_kernel_translates_to_every_backend() {
    for (name, source) in shaders::ALL {
        let (module, info) = parse(name, source);
        translate(name, &module, &info, hlsl::ShaderModel::V5_1, true);
    }
}

/// Member names and byte offsets of the WGSL struct `name`, and its size.
fn wgsl_struct(module: &naga::Module, name: &str) -> (Vec<(String, u32)>, u32) {
    let ty = module
        .types
        .iter()
        .find(|(_, t)| t.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no struct {name}"))
        .1;
    match &ty.inner {
        naga::TypeInner::Struct { members, span } => (
            members
                .iter()
                .map(|m| (m.name.clone().unwrap_or_default(), m.offset))
                .collect(),
            *span,
        ),
        other => panic!("{name} is not a struct: {other:?}"),
    }
}

macro_rules! assert_mirrors {
    ($module:expr, $rust:ty, $wgsl:literal, [$($field:ident),* $(,)?]) => {{
        let (members, span) = wgsl_struct($module, $wgsl);
        let rust: Vec<(String, u32)> = vec![
            $((stringify!($field).to_string(), std::mem::offset_of!($rust, $field) as u32)),*
        ];
        assert_eq!(members, rust, "{} members and offsets", $wgsl);
        assert_eq!(span as usize, std::mem::size_of::<$rust>(), "{} size", $wgsl);
    }};
}

#[test]
fn step_structs_mirror_the_shader_header() {
    let (module, _) = parse("gd", shaders::GD);
    assert_mirrors!(
        &module,
        StepUniform,
        "StepUniform",
        [
            lr,
            beta1,
            beta2,
            eps,
            one_minus_beta1,
            one_minus_beta2,
            weight_decay,
            decay_factor,
            flags,
            inv_scale,
            max_norm,
            pad
        ]
    );
    assert_mirrors!(
        &module,
        TensorStep,
        "TensorStep",
        [has_grad, step_size, bc2_sqrt, first]
    );
}

/// The f16 variants need naga's 16-bit float capability; wgpu turns it on with
/// `Features::SHADER_F16`, which Vulkan, Metal and DX12 (shader model 6.2) can offer, GL not.
#[test]
fn every_f16_kernel_translates_to_the_backends_with_f16() {
    for (name, source) in shaders::ALL_F16 {
        let (module, info) = parse_with(name, source, Capabilities::SHADER_FLOAT16);
        // DX12 needs shader model 6.2 for 16-bit types. GL is skipped: naga 30's GLSL writer
        // has no 16-bit floats (it answers `UnsupportedScalar`), and wgpu's GL backend never
        // offers SHADER_F16, so f16 sets are refused there with `Error::MissingFeature`
        // before any shader is made.
        translate(name, &module, &info, hlsl::ShaderModel::V6_2, false);
    }
}

/// The f16 variants are the f32 ones with only the precision headers swapped.
#[test]
fn f16_kernels_share_the_f32_kernels_math() {
    let pairs = [
        (shaders::GD, shaders::GD_F16),
        (shaders::MOMENTUM, shaders::MOMENTUM_F16),
        (shaders::SGD, shaders::SGD_F16),
        (shaders::ADAM, shaders::ADAM_F16),
        (shaders::NORM, shaders::NORM_F16),
    ];
    let headers = [
        (
            include_str!("../shaders/precision/grads_f16.wgsl"),
            include_str!("../shaders/precision/grads_f32.wgsl"),
        ),
        (
            include_str!("../shaders/precision/params_f16.wgsl"),
            include_str!("../shaders/precision/params_f32.wgsl"),
        ),
    ];
    for (f32_source, f16_source) in pairs {
        assert!(!f32_source.contains("f16"));
        let swapped = headers.iter().fold(
            f16_source
                .strip_prefix("enable f16;\n\n")
                .expect("enable first")
                .to_owned(),
            |source, (f16_header, f32_header)| source.replace(f16_header, f32_header),
        );
        assert_eq!(swapped, f32_source);
    }
}

#[test]
fn the_workgroup_size_is_one_constant() {
    for (name, source) in shaders::ALL.iter().chain(shaders::ALL_F16) {
        assert_eq!(
            source.matches("const WORKGROUP_SIZE: u32 = 256u;").count(),
            1,
            "{name}"
        );
        assert!(source.contains("@workgroup_size(WORKGROUP_SIZE)"), "{name}");
    }
}

#[test]
fn flag_bits_mirror_the_shader_header() {
    let (module, _) = parse("gd", shaders::GD);
    for (name, bits) in flags::ALL {
        let (_, constant) = module
            .constants
            .iter()
            .find(|(_, c)| c.name.as_deref() == Some(*name))
            .unwrap_or_else(|| panic!("no constant {name}"));
        match module.global_expressions[constant.init] {
            naga::Expression::Literal(naga::Literal::U32(v)) => assert_eq!(v, *bits, "{name}"),
            ref other => panic!("{name}: {other:?}"),
        }
    }
}
