//! Descending a surface from its start, on the GPU and on the CPU reference: the host
//! computes the analytic gradient of the current point, the optimizer steps, and the new
//! point is read back (a round trip per step, which is fine for two parameters).

use std::error::Error;

use ndarray::{arr1, ArrayD};
use wgpu_optim::{
    cpu, AdamConfig, AdamWConfig, Context, GdConfig, Layout, MomentumConfig, Optimizer, ParamSet,
    SgdConfig,
};

use super::surface::Surface;

/// The optimizers drawn, each with the crate's defaults apart from the learning rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Gd,
    /// Exponential average, beta 0.9.
    Momentum,
    /// PyTorch's SGD, momentum 0.9.
    Sgd,
    /// PyTorch's SGD, momentum 0.9, Nesterov.
    Nesterov,
    Adam,
    /// Decoupled weight decay 0.01.
    AdamW,
}

impl Method {
    pub const ALL: [Method; 6] = [
        Method::Gd,
        Method::Momentum,
        Method::Sgd,
        Method::Nesterov,
        Method::Adam,
        Method::AdamW,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Gd => "gd",
            Method::Momentum => "momentum",
            Method::Sgd => "sgd",
            Method::Nesterov => "nesterov",
            Method::Adam => "adam",
            Method::AdamW => "adamw",
        }
    }

    /// What the legend says besides the name and rate.
    pub fn detail(self) -> &'static str {
        match self {
            Method::Gd => "",
            Method::Momentum => "beta 0.9",
            Method::Sgd => "momentum 0.9",
            Method::Nesterov => "sgd, momentum 0.9",
            Method::Adam => "",
            Method::AdamW => "weight decay 0.01",
        }
    }

    fn sgd(lr: f64, nesterov: bool) -> SgdConfig {
        SgdConfig {
            lr,
            momentum: 0.9,
            nesterov,
            ..Default::default()
        }
    }

    fn gpu(self, lr: f64, set: &ParamSet) -> wgpu_optim::Result<Box<dyn Optimizer>> {
        Ok(match self {
            Method::Gd => Box::new(GdConfig { lr }.init(set)?),
            Method::Momentum => Box::new(MomentumConfig { lr, beta: 0.9 }.init(set)?),
            Method::Sgd => Box::new(Self::sgd(lr, false).init(set)?),
            Method::Nesterov => Box::new(Self::sgd(lr, true).init(set)?),
            Method::Adam => Box::new(
                AdamConfig {
                    lr,
                    ..Default::default()
                }
                .init(set)?,
            ),
            Method::AdamW => Box::new(
                AdamWConfig {
                    lr,
                    ..Default::default()
                }
                .init(set)?,
            ),
        })
    }

    fn cpu(self, lr: f64, set: &cpu::ParamSet) -> wgpu_optim::Result<Box<dyn cpu::Optimizer>> {
        Ok(match self {
            Method::Gd => Box::new(cpu::Gd::new(set, GdConfig { lr })?),
            Method::Momentum => {
                Box::new(cpu::Momentum::new(set, MomentumConfig { lr, beta: 0.9 })?)
            }
            Method::Sgd => Box::new(cpu::Sgd::new(set, Self::sgd(lr, false))?),
            Method::Nesterov => Box::new(cpu::Sgd::new(set, Self::sgd(lr, true))?),
            Method::Adam => Box::new(cpu::Adam::new(
                set,
                AdamConfig {
                    lr,
                    ..Default::default()
                },
            )?),
            Method::AdamW => Box::new(cpu::AdamW::new(
                set,
                AdamWConfig {
                    lr,
                    ..Default::default()
                },
            )?),
        })
    }
}

/// Gaussian gradient noise of standard deviation `sigma`, the same sequence for every path
/// drawn with the same seed, so the GPU and CPU paths see identical gradients.
#[derive(Clone, Copy, Debug)]
pub struct Noise {
    pub sigma: f64,
    pub seed: u64,
}

/// SplitMix64 with Box-Muller on top.
struct Gaussian {
    state: u64,
}

impl Gaussian {
    fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1], so the logarithm below is finite.
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Two independent standard normal numbers.
    fn pair(&mut self) -> [f64; 2] {
        let r = (-2.0 * self.uniform().ln()).sqrt();
        let angle = std::f64::consts::TAU * self.uniform();
        [r * angle.cos(), r * angle.sin()]
    }
}

/// The gradient the optimizer sees at `p`: analytic, in f64 from the f32 point, plus noise.
struct Oracle<'a> {
    surface: &'a Surface,
    noise: Noise,
    rng: Gaussian,
}

impl<'a> Oracle<'a> {
    fn new(surface: &'a Surface, noise: Noise) -> Self {
        Self {
            surface,
            noise,
            rng: Gaussian::new(noise.seed),
        }
    }

    fn grad(&mut self, p: [f32; 2]) -> ArrayD<f32> {
        let g = (self.surface.grad)(p[0] as f64, p[1] as f64);
        let z = if self.noise.sigma > 0.0 {
            self.rng.pair()
        } else {
            [0.0; 2]
        };
        arr1(&[
            (g[0] + self.noise.sigma * z[0]) as f32,
            (g[1] + self.noise.sigma * z[1]) as f32,
        ])
        .into_dyn()
    }
}

fn point(values: &ArrayD<f32>) -> [f32; 2] {
    [values[[0]], values[[1]]]
}

fn layout() -> wgpu_optim::Result<Layout> {
    Layout::builder().tensor("xy", &[2]).build()
}

/// The start and the point after each of `steps` GPU steps.
pub fn gpu_path(
    ctx: &Context,
    surface: &Surface,
    method: Method,
    steps: usize,
    noise: Noise,
) -> Result<Vec<[f32; 2]>, Box<dyn Error>> {
    let set = ParamSet::new(ctx, layout()?)?;
    set.upload("xy", arr1(&surface.start).into_dyn().view())?;
    let mut opt = method.gpu(surface.lr(method), &set)?;
    let mut oracle = Oracle::new(surface, noise);
    let mut path = vec![surface.start];
    for _ in 0..steps {
        let p = *path.last().expect("the path holds the start");
        set.upload_grad("xy", oracle.grad(p).view())?;
        opt.step_submit(&set)?;
        path.push(point(&set.download("xy")?));
    }
    Ok(path)
}

/// The same steps on the CPU reference.
pub fn cpu_path(
    surface: &Surface,
    method: Method,
    steps: usize,
    noise: Noise,
) -> Result<Vec<[f32; 2]>, Box<dyn Error>> {
    let mut set = cpu::ParamSet::new(layout()?);
    set.upload("xy", arr1(&surface.start).into_dyn().view())?;
    let mut opt = method.cpu(surface.lr(method), &set)?;
    let mut oracle = Oracle::new(surface, noise);
    let mut path = vec![surface.start];
    for _ in 0..steps {
        let p = *path.last().expect("the path holds the start");
        set.upload_grad("xy", oracle.grad(p).view())?;
        opt.step(&mut set)?;
        path.push(point(&set.download("xy")?));
    }
    Ok(path)
}

/// The largest coordinate difference between two paths, step for step. Points that agree
/// exactly count as 0 even when infinite, and NaN against a number is NaN, so a path that
/// blows up on one side only never passes for a small difference.
pub fn max_deviation(a: &[[f32; 2]], b: &[[f32; 2]]) -> f32 {
    a.iter()
        .zip(b)
        .flat_map(|(p, q)| [(p[0], q[0]), (p[1], q[1])])
        .map(|(u, v)| {
            if u == v || (u.is_nan() && v.is_nan()) {
                0.0
            } else {
                (u - v).abs()
            }
        })
        .fold(0.0, |m, d| if d.is_nan() || d > m { d } else { m })
}
