//! Stage 5: threshold the 16x16 DCT at its median into 256 bits.
//!
//! The reference uses Torben's median, which for 256 values returns the
//! 128th smallest (the lower median); a bit is set where the coefficient is
//! strictly greater. Selecting that order statistic directly gives the same
//! value.

use crate::hashes::PdqHash;

/// The 128th smallest of the 256 coefficients.
fn lower_median(values: &[[f32; 16]; 16]) -> f32 {
    let mut flat: Vec<f32> = values.iter().flatten().copied().collect();
    let (_, median, _) = flat.select_nth_unstable_by(127, |a, b| a.total_cmp(b));
    *median
}

/// Bit `16*i + j` is set when `dct[i][j]` is above the median.
pub fn hash_from_dct(dct: &[[f32; 16]; 16]) -> PdqHash {
    let median = lower_median(dct);
    let mut hash = PdqHash::ZERO;
    for (i, row) in dct.iter().enumerate() {
        for (j, &value) in row.iter().enumerate() {
            if value > median {
                hash.set_bit(16 * i + j);
            }
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_values_set_exactly_half_the_bits() {
        let mut dct = [[0f32; 16]; 16];
        for (k, v) in dct.iter_mut().flatten().enumerate() {
            *v = ((k * 97) % 256) as f32 - 100.0;
        }
        let hash = hash_from_dct(&dct);
        assert_eq!(hash.distance(&PdqHash::ZERO), 128);
        // The largest value (255 - 100) sits where (k*97) % 256 == 255.
        let k = (0..256).find(|k| (k * 97) % 256 == 255).unwrap();
        assert!(hash.bit(k));
    }
}
