//! Effective bandwidth against tensor size as an SVG, log-log: one colour per optimizer, GPU
//! solid with filled dots, CPU reference dashed with open dots, and the copy kernel as the
//! GPU's yardstick.
//!
//! Depends on nothing else in the example, so that tests can draw made-up figures with it.

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;

/// One measurement of one optimizer at one size.
#[derive(Clone, Debug)]
pub struct Point {
    /// Optimizer name as in the report.
    pub name: String,
    pub elements: usize,
    pub gpu_gbps: f64,
    pub cpu_gbps: f64,
    /// The copy kernel moving the same bytes on the same adapter.
    pub copy_gbps: f64,
}

/// Colours in the order optimizers first appear (the "tab10" palette).
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Draws `points` into `file`; `adapter` goes into the title.
pub fn draw(file: &Path, points: &[Point], adapter: &str) -> Result<(), Box<dyn Error>> {
    let mut names: Vec<&str> = Vec::new();
    for p in points {
        if !names.contains(&p.name.as_str()) {
            names.push(&p.name);
        }
    }

    // A little room around every figure; the log axes put their labels on powers of ten.
    let positive = |v: f64| v.is_finite() && v > 0.0;
    let range = |values: &mut dyn Iterator<Item = f64>| {
        let (lo, hi) = values
            .filter(|&v| positive(v))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        if lo <= hi {
            (lo / 1.6, hi * 1.6)
        } else {
            (1.0, 10.0)
        }
    };
    let x = range(&mut points.iter().map(|p| p.elements as f64));
    let y = range(
        &mut points
            .iter()
            .flat_map(|p| [p.gpu_gbps, p.cpu_gbps, p.copy_gbps]),
    );

    let root = SVGBackend::new(file, (900, 620)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Effective bandwidth, one tensor: {adapter}"),
            ("sans-serif", 18),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d((x.0..x.1).log_scale(), (y.0..y.1).log_scale())?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .x_desc("elements")
        .y_desc("GB/s (bytes the optimizer must move / time)")
        .x_label_formatter(&|v| format!("{v:.0e}"))
        .y_label_formatter(&|v| format!("{v}"))
        .label_style(("sans-serif", 13))
        .draw()?;

    let series = |name: &str, value: fn(&Point) -> f64| -> Vec<(f64, f64)> {
        let mut s: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.name == name && positive(value(p)))
            .map(|p| (p.elements as f64, value(p)))
            .collect();
        s.sort_by(|a, b| a.0.total_cmp(&b.0));
        s
    };
    for (k, &name) in names.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let gpu = series(name, |p| p.gpu_gbps);
        let cpu = series(name, |p| p.cpu_gbps);
        let solid = color.stroke_width(2);
        chart
            .draw_series(LineSeries::new(gpu.clone(), solid))?
            .label(format!("{name}: GPU (solid), CPU (dashed)"))
            .legend(move |(px, py)| PathElement::new([(px, py), (px + 20, py)], solid));
        chart.draw_series(gpu.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
        chart.draw_series(DashedLineSeries::new(cpu.clone(), 6, 4, solid))?;
        chart.draw_series(
            cpu.iter()
                .map(|&p| Circle::new(p, 4, color.stroke_width(2))),
        )?;
    }

    // The copy kernel moves each optimizer's bytes, so its figures differ a little by
    // optimizer; their mean per size is the yardstick drawn.
    let mut sizes: Vec<usize> = points.iter().map(|p| p.elements).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let copy: Vec<(f64, f64)> = sizes
        .iter()
        .filter_map(|&n| {
            let at: Vec<f64> = points
                .iter()
                .filter(|p| p.elements == n && positive(p.copy_gbps))
                .map(|p| p.copy_gbps)
                .collect();
            (!at.is_empty()).then(|| (n as f64, at.iter().sum::<f64>() / at.len() as f64))
        })
        .collect();
    let copy_style = BLACK.stroke_width(1);
    chart
        .draw_series(DashedLineSeries::new(copy, 2, 3, copy_style))?
        .label("GPU copy kernel, same bytes (dotted)")
        .legend(move |(px, py)| PathElement::new([(px, py), (px + 20, py)], copy_style));

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()?;
    root.present()?;
    Ok(())
}
