//! How a parameter set stores parameters and gradients, and the f32 <-> f16 conversions the
//! host side of an f16 set uses.
//!
//! The conversions are IEEE 754 binary16, rounding to nearest with ties to even, with
//! subnormals, infinities and NaN kept; the CPU reference rounds with them too.

/// Storage precision of a parameter set's parameters and gradients.
///
/// Optimizer state is f32 in both; an [`F16`](Precision::F16) set also keeps f32 master
/// weights, which every update reads and writes, and stores the f16 copy rounded from them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// Parameters and gradients in f32.
    #[default]
    F32,
    /// Parameters and gradients in f16, beside f32 master weights; needs
    /// `wgpu::Features::SHADER_F16`.
    F16,
}

impl Precision {
    /// Bytes of one stored parameter or gradient.
    pub fn bytes(self) -> u64 {
        match self {
            Precision::F32 => 4,
            Precision::F16 => 2,
        }
    }
}

/// The f16 nearest to `x` (ties to even), as its bits; past the f16 range it is infinite.
pub fn f16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let man = bits & 0x7f_ffff;
    if exp == 0xff {
        // Infinity stays infinite; NaN keeps its top payload bits and stays a NaN.
        let nan = if man != 0 {
            0x200 | (man >> 13) as u16
        } else {
            0
        };
        return sign | 0x7c00 | nan;
    }

    // Exponent rebiased from 127 to 15.
    let e = exp - 112;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    let (kept, dropped_bits) = if e > 0 {
        ((e as u32) << 10 | man >> 13, 13)
    } else if e >= -10 {
        // Subnormal in f16: the whole significand (implicit bit included) shifted down to
        // units of 2^-24.
        ((man | 0x80_0000) >> (14 - e), (14 - e) as u32)
    } else {
        // Below half the smallest subnormal: rounds to zero.
        return sign;
    };
    let significand = if e > 0 { man } else { man | 0x80_0000 };
    let rest = significand & ((1 << dropped_bits) - 1);
    let half = 1 << (dropped_bits - 1);
    let up = rest > half || (rest == half && kept & 1 == 1);
    // A carry out of the significand moves to the next binade (or to infinity), as it should.
    sign | (kept + u32::from(up)) as u16
}

/// The f32 value of the f16 with bits `h` (exact: every f16 is an f32).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let magnitude = match exp {
        0 => (man as f32 * f32::powi(2.0, -24)).to_bits(),
        0x1f => 0x7f80_0000 | man << 13,
        _ => (exp + 112) << 23 | man << 13,
    };
    f32::from_bits(sign | magnitude)
}

/// `x` rounded to the nearest f16 (ties to even), as an f32.
pub fn round_to_f16(x: f32) -> f32 {
    f16_to_f32(f16_bits(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_f16_survives_a_round_trip() {
        for h in 0..=u16::MAX {
            let x = f16_to_f32(h);
            if x.is_nan() {
                assert!(round_to_f16(x).is_nan(), "{h:#06x}");
            } else {
                assert_eq!(f16_bits(x), h, "{h:#06x} ({x:e})");
            }
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(f16_bits(1.0), 0x3c00);
        assert_eq!(f16_bits(-2.0), 0xc000);
        assert_eq!(f16_bits(0.5), 0x3800);
        assert_eq!(f16_bits(65504.0), 0x7bff);
        assert_eq!(
            f16_bits(65520.0),
            0x7c00,
            "the midpoint past the largest f16 is inf"
        );
        assert_eq!(f16_bits(1e9), 0x7c00);
        assert_eq!(f16_bits(f32::NEG_INFINITY), 0xfc00);
        assert_eq!(f16_bits(f32::powi(2.0, -24)), 0x0001);
        assert_eq!(f16_bits(f32::powi(2.0, -25)), 0x0000, "tie to even zero");
        assert_eq!(f16_bits(f32::powi(2.0, -25) * 1.5), 0x0001);
        assert_eq!(f16_bits(-0.0), 0x8000);
        assert_eq!(f16_bits(1e-10), 0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
    }

    /// Between every two neighbouring finite f16 values, the midpoint goes to the even one
    /// and anything off the midpoint to the nearer one.
    #[test]
    fn rounds_to_nearest_with_ties_to_even() {
        for h in 0..0x7bffu16 {
            let (lo, hi) = (f16_to_f32(h), f16_to_f32(h + 1));
            let mid = (lo + hi) / 2.0;
            let even = if h % 2 == 0 { h } else { h + 1 };
            assert_eq!(f16_bits(mid), even, "midpoint of {h:#06x}");
            assert_eq!(f16_bits(f32::from_bits(mid.to_bits() - 1)), h);
            assert_eq!(f16_bits(f32::from_bits(mid.to_bits() + 1)), h + 1);
            assert_eq!(f16_bits(-mid), 0x8000 | even);
        }
    }
}
