//! Large PNGs read row by row into block means of luma.
//!
//! A PNG's pixels are deflate-compressed, so a 60 KB file can hold 49
//! megapixels of one grey level. Decoded whole, that is a 47 MiB buffer in
//! an isolate of 128 MB that never gives memory back, and a legitimate
//! 20-megapixel RGBA photo (80 MiB) could not be hashed under the edge's
//! allocation cap at all. Read row by row, only one row and the reduced
//! luma plane are held, whatever the image size.
//!
//! Used where the reduced path averages blocks anyway (see
//! `other::FULL_LUMA_MAX_PIXELS`); sums are kept per channel in integers
//! and turned into luma once per block, which is the mean of the pixels'
//! luma (luma is linear in R, G and B). 16-bit samples are first rounded to
//! 8 bits as the general path does, and alpha is dropped from the luma (as
//! the reference does). When the image has alpha, the same pass also sums
//! each block's colour times alpha and its transparency, which give its
//! views over black and over white ([`super::view`]) with no second read:
//! over black is the mean of `c * a / 255`, over white that plus the mean
//! of `255 - a` (the luma weights sum to 1). Interlaced
//! (Adam7) files, whose rows arrive in seven passes, are left to the
//! general path.

use std::io::Cursor;

use image::metadata::Orientation;

use super::view::{Background, Rendering, View};
use crate::error::HashError;
use crate::limits::Limits;
use crate::pdq::luma::{LUMA_FROM_B, LUMA_FROM_G, LUMA_FROM_R};
use crate::pdq::LumaImage;

/// A PNG decoded to luma at `block` x `block` pixels per sample, and its
/// EXIF orientation (when asked for and present).
pub struct PngLuma {
    pub luma: LumaImage,
    pub orientation: Option<Orientation>,
    /// Over white and over black, when some pixel is not opaque.
    pub views: Vec<View>,
}

/// Per output column: sums of R, G and B times alpha (0..=255 each), and
/// of transparency (255 - alpha).
#[derive(Clone, Copy, Default)]
struct AlphaSums {
    colour: [u64; 3],
    clear: u64,
}

/// Decodes a non-interlaced PNG to block means of luma; `Ok(None)` for an
/// interlaced one.
pub fn decode(
    bytes: &[u8],
    limits: &Limits,
    block: usize,
    want_exif: bool,
) -> Result<Option<PngLuma>, HashError> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    decoder.set_limits(png::Limits {
        bytes: limits.max_alloc,
    });
    let mut reader = decoder.read_info().map_err(|e| map_error(e, limits))?;
    let info = reader.info();
    if info.interlaced {
        return Ok(None);
    }
    let (width, height) = (info.width, info.height);
    limits.check_dimensions(width, height)?;
    let orientation = if want_exif {
        info.exif_metadata
            .as_deref()
            .and_then(Orientation::from_exif_chunk)
            .filter(|o| *o != Orientation::NoTransforms)
    } else {
        None
    };
    let (colour, depth) = reader.output_color_type();
    let channels = colour.samples();
    let wide = depth == png::BitDepth::Sixteen;
    let (width, height) = (width as usize, height as usize);
    let (out_w, out_h) = (width.div_ceil(block), height.div_ceil(block));
    let alpha = channels == 2 || channels == 4;
    let planes = if alpha { 3 } else { 1 };
    let plane_bytes = planes * out_w * out_h * std::mem::size_of::<f32>();
    if plane_bytes > limits.max_alloc {
        return Err(HashError::MemoryLimit {
            limit: limits.max_alloc,
        });
    }
    limits.check_memory(Limits::luma_bytes((out_w * out_h) as u64))?;

    let mut pixels = Vec::with_capacity(out_w * out_h);
    // Per output column: sums of R, G and B (grey: all three the same).
    let mut sums = vec![[0u32; 3]; out_w];
    let mut alpha_sums = vec![AlphaSums::default(); if alpha { out_w } else { 0 }];
    let (mut over_black, mut over_white) = (Vec::new(), Vec::new());
    let mut translucent = false;
    let mut rows_in_block = 0usize;
    for y in 0..height {
        let row = reader
            .next_row()
            .map_err(|e| map_error(e, limits))?
            .ok_or_else(|| HashError::Truncated("PNG rows end early".into()))?;
        accumulate(row.data(), channels, wide, block, &mut sums);
        if alpha {
            translucent |= accumulate_alpha(row.data(), channels, wide, block, &mut alpha_sums);
        }
        rows_in_block += 1;
        if rows_in_block == block || y + 1 == height {
            emit_row(&mut sums, width, block, rows_in_block, &mut pixels);
            if alpha {
                emit_alpha_rows(
                    &mut alpha_sums,
                    width,
                    block,
                    rows_in_block,
                    &mut over_black,
                    &mut over_white,
                );
            }
            rows_in_block = 0;
        }
    }
    let plane = |pixels| LumaImage {
        width: out_w,
        height: out_h,
        pixels,
    };
    let views = if translucent {
        [
            (Background::White, over_white),
            (Background::Black, over_black),
        ]
        .into_iter()
        .map(|(background, pixels)| View {
            rendering: Rendering {
                frame: None,
                background: Some(background),
            },
            luma: plane(pixels),
            width: width as u32,
            height: height as u32,
            block: block as u32,
        })
        .collect()
    } else {
        Vec::new()
    };
    Ok(Some(PngLuma {
        luma: plane(pixels),
        orientation,
        views,
    }))
}

/// Adds one row's colour-times-alpha and transparency to the per-column
/// sums; whether any pixel in it is not opaque.
fn accumulate_alpha(
    row: &[u8],
    channels: usize,
    wide: bool,
    block: usize,
    sums: &mut [AlphaSums],
) -> bool {
    let bytes_per_pixel = channels * if wide { 2 } else { 1 };
    let sample = |pixel: &[u8], channel: usize| -> u64 {
        if wide {
            (u64::from(u16::from_be_bytes([
                pixel[2 * channel],
                pixel[2 * channel + 1],
            ])) + 128)
                / 257
        } else {
            u64::from(pixel[channel])
        }
    };
    let mut translucent = false;
    for (x, pixel) in row.chunks_exact(bytes_per_pixel).enumerate() {
        let a = sample(pixel, channels - 1);
        translucent |= a != 255;
        let sum = &mut sums[x / block];
        if channels == 4 {
            for c in 0..3 {
                sum.colour[c] += sample(pixel, c) * a;
            }
        } else {
            let grey = sample(pixel, 0) * a;
            sum.colour = sum.colour.map(|v| v + grey);
        }
        sum.clear += 255 - a;
    }
    translucent
}

/// Turns the alpha sums of `rows` rows into one row of each view.
fn emit_alpha_rows(
    sums: &mut [AlphaSums],
    width: usize,
    block: usize,
    rows: usize,
    over_black: &mut Vec<f32>,
    over_white: &mut Vec<f32>,
) {
    for (x, sum) in sums.iter_mut().enumerate() {
        let columns = ((x + 1) * block).min(width) - x * block;
        let count = (columns * rows) as f64;
        let luma = (sum.colour[0] as f64 * LUMA_FROM_R
            + sum.colour[1] as f64 * LUMA_FROM_G
            + sum.colour[2] as f64 * LUMA_FROM_B)
            / 255.0;
        let black = luma / count;
        over_black.push(black as f32);
        over_white.push((black + sum.clear as f64 / count) as f32);
        *sum = AlphaSums::default();
    }
}

/// Adds one row's samples to the per-column sums.
fn accumulate(row: &[u8], channels: usize, wide: bool, block: usize, sums: &mut [[u32; 3]]) {
    let bytes_per_pixel = channels * if wide { 2 } else { 1 };
    let sample = |pixel: &[u8], channel: usize| -> u32 {
        if wide {
            let value = u32::from(u16::from_be_bytes([
                pixel[2 * channel],
                pixel[2 * channel + 1],
            ]));
            // As the general path's 16-to-8-bit conversion: round(v * 255 / 65535).
            (value + 128) / 257
        } else {
            u32::from(pixel[channel])
        }
    };
    let colour = channels >= 3;
    for (x, pixel) in row.chunks_exact(bytes_per_pixel).enumerate() {
        let sum = &mut sums[x / block];
        if colour {
            sum[0] += sample(pixel, 0);
            sum[1] += sample(pixel, 1);
            sum[2] += sample(pixel, 2);
        } else {
            let grey = sample(pixel, 0);
            sum[0] += grey;
            sum[1] += grey;
            sum[2] += grey;
        }
    }
}

/// Turns the sums of `rows` rows into one row of block means and clears them.
fn emit_row(sums: &mut [[u32; 3]], width: usize, block: usize, rows: usize, out: &mut Vec<f32>) {
    for (x, sum) in sums.iter_mut().enumerate() {
        let columns = ((x + 1) * block).min(width) - x * block;
        let count = (columns * rows) as f64;
        let luma = f64::from(sum[0]) * LUMA_FROM_R
            + f64::from(sum[1]) * LUMA_FROM_G
            + f64::from(sum[2]) * LUMA_FROM_B;
        out.push((luma / count) as f32);
        *sum = [0; 3];
    }
}

fn map_error(error: png::DecodingError, limits: &Limits) -> HashError {
    match error {
        png::DecodingError::LimitsExceeded => HashError::MemoryLimit {
            limit: limits.max_alloc,
        },
        png::DecodingError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            HashError::Truncated("PNG data ends early".into())
        }
        other => {
            let text = other.to_string();
            let lower = text.to_ascii_lowercase();
            if lower.contains("eof") || lower.contains("end of") || lower.contains("truncat") {
                HashError::Truncated(text)
            } else {
                HashError::Malformed(text)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode as decode_any, DecodeOptions};

    /// A PNG of `width` x `height` with photo-like samples.
    fn png(width: u32, height: u32, colour: png::ColorType, depth: png::BitDepth) -> Vec<u8> {
        let bits = colour.samples() * depth as usize;
        let row_bytes = (width as usize * bits).div_ceil(8);
        let data: Vec<u8> = (0..height as usize)
            .flat_map(|y| (0..row_bytes).map(move |x| ((x * 7 + y * 3 + (x ^ y) % 29) % 256) as u8))
            .collect();
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(colour);
        encoder.set_depth(depth);
        if colour == png::ColorType::Indexed {
            encoder.set_palette(
                (0..=255u8)
                    .flat_map(|i| [i, 255 - i, i / 2])
                    .collect::<Vec<_>>(),
            );
        }
        let mut writer = encoder.write_header().expect("header");
        writer.write_image_data(&data).expect("data");
        writer.finish().expect("finish");
        out
    }

    /// The general path: the image crate decodes the whole image, then
    /// its blocks are averaged.
    fn general(bytes: &[u8], block: u32) -> LumaImage {
        let image =
            image::load_from_memory_with_format(bytes, image::ImageFormat::Png).expect("decodes");
        super::super::other::to_luma(image, block as usize)
    }

    #[test]
    fn rows_give_the_block_means_of_the_whole_image() {
        use png::{BitDepth, ColorType};
        for (colour, depth) in [
            (ColorType::Grayscale, BitDepth::Eight),
            (ColorType::Rgb, BitDepth::Eight),
            (ColorType::Rgba, BitDepth::Sixteen),
            (ColorType::GrayscaleAlpha, BitDepth::Sixteen),
            (ColorType::Indexed, BitDepth::Eight),
            (ColorType::Grayscale, BitDepth::Four),
        ] {
            let (width, height) = (2_603, 1_601);
            let bytes = png(width, height, colour, depth);
            let decoded = decode_any(&bytes, &DecodeOptions::default()).expect("decodes");
            assert_eq!(decoded.block, 4, "{colour:?}");
            let expected = general(&bytes, decoded.block);
            assert_eq!(
                (decoded.luma.width, decoded.luma.height),
                (expected.width, expected.height)
            );
            let worst = decoded
                .luma
                .pixels
                .iter()
                .zip(&expected.pixels)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                worst < 1e-3,
                "{colour:?} {depth:?}: largest difference {worst}"
            );
        }
    }

    #[test]
    fn a_cut_file_is_an_error() {
        let bytes = png(2_100, 2_000, png::ColorType::Rgb, png::BitDepth::Eight);
        for cut in [bytes.len() / 3, bytes.len() * 2 / 3] {
            assert!(
                decode(&bytes[..cut], &Limits::default(), 4, false).is_err(),
                "cut at {cut}"
            );
        }
    }
}
