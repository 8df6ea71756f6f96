//! The red wine quality data: CSV parsing, a seeded shuffle, a train/test split and
//! standardisation with the training split's statistics.

/// Measurements per wine; the quality score follows them in each row.
pub const N_FEATURES: usize = 11;

/// The data set's path, read at run time so a bad file gives an error, not a build failure.
pub const CSV_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/winequality-red.csv");

/// Rows of features (row-major, [`N_FEATURES`] per row) and one target per row.
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub features: Vec<f32>,
    pub targets: Vec<f32>,
}

impl Table {
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    fn push_row(&mut self, from: &Table, row: usize) {
        let x = &from.features[row * N_FEATURES..(row + 1) * N_FEATURES];
        self.features.extend_from_slice(x);
        self.targets.push(from.targets[row]);
    }
}

/// The standardised splits, and what was done to get them.
#[derive(Debug)]
pub struct Split {
    pub train: Table,
    pub test: Table,
    /// Training-split mean that was subtracted from every target.
    pub target_mean: f64,
}

/// Parses the comma-separated file: one header line, then 11 features and the quality.
pub fn parse(text: &str) -> Result<Table, String> {
    let mut lines = text.lines().enumerate();
    let (_, header) = lines.next().ok_or("the file is empty")?;
    let columns = header.split(',').count();
    if columns != N_FEATURES + 1 {
        return Err(format!(
            "header has {columns} columns, expected {}",
            N_FEATURES + 1
        ));
    }

    let mut table = Table::default();
    for (index, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let before = table.features.len();
        for field in line.split(',') {
            let value = field
                .trim()
                .parse::<f32>()
                .map_err(|e| format!("line {}: `{field}`: {e}", index + 1))?;
            table.features.push(value);
        }
        if table.features.len() - before != N_FEATURES + 1 {
            return Err(format!(
                "line {}: expected {} fields",
                index + 1,
                N_FEATURES + 1
            ));
        }
        // The last field read is the target, not a feature.
        if let Some(quality) = table.features.pop() {
            table.targets.push(quality);
        }
    }
    Ok(table)
}

/// Shuffles the rows with `rng`, holds out `test_fraction` of them, standardises every
/// feature with the training rows' mean and standard deviation and centres the target on
/// the training mean, so a model starts near the right level and its loss is in quality
/// units squared.
pub fn split(table: &Table, rng: &mut Rng, test_fraction: f64) -> Split {
    let order = rng.permutation(table.len());
    let n_test = (table.len() as f64 * test_fraction).round() as usize;
    let mut train = Table::default();
    let mut test = Table::default();
    for (position, &row) in order.iter().enumerate() {
        let part = if position < n_test {
            &mut test
        } else {
            &mut train
        };
        part.push_row(table, row as usize);
    }

    // Statistics in f64 from the training rows only, so nothing leaks from the test rows.
    let n = train.len() as f64;
    let mut mean = [0.0f64; N_FEATURES];
    let mut var = [0.0f64; N_FEATURES];
    for row in train.features.chunks_exact(N_FEATURES) {
        for (m, &x) in mean.iter_mut().zip(row) {
            *m += x as f64 / n;
        }
    }
    for row in train.features.chunks_exact(N_FEATURES) {
        for ((v, &m), &x) in var.iter_mut().zip(&mean).zip(row) {
            *v += (x as f64 - m).powi(2) / n;
        }
    }
    let target_mean = train.targets.iter().map(|&y| y as f64).sum::<f64>() / n;

    for part in [&mut train, &mut test] {
        for row in part.features.chunks_exact_mut(N_FEATURES) {
            for ((x, &m), &v) in row.iter_mut().zip(&mean).zip(&var) {
                // A constant column would divide by zero; it carries no information anyway.
                let sd = if v > 0.0 { v.sqrt() } else { 1.0 };
                *x = ((*x as f64 - m) / sd) as f32;
            }
        }
        for y in &mut part.targets {
            *y = (*y as f64 - target_mean) as f32;
        }
    }
    Split {
        train,
        test,
        target_mean,
    }
}

impl Split {
    /// One line saying what the splits hold.
    pub fn describe(&self) -> String {
        format!(
            "{} training and {} test wines; features standardised with the training split, \
             quality centred on its training mean {:.3}",
            self.train.len(),
            self.test.len(),
            self.target_mean
        )
    }
}

/// SplitMix64: a tiny seeded generator, so every run with the same seed sees the same split,
/// initial weights and batches on both the GPU and the CPU side.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for one purpose (`stream`) of one run (`seed`).
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut rng = Self(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        // Mix once so nearby seeds do not start nearby.
        rng.next_u64();
        rng
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), from the top 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n); the modulo bias is below 2^-50 for the sizes used here.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A Fisher-Yates shuffle of `0..n`.
    pub fn permutation(&mut self, n: usize) -> Vec<u32> {
        let mut order: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            order.swap(i, self.below(i + 1));
        }
        order
    }
}
