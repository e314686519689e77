//! Stage 3: the quality score (ThreatExchange `pdqImageDomainQualityMetric`).
//!
//! Sums quantised gradients between neighbours in the 64x64 image; flat or
//! featureless images score low and their hashes are unreliable. The
//! reference suggests discarding hashes with quality <= 49.

/// Quality in 0..=100 of a 64x64 downsample.
pub fn quality(buffer: &[[f32; 64]; 64]) -> u8 {
    // `(int)(((u - v) * 100) / 255)` in f32, truncated toward zero.
    fn step(u: f32, v: f32) -> i32 {
        (((u - v) * 100.0) / 255.0) as i32
    }
    let mut gradient_sum: i32 = 0;
    for (upper, lower) in buffer.iter().zip(&buffer[1..]) {
        for (&u, &v) in upper.iter().zip(lower) {
            gradient_sum += step(u, v).abs();
        }
    }
    for row in buffer {
        for j in 0..63 {
            gradient_sum += step(row[j], row[j + 1]).abs();
        }
    }
    (gradient_sum / 90).min(100) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_is_zero_and_checkerboard_saturates() {
        assert_eq!(quality(&[[128.0; 64]; 64]), 0);
        let mut board = [[0f32; 64]; 64];
        for (i, row) in board.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = if (i + j) % 2 == 0 { 255.0 } else { 0.0 };
            }
        }
        assert_eq!(quality(&board), 100);
    }

    #[test]
    fn small_steps_truncate_to_zero() {
        // A difference under 2.55 quantises to 0, as in the reference.
        let mut ramp = [[0f32; 64]; 64];
        for row in ramp.iter_mut() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = j as f32 * 2.5;
            }
        }
        assert_eq!(quality(&ramp), 0);
    }
}
