//! What each gradient policy adds to an Adam step.

use std::error::Error;
use std::fmt::Write as _;

use ndarray::{ArrayD, IxDyn};
use wgpu_optim::{AdamConfig, GradPolicy, Layout, Optimizer, ParamSet};

use crate::sections::Bench;
use crate::show;

impl Bench<'_> {
    /// Adam on one tensor of `n` elements under each gradient policy, against the plain step.
    pub fn policies(&mut self, n: usize) -> Result<(), Box<dyn Error>> {
        let cases = [
            ("plain", GradPolicy::default()),
            (
                "loss scale",
                GradPolicy {
                    loss_scale: 1024.0,
                    ..Default::default()
                },
            ),
            (
                "clip to a global norm",
                GradPolicy {
                    max_norm: Some(1.0),
                    ..Default::default()
                },
            ),
            (
                "skip non-finite steps",
                GradPolicy {
                    skip_non_finite: true,
                    ..Default::default()
                },
            ),
            (
                "all three",
                GradPolicy {
                    loss_scale: 1024.0,
                    max_norm: Some(1.0),
                    skip_non_finite: true,
                },
            ),
        ];
        let mut table = format!(
            "## Gradient policies (Adam, {n} elements)\n\n\
             | policy | GPU step | / plain |\n| --- | ---: | ---: |\n"
        );
        let mut plain = None;
        for (name, policy) in cases {
            let layout = Layout::builder().tensor("x", &[n]).build()?;
            let set = ParamSet::new(self.ctx, layout)?;
            set.upload_grad("x", ArrayD::from_elem(IxDyn(&[n]), 1e-3).view())?;
            let mut opt = AdamConfig::default().init(&set)?;
            opt.set_grad_policy(&set, policy)?;
            let time = self.gpu_step(&mut opt, &set)?;
            let base = *plain.get_or_insert(time);
            writeln!(
                table,
                "| {name} | {} | {:.2} |",
                show(time),
                time.as_secs_f64() / base.as_secs_f64()
            )?;
        }
        table.push('\n');
        self.emit(&table);
        Ok(())
    }
}
