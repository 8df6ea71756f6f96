//! The test functions: values, analytic gradients, known minima, and the start and learning
//! rates that make each optimizer's path worth looking at.

use super::descent::Method;

/// A 2-D test function with everything needed to descend it and draw it.
pub struct Surface {
    /// File-name part, e.g. `rosenbrock`.
    pub name: &'static str,
    /// Title of the plot.
    pub title: &'static str,
    pub f: fn(f64, f64) -> f64,
    pub grad: fn(f64, f64) -> [f64; 2],
    /// Every global or local minimum inside the plotted area.
    pub minima: &'static [[f64; 2]],
    pub start: [f32; 2],
    /// Plotted area.
    pub x: (f64, f64),
    pub y: (f64, f64),
    /// Contour levels: `count` values spaced evenly in log between `lo` and `hi`.
    pub levels: (f64, f64, usize),
    /// Learning rate of each method, in [`Method::ALL`] order.
    rates: [f64; 6],
}

impl Surface {
    pub const ALL: [&'static Surface; 2] = [&ROSENBROCK, &HIMMELBLAU];

    pub fn lr(&self, method: Method) -> f64 {
        self.rates[method as usize]
    }

    /// The minimum nearest to `p`, and its distance.
    pub fn nearest_minimum(&self, p: [f32; 2]) -> ([f64; 2], f64) {
        self.minima
            .iter()
            .map(|&m| (m, (p[0] as f64 - m[0]).hypot(p[1] as f64 - m[1])))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("every surface has a minimum")
    }

    /// Contour levels, lowest first.
    pub fn contour_levels(&self) -> Vec<f64> {
        let (lo, hi, n) = self.levels;
        let ratio = (hi / lo).ln() / (n - 1) as f64;
        (0..n).map(|k| lo * (ratio * k as f64).exp()).collect()
    }
}

/// Rosenbrock's banana valley from the classic start (-1.2, 1): finding the valley floor is
/// easy, following it to (1, 1) is not, since the curvature across the floor (about 1,300 at
/// the start) is hundreds of times the curvature along it.
///
/// Rates: plain GD at 0.0015, about its stability limit at the start (2 / 1,300), above
/// which it bounces across the floor; it creeps along the floor and is still about 0.3 short
/// after 2,000 steps. The exponential-average momentum at 0.01 takes the steps of PyTorch's
/// SGD with momentum 0.9 at 0.001, so SGD gets 0.002 to draw a different path (it overshoots
/// the valley's bends, then settles). Nesterov at 0.001: faster rates bounce across the
/// valley and end farther off. Adam's steps are about `lr` long whatever the gradient, and
/// 0.05 comes within 0.01 of (1, 1) in about 1,500 steps. All but GD end within 1e-3 of
/// (1, 1).
pub static ROSENBROCK: Surface = Surface {
    name: "rosenbrock",
    title: "Rosenbrock (1 - x)² + 100 (y - x²)²",
    f: |x, y| (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2),
    grad: |x, y| {
        [
            -2.0 * (1.0 - x) - 400.0 * x * (y - x * x),
            200.0 * (y - x * x),
        ]
    },
    minima: &[[1.0, 1.0]],
    start: [-1.2, 1.0],
    x: (-2.0, 2.0),
    y: (-1.0, 3.0),
    levels: (0.3, 2000.0, 14),
    // gd, momentum, sgd, nesterov, adam, adamw
    rates: [0.0015, 0.01, 0.002, 0.001, 0.05, 0.05],
};

/// Himmelblau's function: four minima of value 0 around a local maximum near
/// (-0.27, -0.92). Starting just beside the maximum, where the gradient is small and points
/// mostly along x, the gradient-following methods run to the lower left minimum, while Adam,
/// whose first steps are about as long in y as in x whatever the gradient's proportions,
/// reaches the upper left one.
///
/// Rates: GD at 0.01 (at 0.02 it already jumps between basins); SGD and Nesterov with
/// momentum 0.9 at 0.005, which circle the minimum a few times; the exponential average at
/// 0.02 (the steps of SGD at 0.002, a path between GD's and SGD's); Adam at 0.1, about 60
/// steps to cross to its minimum.
pub static HIMMELBLAU: Surface = Surface {
    name: "himmelblau",
    title: "Himmelblau (x² + y - 11)² + (x + y² - 7)²",
    f: |x, y| (x * x + y - 11.0).powi(2) + (x + y * y - 7.0).powi(2),
    grad: |x, y| {
        let (a, b) = (x * x + y - 11.0, x + y * y - 7.0);
        [4.0 * x * a + 2.0 * b, 2.0 * a + 4.0 * y * b]
    },
    // Published to six decimals; the values are 0 to within 1e-10 there.
    minima: &[
        [3.0, 2.0],
        [-2.805118, 3.131312],
        [-3.779310, -3.283186],
        [3.584428, -1.848126],
    ],
    start: [-0.3, -0.9],
    x: (-5.0, 5.0),
    y: (-5.0, 5.0),
    levels: (0.5, 800.0, 12),
    // gd, momentum, sgd, nesterov, adam, adamw
    rates: [0.01, 0.02, 0.005, 0.005, 0.1, 0.1],
};
