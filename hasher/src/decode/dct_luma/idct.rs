//! Inverse DCT of a block's lowest frequencies, to 1x1, 2x2 or 4x4 samples.
//!
//! An 8x8 block's top-left `n`x`n` coefficients, run through an `n`-point
//! inverse DCT with the 8-point normalisation, give `n`x`n` samples that
//! are the block's average over each `8/n`-pixel cell up to the dropped high
//! frequencies (this is how libjpeg and jpeg-decoder scale too). For `n` = 1
//! it is exactly the block mean. Samples stay `f32` and are not rounded:
//! PDQ wants luma as real numbers and the reduced path averages them anyway.

use std::f32::consts::PI;

/// One block's dequantized coefficients, then its samples: `size`x`size`
/// of the first 16 are used, row by row; the last slot takes the values
/// nobody reads, so that the entropy decoder stores without branching.
pub type Block = [f32; 17];

/// Output samples per block side: 1, 2 or 4.
pub struct ScaledIdct {
    size: usize,
    /// `basis[m * size + k]` = C(k)/2 * cos((2m+1) k pi / (2 size)),
    /// C(0) = 1/sqrt(2), else 1.
    basis: [f32; 16],
}

impl ScaledIdct {
    pub fn new(size: usize) -> Self {
        debug_assert!(matches!(size, 1 | 2 | 4));
        let mut basis = [0f32; 16];
        for m in 0..size {
            for k in 0..size {
                let c = if k == 0 {
                    std::f32::consts::FRAC_1_SQRT_2
                } else {
                    1.0
                };
                let angle = (2 * m + 1) as f32 * k as f32 * PI / (2 * size) as f32;
                basis[m * size + k] = c / 2.0 * angle.cos();
            }
        }
        ScaledIdct { size, basis }
    }

    /// Turns dequantized coefficients (`size`x`size`, rows = vertical
    /// frequency) into samples in place, level-shifted and clamped to 0..=255.
    #[inline]
    pub fn transform(&self, block: &mut Block) {
        match self.size {
            1 => block[0] = (block[0] / 8.0 + 128.0).clamp(0.0, 255.0),
            2 => self.transform_n::<2>(block),
            _ => self.transform_n::<4>(block),
        }
    }

    /// The separable transform for a fixed size, so that the loops unroll.
    #[inline(always)]
    fn transform_n<const N: usize>(&self, block: &mut Block) {
        let mut basis = [[0f32; N]; N];
        for (m, row) in basis.iter_mut().enumerate() {
            row.copy_from_slice(&self.basis[m * N..m * N + N]);
        }
        // Rows: horizontal frequencies to horizontal positions.
        let mut rows = [[0f32; N]; N];
        for r in 0..N {
            for x in 0..N {
                let mut sum = 0.0;
                for c in 0..N {
                    sum += basis[x][c] * block[r * N + c];
                }
                rows[r][x] = sum;
            }
        }
        // Columns: vertical frequencies to vertical positions.
        for y in 0..N {
            for x in 0..N {
                let mut sum = 0.0;
                for (r, row) in rows.iter().enumerate() {
                    sum += basis[y][r] * row[x];
                }
                block[y * N + x] = (sum + 128.0).clamp(0.0, 255.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The full 8x8 inverse DCT of JPEG (ITU T.81 A.3.3), level-shifted.
    fn full_idct(coefficients: &[f32; 64]) -> [f32; 64] {
        let c = |k: usize| {
            if k == 0 {
                std::f32::consts::FRAC_1_SQRT_2
            } else {
                1.0
            }
        };
        let mut out = [0f32; 64];
        for y in 0..8 {
            for x in 0..8 {
                let mut sum = 0.0;
                for v in 0..8 {
                    for u in 0..8 {
                        sum += c(u)
                            * c(v)
                            * coefficients[v * 8 + u]
                            * ((2 * x + 1) as f32 * u as f32 * PI / 16.0).cos()
                            * ((2 * y + 1) as f32 * v as f32 * PI / 16.0).cos();
                    }
                }
                out[y * 8 + x] = sum / 4.0 + 128.0;
            }
        }
        out
    }

    #[test]
    fn dc_only_is_the_block_mean() {
        let mut coefficients = [0f32; 64];
        coefficients[0] = -200.0;
        let full = full_idct(&coefficients);
        let mut block = [0f32; 17];
        block[0] = -200.0;
        ScaledIdct::new(1).transform(&mut block);
        let mean = full.iter().sum::<f32>() / 64.0;
        assert!((block[0] - mean).abs() < 1e-3, "{} vs {mean}", block[0]);
    }

    #[test]
    fn low_frequencies_give_cell_means() {
        // A horizontal ramp in the first coefficient: the 2x2 and 4x4
        // samples approximate the means of the full block's cells.
        let mut coefficients = [0f32; 64];
        coefficients[0] = 80.0;
        coefficients[1] = -60.0;
        coefficients[8] = 30.0;
        let full = full_idct(&coefficients);
        for size in [2usize, 4] {
            let mut block = [0f32; 17];
            block[0] = 80.0;
            block[1] = -60.0;
            block[size] = 30.0;
            ScaledIdct::new(size).transform(&mut block);
            let cell = 8 / size;
            for y in 0..size {
                for x in 0..size {
                    let mean: f32 = (0..cell)
                        .flat_map(|dy| (0..cell).map(move |dx| (dy, dx)))
                        .map(|(dy, dx)| full[(y * cell + dy) * 8 + x * cell + dx])
                        .sum::<f32>()
                        / (cell * cell) as f32;
                    assert!(
                        (block[y * size + x] - mean).abs() < 2.0,
                        "size {size} ({x},{y}): {} vs {mean}",
                        block[y * size + x]
                    );
                }
            }
        }
    }
}
