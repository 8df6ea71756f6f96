//! The picture: contour lines of the surface, one path per optimizer, the start and the
//! known minima, as an SVG file.

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;

use super::contour::Grid;
use super::descent::Method;
use super::surface::Surface;

/// Samples per side of the contour grid: fine enough for smooth lines near the minima.
const GRID: usize = 240;

/// Colour of each method, in [`Method::ALL`] order (the "tab10" palette, readable on white).
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

pub fn color(method: Method) -> RGBColor {
    COLORS[method as usize]
}

/// What the legend says for `method`, e.g. `sgd (momentum 0.9), lr 0.002`.
pub fn label(surface: &Surface, method: Method) -> String {
    match method.detail() {
        "" => format!("{}, lr {}", method.name(), surface.lr(method)),
        detail => format!("{} ({detail}), lr {}", method.name(), surface.lr(method)),
    }
}

/// Draws `paths` (GPU paths, start included) over the contours of `surface` into `file`.
pub fn draw(
    file: &Path,
    surface: &Surface,
    paths: &[(Method, Vec<[f32; 2]>)],
    subtitle: &str,
) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(file, (860, 800)).into_drawing_area();
    root.fill(&WHITE)?;
    let (x, y) = (surface.x, surface.y);
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{}: {subtitle}", surface.title), ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(48)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("x")
        .y_desc("y")
        .label_style(("sans-serif", 14))
        .draw()?;

    // Contours first, so the paths are drawn over them.
    let grid = Grid::sample(surface.f, x, y, GRID);
    let contour_style = RGBColor(170, 170, 170).stroke_width(1);
    for level in surface.contour_levels() {
        for line in grid.contour(level) {
            chart.draw_series(LineSeries::new(
                line.into_iter().map(|[a, b]| (a, b)),
                contour_style,
            ))?;
        }
    }

    // Paths: thinned to what shows at this size, and cut at the plot's edges.
    let tolerance = (x.1 - x.0).max(y.1 - y.0) / 2000.0;
    for (method, path) in paths {
        let style = color(*method).stroke_width(2);
        let points: Vec<(f64, f64)> = path.iter().map(|p| (p[0] as f64, p[1] as f64)).collect();
        let pieces = clip(&thin(&points, tolerance), x, y);
        for (k, piece) in pieces.into_iter().enumerate() {
            let series = chart.draw_series(LineSeries::new(piece, style))?;
            if k == 0 {
                series
                    .label(label(surface, *method))
                    .legend(move |(px, py)| PathElement::new([(px, py), (px + 20, py)], style));
            }
        }
    }

    // End points over every line, since paths that end apart often share most of their way.
    for (method, path) in paths {
        let end = path.last().map(|p| (p[0] as f64, p[1] as f64));
        if let Some(end) = end.filter(|&p| inside(p, x, y)) {
            chart.draw_series([
                Circle::new(end, 5, color(*method).filled()),
                Circle::new(end, 5, BLACK.stroke_width(1)),
            ])?;
        }
    }

    // Start and minima on top.
    let start = (surface.start[0] as f64, surface.start[1] as f64);
    chart
        .draw_series(std::iter::once(Circle::new(
            start,
            6,
            BLACK.stroke_width(2),
        )))?
        .label(format!(
            "start ({}, {})",
            surface.start[0], surface.start[1]
        ))
        .legend(|(px, py)| Circle::new((px + 10, py), 5, BLACK.stroke_width(2)));
    let minimum_style = BLACK.stroke_width(3);
    chart
        .draw_series(
            surface
                .minima
                .iter()
                .map(|m| Cross::new((m[0], m[1]), 7, minimum_style)),
        )?
        .label(match surface.minima {
            [m] => format!("minimum ({}, {})", m[0], m[1]),
            many => format!("the {} minima", many.len()),
        })
        .legend(move |(px, py)| Cross::new((px + 10, py), 5, minimum_style));

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()?;
    root.present()?;
    Ok(())
}

fn inside(p: (f64, f64), x: (f64, f64), y: (f64, f64)) -> bool {
    (x.0..=x.1).contains(&p.0) && (y.0..=y.1).contains(&p.1)
}

/// Drops points closer than `tolerance` to the last point kept (the last point stays), and
/// everything from the first non-finite point on.
fn thin(points: &[(f64, f64)], tolerance: f64) -> Vec<(f64, f64)> {
    let finite: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .take_while(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    let mut kept: Vec<(f64, f64)> = Vec::new();
    for (k, &p) in finite.iter().enumerate() {
        match kept.last() {
            Some(q) if (p.0 - q.0).hypot(p.1 - q.1) < tolerance && k + 1 < finite.len() => {}
            _ => kept.push(p),
        }
    }
    kept
}

/// The parts of a polyline inside the rectangle `x` by `y`: plotters draws lines past the
/// plotting area, so segments are cut at its edges (Liang-Barsky) and the line split where it
/// leaves.
fn clip(points: &[(f64, f64)], x: (f64, f64), y: (f64, f64)) -> Vec<Vec<(f64, f64)>> {
    let mut pieces: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for pair in points.windows(2) {
        let (p, q) = (pair[0], pair[1]);
        let (dx, dy) = (q.0 - p.0, q.1 - p.1);
        let (mut t0, mut t1) = (0.0f64, 1.0f64);
        let bounds = [
            (-dx, p.0 - x.0),
            (dx, x.1 - p.0),
            (-dy, p.1 - y.0),
            (dy, y.1 - p.1),
        ];
        let visible = bounds.iter().all(|&(denominator, distance)| {
            if denominator == 0.0 {
                return distance >= 0.0;
            }
            let t = distance / denominator;
            if denominator < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
            t0 <= t1
        });
        if !visible {
            if current.len() > 1 {
                pieces.push(std::mem::take(&mut current));
            }
            current.clear();
            continue;
        }
        let a = (p.0 + t0 * dx, p.1 + t0 * dy);
        let b = (p.0 + t1 * dx, p.1 + t1 * dy);
        if current.is_empty() || t0 > 0.0 {
            if current.len() > 1 {
                pieces.push(std::mem::take(&mut current));
            }
            current = vec![a];
        }
        current.push(b);
        if t1 < 1.0 {
            pieces.push(std::mem::take(&mut current));
        }
    }
    if current.len() > 1 {
        pieces.push(current);
    }
    pieces
}
