//! Loss curves of every optimizer as an SVG: train and test loss per epoch side by side, the
//! GPU run solid and the CPU reference dashed over it.
//!
//! Depends on nothing else in the example, so that tests can draw made-up curves with it.

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;

/// Losses of one optimizer after each epoch, epoch 0 being the initial weights.
pub struct Curves {
    /// Legend text, e.g. `adam, lr 0.001`.
    pub label: String,
    /// (epoch, train loss, test loss) of the GPU run.
    pub gpu: Vec<(usize, f64, f64)>,
    /// The same for the CPU reference.
    pub cpu: Vec<(usize, f64, f64)>,
}

/// Colours in the order curves are given (the "tab10" palette, readable on white).
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Draws train losses (left) and test losses (right) of `curves` into `file`.
pub fn draw(file: &Path, curves: &[Curves], title: &str) -> Result<(), Box<dyn Error>> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let root = SVGBackend::new(file, (1100, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 20))?;
    let panels = root.split_evenly((1, 2));

    // One range for both panels, so train and test losses compare by eye.
    let points = || curves.iter().flat_map(|c| c.gpu.iter().chain(&c.cpu));
    let last_epoch = points().map(|p| p.0).max().unwrap_or(0).max(1);
    let losses = points().flat_map(|p| [p.1, p.2]).filter(|l| l.is_finite());
    let (lo, hi) = losses.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), l| {
        (lo.min(l), hi.max(l))
    });
    let (lo, hi) = if lo < hi { (lo, hi) } else { (0.0, 1.0) };
    let pad = 0.05 * (hi - lo);
    let y = (lo - pad).max(0.0)..hi + pad;

    for (i, (panel, (name, pick))) in panels
        .iter()
        .zip([
            (
                "train loss (MSE)",
                (|p: &(usize, f64, f64)| p.1) as fn(&_) -> f64,
            ),
            ("test loss (MSE)", |p| p.2),
        ])
        .enumerate()
    {
        let mut chart = ChartBuilder::on(panel)
            .caption(name, ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(0..last_epoch, y.clone())?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(225, 225, 225))
            .x_desc("epoch")
            .label_style(("sans-serif", 13))
            .draw()?;
        for (k, c) in curves.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            let gpu_style = color.stroke_width(2);
            chart
                .draw_series(LineSeries::new(
                    c.gpu.iter().map(|p| (p.0, pick(p))),
                    gpu_style,
                ))?
                .label(format!("{} (GPU)", c.label))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], gpu_style));
            // Dark and thin, so it shows inside the GPU line where the two agree.
            chart.draw_series(DashedLineSeries::new(
                c.cpu.iter().map(|p| (p.0, pick(p))),
                6,
                4,
                RGBColor(40, 40, 40).stroke_width(1),
            ))?;
        }
        // The legend once, on the left; one entry stands for every dashed line.
        if i > 0 {
            continue;
        }
        chart
            .draw_series(std::iter::empty::<PathElement<(usize, f64)>>())?
            .label("CPU reference (dashed)")
            .legend(|(x, y)| {
                PathElement::new([(x, y), (x + 8, y)], RGBColor(40, 40, 40).stroke_width(1))
            });
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()?;
    }
    root.present()?;
    Ok(())
}
