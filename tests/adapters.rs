//! The adapters the GPU tests run on.

mod common;

#[test]
fn every_adapter_opens_a_device() {
    let contexts = common::contexts();
    for ctx in contexts {
        let limits = ctx.limits();
        eprintln!(
            "adapter: {} ; storage binding {} B, buffer {} B",
            ctx.describe(),
            limits.max_storage_buffer_binding_size,
            limits.max_buffer_size
        );
        // The context asks for the adapter's own limits, not wgpu's 128 MiB default.
        assert!(limits.max_storage_buffer_binding_size >= 128 << 20);
    }
    // CI names how many adapters it installed, so a missing driver fails instead of
    // silently testing fewer backends.
    if let Ok(expected) = std::env::var("WGPU_OPTIM_EXPECT_ADAPTERS") {
        let expected: usize = expected
            .parse()
            .expect("WGPU_OPTIM_EXPECT_ADAPTERS is a number");
        assert!(
            contexts.len() >= expected,
            "found {} adapters, expected at least {expected}",
            contexts.len()
        );
    }
}
