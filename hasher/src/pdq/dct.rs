//! Stage 4: the 64x64 -> 16x16 DCT (ThreatExchange `dct64To16`).
//!
//! Only coefficients 1..=16 in each direction are kept (the DC term is
//! skipped: it carries brightness, not structure). The matrix is computed as
//! the reference does (scale rounded to `f32`, cosine in `f64`, product
//! rounded to `f32`), and the sums run in the reference's order so the
//! result is bit-identical.

use std::sync::OnceLock;

/// `D[i][j] = sqrt(2/64) * cos(pi/128 * (i+1) * (2j+1))`, 16 x 64.
fn dct_matrix() -> &'static [[f32; 64]; 16] {
    static MATRIX: OnceLock<[[f32; 64]; 16]> = OnceLock::new();
    MATRIX.get_or_init(|| {
        let scale = (2.0f64 / 64.0).sqrt() as f32;
        let mut matrix = [[0f32; 64]; 16];
        for (i, row) in matrix.iter_mut().enumerate() {
            for (j, value) in row.iter_mut().enumerate() {
                let angle =
                    (core::f64::consts::PI / 2.0 / 64.0) * (i + 1) as f64 * (2 * j + 1) as f64;
                *value = (scale as f64 * angle.cos()) as f32;
            }
        }
        matrix
    })
}

/// `B = D A D^T`, with the intermediate `T = D A` summed over `k` in order.
pub fn dct_64_to_16(a: &[[f32; 64]; 64]) -> [[f32; 16]; 16] {
    let d = dct_matrix();
    let mut t = [[0f32; 64]; 16];
    for (t_row, d_row) in t.iter_mut().zip(d) {
        // Accumulate all 64 columns at once; each column's sum still adds
        // k = 0, 1, 2, ... in order, as the reference does.
        for (&dk, a_row) in d_row.iter().zip(a) {
            for (sum, &x) in t_row.iter_mut().zip(a_row) {
                *sum += dk * x;
            }
        }
    }
    let mut b = [[0f32; 16]; 16];
    for (b_row, t_row) in b.iter_mut().zip(&t) {
        for (value, d_row) in b_row.iter_mut().zip(d) {
            let mut sum = 0f32;
            for (&x, &dk) in t_row.iter().zip(d_row) {
                sum += x * dk;
            }
            *value = sum;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_image_has_no_ac_energy() {
        let flat = [[100f32; 64]; 64];
        let b = dct_64_to_16(&flat);
        assert!(b.iter().flatten().all(|v| v.abs() < 1e-2), "{b:?}");
    }

    #[test]
    fn separable_cosine_lands_in_its_coefficient() {
        // cos(frequency 1) down the rows times cos(frequency 3) along the
        // columns puts all energy at [0][2] (index = frequency - 1).
        let basis =
            |k: f64, x: usize| (core::f64::consts::PI / 128.0 * k * (2 * x + 1) as f64).cos();
        let mut image = [[0f32; 64]; 64];
        for (i, row) in image.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (100.0 * basis(1.0, i) * basis(3.0, j)) as f32;
            }
        }
        let b = dct_64_to_16(&image);
        // Each orthonormal basis vector has length sqrt(32) before the
        // sqrt(2/64) scale, so the peak is 100 * 32 * 32 * (2/64) = 3200.
        let peak = b[0][2];
        assert!((peak - 3200.0).abs() < 0.5, "peak {peak}");
        for (i, row) in b.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                if (i, j) != (0, 2) {
                    assert!(v.abs() < 1e-3 * peak, "[{i}][{j}] = {v}");
                }
            }
        }
    }
}
