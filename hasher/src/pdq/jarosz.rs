//! Stage 2: blur and decimate to 64x64 (ThreatExchange `downscaling.cpp`).
//!
//! The reference blurs the whole image with two rounds of a box filter along
//! rows then along columns ("Jarosz filter", a tent filter approximation),
//! then samples 64x64 pixel centres. We get bit-identical values with less
//! work by keeping the reference's floating-point operations and their order
//! for every value that is sampled, and skipping values that are never read:
//!
//! * the column passes run across a whole row of columns at once (each column
//!   sees exactly the reference's sequence of adds, subtracts and divisions,
//!   but memory is read in order and the loop vectorises);
//! * the second row pass keeps only the 64 columns that are sampled, and the
//!   second column pass runs on those 64 columns only.
//!
//! `reference_blur_and_decimate` (test builds only) is the reference's
//! algorithm written plainly; tests compare the two bit for bit.

/// Box window length for downscaling `old` samples to `new` with two passes
/// (reference: `computeJaroszFilterWindowSize`).
pub fn window_size(old: usize, new: usize) -> usize {
    old.div_ceil(2 * new)
}

/// Sample positions (pixel centres) for decimating `old` to `new`
/// (reference: `decimateFloat`).
pub fn sample_positions(old: usize, new: usize) -> Vec<usize> {
    (0..new)
        .map(|i| (((i as f64 + 0.5) * old as f64) / new as f64) as usize)
        .collect()
}

/// The reference's 1-D box filter over `len` steps of `lanes` independent
/// signals stored interleaved (`input[t * lanes + lane]`). With `lanes == 1`
/// this is `box1DFloat` on one vector; with `lanes == width` on a row-major
/// image it is `boxAlongColsFloat`, lane by lane identical.
fn box_filter_lanes(
    input: &[f32],
    output: &mut [f32],
    len: usize,
    lanes: usize,
    window: usize,
    sums: &mut Vec<f32>,
) {
    let half = (window + 2) / 2;
    let phase1 = half - 1;
    let phase2 = window - half + 1;
    let phase3 = len.saturating_sub(window);
    let phase4 = half - 1;
    sums.clear();
    sums.resize(lanes, 0.0);
    let (mut left, mut right, mut out) = (0usize, 0usize, 0usize);
    let mut count = 0usize;
    let row = |index: usize| &input[index * lanes..(index + 1) * lanes];
    for _ in 0..phase1 {
        for (sum, &x) in sums.iter_mut().zip(row(right)) {
            *sum += x;
        }
        count += 1;
        right += 1;
    }
    for _ in 0..phase2 {
        count += 1;
        let divisor = count as f32;
        let target = &mut output[out * lanes..(out + 1) * lanes];
        for ((sum, &x), o) in sums.iter_mut().zip(row(right)).zip(target) {
            *sum += x;
            *o = *sum / divisor;
        }
        right += 1;
        out += 1;
    }
    let divisor = count as f32;
    for _ in 0..phase3 {
        let target = &mut output[out * lanes..(out + 1) * lanes];
        for (((sum, &add), &sub), o) in sums.iter_mut().zip(row(right)).zip(row(left)).zip(target) {
            *sum += add;
            *sum -= sub;
            *o = *sum / divisor;
        }
        left += 1;
        right += 1;
        out += 1;
    }
    for _ in 0..phase4 {
        count -= 1;
        let divisor = count as f32;
        let target = &mut output[out * lanes..(out + 1) * lanes];
        for ((sum, &x), o) in sums.iter_mut().zip(row(left)).zip(target) {
            *sum -= x;
            *o = *sum / divisor;
        }
        left += 1;
        out += 1;
    }
}

/// Rows filtered together: the row filter is a serial running sum along
/// each row, so rows are interleaved in groups and filtered as lanes (the
/// same arithmetic per row, but vectorised across rows).
const ROW_GROUP: usize = 8;

/// The row pass over groups of [`ROW_GROUP`] rows, with its buffers.
struct RowPass {
    width: usize,
    window: usize,
    interleaved: Vec<f32>,
    filtered: Vec<f32>,
    row: Vec<f32>,
}

impl RowPass {
    fn new(width: usize, window: usize) -> Self {
        RowPass {
            width,
            window,
            interleaved: vec![0.0; width * ROW_GROUP],
            filtered: vec![0.0; width * ROW_GROUP],
            row: vec![0.0; width],
        }
    }

    /// Filters the rows in `group` (up to [`ROW_GROUP`] rows of `width`) and
    /// hands each filtered row to `emit` with its index in the group.
    fn run(&mut self, group: &[f32], mut emit: impl FnMut(usize, &[f32]), sums: &mut Vec<f32>) {
        let width = self.width;
        let lanes = group.len() / width;
        for (r, row) in group.chunks_exact(width).enumerate() {
            for (x, &v) in row.iter().enumerate() {
                self.interleaved[x * lanes + r] = v;
            }
        }
        let n = width * lanes;
        box_filter_lanes(
            &self.interleaved[..n],
            &mut self.filtered[..n],
            width,
            lanes,
            self.window,
            sums,
        );
        for r in 0..lanes {
            for (x, out) in self.row.iter_mut().enumerate() {
                *out = self.filtered[x * lanes + r];
            }
            emit(r, &self.row);
        }
    }
}

/// Blurs `luma` (consumed as scratch) and samples it to 64x64, giving the
/// same values as the reference's `jaroszFilterFloat` + `decimateFloat`.
pub fn blur_and_decimate(luma: &mut [f32], width: usize, height: usize) -> [[f32; 64]; 64] {
    let row_window = window_size(width, 64);
    let col_window = window_size(height, 64);
    let cols = sample_positions(width, 64);
    let rows = sample_positions(height, 64);
    let mut sums = Vec::new();

    // Round 1: rows (luma -> scratch), then columns (scratch -> luma).
    let mut scratch = vec![0f32; width * height];
    let mut rows_pass = RowPass::new(width, row_window);
    for (src, dst) in luma
        .chunks(width * ROW_GROUP)
        .zip(scratch.chunks_mut(width * ROW_GROUP))
    {
        rows_pass.run(
            src,
            |r, filtered| dst[r * width..(r + 1) * width].copy_from_slice(filtered),
            &mut sums,
        );
    }
    box_filter_lanes(&scratch, luma, height, width, col_window, &mut sums);

    // Round 2: rows, keeping the 64 sampled columns; then those columns.
    scratch.resize(height * 64, 0.0);
    for (src, kept) in luma
        .chunks(width * ROW_GROUP)
        .zip(scratch.chunks_mut(64 * ROW_GROUP))
    {
        rows_pass.run(
            src,
            |r, filtered| {
                for (k, &c) in kept[r * 64..(r + 1) * 64].iter_mut().zip(&cols) {
                    *k = filtered[c];
                }
            },
            &mut sums,
        );
    }
    let mut columns_out = vec![0f32; height * 64];
    box_filter_lanes(
        &scratch,
        &mut columns_out,
        height,
        64,
        col_window,
        &mut sums,
    );

    let mut out = [[0f32; 64]; 64];
    for (out_row, &r) in out.iter_mut().zip(&rows) {
        out_row.copy_from_slice(&columns_out[r * 64..(r + 1) * 64]);
    }
    out
}

/// Blurs a whole `width` x `height` plane in place with `rounds` rounds of
/// the reference's box filter along rows, then columns (two rounds: the
/// tent approximation PDQ blurs with), windows clamped to 1..=the side.
/// Not part of hashing: the console's blurred rendering uses it
/// (hashgate-worker `console::reveal`).
pub fn box_blur(pixels: &mut [f32], width: usize, height: usize, window: usize, rounds: usize) {
    if width == 0 || height == 0 || pixels.len() != width * height {
        return;
    }
    let row_window = window.clamp(1, width);
    let col_window = window.clamp(1, height);
    let mut scratch = vec![0f32; width * height];
    let mut sums = Vec::new();
    for _ in 0..rounds {
        for (src, dst) in pixels
            .chunks_exact(width)
            .zip(scratch.chunks_exact_mut(width))
        {
            box_filter_lanes(src, dst, width, 1, row_window, &mut sums);
        }
        box_filter_lanes(&scratch, pixels, height, width, col_window, &mut sums);
    }
}

/// The reference algorithm, step by step, on whole buffers. Slow; the test
/// oracle for [`blur_and_decimate`] (and `projected.rs`), built for tests only.
#[cfg(test)]
pub(crate) fn reference_blur_and_decimate(
    luma: &[f32],
    width: usize,
    height: usize,
) -> [[f32; 64]; 64] {
    fn box1d(
        input: &[f32],
        output: &mut [f32],
        start: usize,
        len: usize,
        stride: usize,
        window: usize,
    ) {
        let half = (window + 2) / 2;
        let (mut li, mut ri, mut oi) = (start, start, start);
        let mut sum = 0f32;
        let mut count = 0i32;
        for _ in 0..half - 1 {
            sum += input[ri];
            count += 1;
            ri += stride;
        }
        for _ in 0..window - half + 1 {
            sum += input[ri];
            count += 1;
            output[oi] = sum / count as f32;
            ri += stride;
            oi += stride;
        }
        for _ in 0..len.saturating_sub(window) {
            sum += input[ri];
            sum -= input[li];
            output[oi] = sum / count as f32;
            li += stride;
            ri += stride;
            oi += stride;
        }
        for _ in 0..half - 1 {
            sum -= input[li];
            count -= 1;
            output[oi] = sum / count as f32;
            li += stride;
            oi += stride;
        }
    }
    let row_window = window_size(width, 64);
    let col_window = window_size(height, 64);
    let mut a = luma.to_vec();
    let mut b = vec![0f32; width * height];
    for _ in 0..2 {
        for i in 0..height {
            box1d(&a, &mut b, i * width, width, 1, row_window);
        }
        for j in 0..width {
            box1d(&b, &mut a, j, height, width, col_window);
        }
    }
    let mut out = [[0f32; 64]; 64];
    let rows = sample_positions(height, 64);
    let cols = sample_positions(width, 64);
    for (i, &r) in rows.iter().enumerate() {
        for (j, &c) in cols.iter().enumerate() {
            out[i][j] = a[r * width + c];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise_image(width: usize, height: usize, seed: u32) -> Vec<f32> {
        let mut state = seed;
        (0..width * height)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((state >> 24) as f32) * 0.997
            })
            .collect()
    }

    #[test]
    fn window_sizes_match_reference_examples() {
        assert_eq!(window_size(1024, 64), 8);
        assert_eq!(window_size(64, 64), 1);
        assert_eq!(window_size(5, 64), 1);
        assert_eq!(window_size(129, 64), 2);
    }

    #[test]
    fn fast_path_is_bit_identical_to_reference() {
        for &(w, h) in &[
            (5, 5),
            (64, 64),
            (100, 37),
            (257, 300),
            (640, 480),
            (1000, 130),
            (31, 17),
            (9, 1001),
        ] {
            let image = noise_image(w, h, (w * 31 + h) as u32);
            let expected = reference_blur_and_decimate(&image, w, h);
            let mut scratch = image.clone();
            let got = blur_and_decimate(&mut scratch, w, h);
            for i in 0..64 {
                for j in 0..64 {
                    assert_eq!(
                        got[i][j].to_bits(),
                        expected[i][j].to_bits(),
                        "{w}x{h} at [{i}][{j}]"
                    );
                }
            }
        }
    }

    #[test]
    fn box_blur_is_the_reference_filter_before_decimation() {
        // A square image: the reference's row and column windows agree.
        for side in [130, 257, 640] {
            let image = noise_image(side, side, side as u32);
            let expected = reference_blur_and_decimate(&image, side, side);
            let mut blurred = image.clone();
            box_blur(&mut blurred, side, side, window_size(side, 64), 2);
            let at = sample_positions(side, 64);
            for (i, &r) in at.iter().enumerate() {
                for (j, &c) in at.iter().enumerate() {
                    assert_eq!(
                        blurred[r * side + c].to_bits(),
                        expected[i][j].to_bits(),
                        "{side} at [{i}][{j}]"
                    );
                }
            }
        }
    }

    #[test]
    fn box_blur_takes_any_window_and_keeps_a_flat_plane() {
        for (w, h, window) in [(1, 1, 0), (3, 2, 50), (10, 7, 4), (7, 10, 1)] {
            let mut flat = vec![42.0f32; w * h];
            box_blur(&mut flat, w, h, window, 3);
            assert!(
                flat.iter().all(|&v| (v - 42.0).abs() < 1e-3),
                "{w}x{h} {window}"
            );
        }
        // A wrong-sized buffer is left alone rather than read out of bounds.
        let mut short = vec![1.0f32; 5];
        box_blur(&mut short, 3, 3, 2, 2);
        assert_eq!(short, vec![1.0; 5]);
    }
}
