//! The 64x64 downsample computed from an image decoded at reduced scale.
//!
//! Blurring and decimating is linear, and it acts on rows and columns
//! separately, so each of the 64 output samples along an axis is a fixed
//! weighted sum of the input samples on that axis. For the reference filter
//! (two rounds of the Jarosz box filter, edge windows shrunk and
//! renormalised, then the sample at each output's centre pixel) those weights
//! can be written down exactly at full resolution. When the image was
//! decoded at 1/s scale, each decoded sample stands for (close to) the mean
//! of an s-pixel block, so summing the full-resolution weights over each
//! block gives weights on the decoded samples.
//!
//! The result is the reference downsample of the full-resolution image, up
//! to the block-mean approximation and floating-point rounding: PDQ of a 1/8
//! scale decode lands within a few bits of PDQ of the full decode, where
//! running the reference filter on the small image (with its own, smaller
//! windows and shifted sample phase) drifts by 10 bits and more. It is also
//! cheap: a few taps per output instead of four passes over the image.

use super::jarosz::{sample_positions, window_size};
use super::LumaImage;

/// Weights of one output sample over a run of decoded samples.
#[derive(Debug, Clone)]
struct Taps {
    first: usize,
    weights: Vec<f32>,
}

/// The 64 output samples' weights along one axis of `full_len` pixels,
/// decoded as `reduced_len` samples that each cover `block` pixels (the last
/// one possibly fewer).
fn axis_taps(full_len: usize, block: usize, reduced_len: usize) -> Vec<Taps> {
    let window = window_size(full_len, 64);
    let half = (window + 2) / 2;
    let last = full_len - 1;
    // Box output `o` averages pixels [o - (window - half), o + half - 1],
    // clipped to the image (the reference's shrinking edge windows).
    let span = |o: usize| (o.saturating_sub(window - half), (o + half - 1).min(last));
    sample_positions(full_len, 64)
        .into_iter()
        .map(|centre| {
            let (lo1, hi1) = span(centre);
            let count1 = (hi1 - lo1 + 1) as f64;
            let (lo, hi) = (span(lo1).0, span(hi1).1);
            let mut full = vec![0f64; hi - lo + 1];
            for o in lo1..=hi1 {
                let (lo2, hi2) = span(o);
                let weight = 1.0 / (count1 * (hi2 - lo2 + 1) as f64);
                for slot in &mut full[lo2 - lo..=hi2 - lo] {
                    *slot += weight;
                }
            }
            let first = lo / block;
            let end = (hi / block).min(reduced_len - 1);
            let mut weights = vec![0f64; end - first + 1];
            for (offset, w) in full.iter().enumerate() {
                let m = ((lo + offset) / block).min(reduced_len - 1);
                weights[m - first] += w;
            }
            Taps {
                first,
                weights: weights.into_iter().map(|w| w as f32).collect(),
            }
        })
        .collect()
}

/// The reference 64x64 downsample of a `full_width` x `full_height` image,
/// from its decode at 1/`block` scale.
pub fn downsample_from_reduced(
    image: &LumaImage,
    full_width: usize,
    full_height: usize,
    block: usize,
) -> [[f32; 64]; 64] {
    let x_taps = axis_taps(full_width, block, image.width);
    let y_taps = axis_taps(full_height, block, image.height);
    // Rows first: every decoded row reduced to 64 values.
    let mut rows = vec![[0f32; 64]; image.height];
    for (row, out) in image.pixels.chunks_exact(image.width).zip(rows.iter_mut()) {
        for (value, taps) in out.iter_mut().zip(&x_taps) {
            *value = taps
                .weights
                .iter()
                .zip(&row[taps.first..])
                .map(|(w, x)| w * x)
                .sum();
        }
    }
    let mut out = [[0f32; 64]; 64];
    for (out_row, taps) in out.iter_mut().zip(&y_taps) {
        for (w, row) in taps.weights.iter().zip(&rows[taps.first..]) {
            for (o, &v) in out_row.iter_mut().zip(row) {
                *o += w * v;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::jarosz::reference_blur_and_decimate;
    use super::*;

    fn scene(width: usize, height: usize) -> Vec<f32> {
        (0..width * height)
            .map(|i| {
                let (x, y) = ((i % width) as f32, (i / width) as f32);
                128.0
                    + 60.0 * (x / 37.0).sin() * (y / 23.0).cos()
                    + 40.0 * ((x + 2.0 * y) / 91.0).sin()
            })
            .collect()
    }

    fn block_mean(pixels: &[f32], width: usize, height: usize, block: usize) -> LumaImage {
        let (rw, rh) = (width.div_ceil(block), height.div_ceil(block));
        let mut out = vec![0f32; rw * rh];
        for (m, value) in out.iter_mut().enumerate() {
            let (bx, by) = (m % rw, m / rw);
            let (mut sum, mut n) = (0f32, 0f32);
            for y in by * block..((by + 1) * block).min(height) {
                for x in bx * block..((bx + 1) * block).min(width) {
                    sum += pixels[y * width + x];
                    n += 1.0;
                }
            }
            *value = sum / n;
        }
        LumaImage {
            width: rw,
            height: rh,
            pixels: out,
        }
    }

    #[test]
    fn weights_sum_to_one() {
        for &(len, block) in &[(1000, 1), (1000, 8), (333, 2), (7, 1), (4240, 4)] {
            for taps in axis_taps(len, block, len.div_ceil(block)) {
                let total: f32 = taps.weights.iter().sum();
                assert!((total - 1.0).abs() < 1e-5, "{len}/{block}: {total}");
            }
        }
    }

    #[test]
    fn full_scale_equals_the_reference_filter() {
        for &(w, h) in &[(640, 480), (333, 177), (1000, 9), (64, 200)] {
            let pixels = scene(w, h);
            let expected = reference_blur_and_decimate(&pixels, w, h);
            let image = LumaImage {
                width: w,
                height: h,
                pixels,
            };
            let got = downsample_from_reduced(&image, w, h, 1);
            for i in 0..64 {
                for j in 0..64 {
                    assert!(
                        (got[i][j] - expected[i][j]).abs() < 1e-3,
                        "{w}x{h} [{i}][{j}]"
                    );
                }
            }
        }
    }

    #[test]
    fn block_means_land_close_to_the_full_filter() {
        let (w, h) = (1600, 1200);
        let pixels = scene(w, h);
        let expected = reference_blur_and_decimate(&pixels, w, h);
        for block in [2, 4, 8] {
            let got = downsample_from_reduced(&block_mean(&pixels, w, h, block), w, h, block);
            let worst = (0..64)
                .flat_map(|i| (0..64).map(move |j| (i, j)))
                .map(|(i, j)| (got[i][j] - expected[i][j]).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1.5, "block {block}: worst difference {worst}");
        }
    }
}
