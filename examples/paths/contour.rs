//! Contour lines by marching squares over a grid of samples, joined into polylines so that
//! each line is one SVG element rather than thousands of two-point segments.

use std::collections::HashMap;

/// Samples of a function on an evenly spaced grid of `nx` by `ny` points.
pub struct Grid {
    nx: usize,
    ny: usize,
    x: (f64, f64),
    y: (f64, f64),
    values: Vec<f64>,
}

impl Grid {
    pub fn sample(f: fn(f64, f64) -> f64, x: (f64, f64), y: (f64, f64), n: usize) -> Self {
        let mut grid = Self {
            nx: n,
            ny: n,
            x,
            y,
            values: Vec::with_capacity(n * n),
        };
        for j in 0..n {
            for i in 0..n {
                let [px, py] = grid.at(i, j);
                grid.values.push(f(px, py));
            }
        }
        grid
    }

    fn at(&self, i: usize, j: usize) -> [f64; 2] {
        let fx = i as f64 / (self.nx - 1) as f64;
        let fy = j as f64 / (self.ny - 1) as f64;
        [
            self.x.0 + fx * (self.x.1 - self.x.0),
            self.y.0 + fy * (self.y.1 - self.y.0),
        ]
    }

    fn value(&self, i: usize, j: usize) -> f64 {
        self.values[j * self.nx + i]
    }

    /// Edge ids: the edge from (i, j) to (i + 1, j) is even, the one to (i, j + 1) odd.
    fn h_edge(&self, i: usize, j: usize) -> usize {
        2 * (j * self.nx + i)
    }

    fn v_edge(&self, i: usize, j: usize) -> usize {
        2 * (j * self.nx + i) + 1
    }

    /// Where the level crosses an edge, by linear interpolation between its ends.
    fn crossing(&self, edge: usize, level: f64) -> [f64; 2] {
        let (i, j) = ((edge / 2) % self.nx, (edge / 2) / self.nx);
        let (i2, j2) = if edge.is_multiple_of(2) {
            (i + 1, j)
        } else {
            (i, j + 1)
        };
        let (a, b) = (self.value(i, j), self.value(i2, j2));
        let t = ((level - a) / (b - a)).clamp(0.0, 1.0);
        let (p, q) = (self.at(i, j), self.at(i2, j2));
        [p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])]
    }

    /// The lines where the function equals `level`, each a list of points.
    pub fn contour(&self, level: f64) -> Vec<Vec<[f64; 2]>> {
        // Segments between edge crossings, cell by cell.
        let mut segments: Vec<[usize; 2]> = Vec::new();
        for j in 0..self.ny - 1 {
            for i in 0..self.nx - 1 {
                let above = |i, j| self.value(i, j) >= level;
                let (a, b, c, d) = (
                    above(i, j),
                    above(i + 1, j),
                    above(i + 1, j + 1),
                    above(i, j + 1),
                );
                let bottom = (a != b).then(|| self.h_edge(i, j));
                let right = (b != c).then(|| self.v_edge(i + 1, j));
                let top = (d != c).then(|| self.h_edge(i, j + 1));
                let left = (a != d).then(|| self.v_edge(i, j));
                match [bottom, right, top, left] {
                    [Some(b), Some(r), Some(t), Some(l)] => {
                        // A saddle: the cell's mean decides which opposite corners connect.
                        let mean = (self.value(i, j)
                            + self.value(i + 1, j)
                            + self.value(i + 1, j + 1)
                            + self.value(i, j + 1))
                            / 4.0;
                        if (mean >= level) == a {
                            segments.extend([[b, r], [l, t]]);
                        } else {
                            segments.extend([[b, l], [r, t]]);
                        }
                    }
                    edges => {
                        let crossed: Vec<usize> = edges.into_iter().flatten().collect();
                        if let [p, q] = crossed[..] {
                            segments.push([p, q]);
                        }
                    }
                }
            }
        }
        self.join(&segments)
            .into_iter()
            .map(|line| line.into_iter().map(|e| self.crossing(e, level)).collect())
            .collect()
    }

    /// Chains segments that share an edge into lines: open lines (ending at the border) from
    /// one end, then closed loops.
    fn join(&self, segments: &[[usize; 2]]) -> Vec<Vec<usize>> {
        // An edge is crossed by the segments of at most its two cells.
        let mut by_edge: HashMap<usize, Vec<usize>> = HashMap::new();
        for (s, ends) in segments.iter().enumerate() {
            for &e in ends {
                by_edge.entry(e).or_default().push(s);
            }
        }
        let mut used = vec![false; segments.len()];
        let mut lines = Vec::new();
        let mut starts: Vec<usize> = by_edge
            .iter()
            .filter(|(_, s)| s.len() == 1)
            .map(|(&e, _)| e)
            .collect();
        // Hash order would make the SVG differ from run to run.
        starts.sort_unstable();
        let loops = segments.iter().map(|s| s[0]);
        for start in starts.into_iter().chain(loops) {
            let mut line = vec![start];
            let mut edge = start;
            while let Some(&s) = by_edge[&edge].iter().find(|&&s| !used[s]) {
                used[s] = true;
                let [p, q] = segments[s];
                edge = if p == edge { q } else { p };
                line.push(edge);
            }
            if line.len() > 1 {
                lines.push(line);
            }
        }
        lines
    }
}
