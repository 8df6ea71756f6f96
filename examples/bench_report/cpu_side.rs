//! CPU timings: the reference's steps and a threaded memory copy as its yardstick.

use std::time::{Duration, Instant};

use rayon::prelude::*;

/// Times `f` per call: one warm-up call, one to calibrate, then enough calls for about a
/// quarter second (3 to 200).
pub fn time(mut f: impl FnMut()) -> Duration {
    f();
    let t = Instant::now();
    f();
    let iters = calibrate(t.elapsed());
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed() / iters as u32
}

/// Iterations that take about a quarter second when one takes `one`.
pub fn calibrate(one: Duration) -> usize {
    (0.25 / one.as_secs_f64().max(1e-9)).clamp(3.0, 200.0) as usize
}

/// Time per copy of `len` f32 from one array to another, on every core.
pub fn threaded_memcpy(len: usize) -> Duration {
    let src = vec![1.0f32; len];
    let mut dst = vec![0.0f32; len];
    let block = 1 << 16;
    time(|| {
        dst.par_chunks_mut(block)
            .zip(src.par_chunks(block))
            .for_each(|(d, s)| d.copy_from_slice(s));
    })
}
