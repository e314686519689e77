//! PNG, GIF (first frame), WebP, BMP, ICO and TIFF through the `image`
//! crate.
//!
//! The header is read first and checked against the limits; the decoder is
//! also given an allocation limit, so a tiny file that inflates into a huge
//! buffer is refused as well. Large images are reduced by averaging square
//! blocks of luma while converting, so only the decoder's own buffer is
//! full size. Images with non-opaque pixels also get their alpha-composited
//! views ([`super::view`]) from the same decoded buffer.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageReader};

use super::{png_rows, view, DecodedImage, ImageFormat, Reduction};
use crate::error::HashError;
use crate::limits::Limits;
use crate::pdq::luma::luma_of;
use crate::pdq::LumaImage;

fn image_format(format: ImageFormat) -> image::ImageFormat {
    match format {
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::Gif => image::ImageFormat::Gif,
        ImageFormat::WebP => image::ImageFormat::WebP,
        ImageFormat::Bmp => image::ImageFormat::Bmp,
        ImageFormat::Ico => image::ImageFormat::Ico,
        ImageFormat::Tiff => image::ImageFormat::Tiff,
        // Never passed here: SVG is read for embedded images, the others
        // are refused before decoding.
        ImageFormat::Svg | ImageFormat::Avif | ImageFormat::Heif | ImageFormat::Jxl => {
            image::ImageFormat::Png
        }
    }
}

fn map_error(error: ImageError, limits: &Limits) -> HashError {
    match error {
        ImageError::Limits(_) => HashError::MemoryLimit {
            limit: limits.max_alloc,
        },
        ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            HashError::Truncated("image data ends early".into())
        }
        ImageError::Unsupported(e) => HashError::Malformed(format!("unsupported: {e}")),
        other => {
            let text = other.to_string();
            if text.to_ascii_lowercase().contains("eof")
                || text.contains("end of")
                || text.contains("truncat")
            {
                HashError::Truncated(text)
            } else {
                HashError::Malformed(text)
            }
        }
    }
}

/// Up to this many pixels, non-JPEG images keep full-resolution luma (and
/// so hash exactly as the reference).
const FULL_LUMA_MAX_PIXELS: u64 = 4_000_000;

/// Decodes a non-JPEG image to luma.
pub fn decode(
    bytes: &[u8],
    format: ImageFormat,
    limits: &Limits,
    reduction: Reduction,
    want_exif: bool,
) -> Result<DecodedImage, HashError> {
    if format == ImageFormat::Png {
        if let Some(decoded) = decode_large_png(bytes, limits, reduction, want_exif)? {
            return Ok(decoded);
        }
    }
    let reader = ImageReader::with_format(Cursor::new(bytes), image_format(format));
    let mut decoder = reader.into_decoder().map_err(|e| map_error(e, limits))?;
    let (width, height) = decoder.dimensions();
    limits.check_dimensions(width, height)?;
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_width);
    decoder_limits.max_image_height = Some(limits.max_height);
    decoder_limits.max_alloc = Some(limits.max_alloc as u64);
    decoder
        .set_limits(decoder_limits)
        .map_err(|e| map_error(e, limits))?;
    // The TIFF decoder holds its strip or tile buffers next to the output
    // (measured by the malformed corpus: about twice the output), so a TIFF
    // may use half the cap for its output.
    let buffers = if format == ImageFormat::Tiff { 2 } else { 1 };
    if decoder.total_bytes().saturating_mul(buffers) > limits.max_alloc as u64 {
        return Err(HashError::MemoryLimit {
            limit: limits.max_alloc,
        });
    }
    // These formats are decoded in full anyway; averaging blocks only saves
    // the luma buffer, so it is worth its few bits of drift only for large
    // images.
    let pixels = u64::from(width) * u64::from(height);
    let block = if pixels > FULL_LUMA_MAX_PIXELS {
        reduction.block_size(width, height)
    } else {
        1
    };
    limits.check_memory(held_bytes(
        format,
        decoder.total_bytes(),
        decoder.color_type(),
        pixels,
        block,
    ))?;
    let exif_orientation = if want_exif {
        decoder
            .orientation()
            .ok()
            .filter(|o| *o != image::metadata::Orientation::NoTransforms)
    } else {
        None
    };
    let image = DynamicImage::from_decoder(decoder).map_err(|e| map_error(e, limits))?;
    let views = view::views_of(&image, None, reduction.block_size(width, height));
    let luma = to_luma(image, block as usize);
    Ok(DecodedImage {
        format,
        width,
        height,
        luma,
        block,
        exif_orientation,
        views,
    })
}

/// The most bytes decoding and hashing hold at once on this path: the
/// decoder's buffer (`decoded` bytes) and its own working buffer (WebP
/// decodes into 4 bytes a pixel before converting, GIF composes a frame of
/// up to 4 bytes a pixel onto its canvas: measured by `tests/bombs.rs`), a
/// conversion to 8-bit RGB or grey when the decoder gives another layout
/// ([`to_luma`]), and the luma plane of `block`-reduced samples with PDQ's
/// working copy.
fn held_bytes(
    format: ImageFormat,
    decoded: u64,
    colour: image::ColorType,
    pixels: u64,
    block: u32,
) -> u64 {
    use image::ColorType;
    let working = match format {
        ImageFormat::WebP | ImageFormat::Gif => pixels.saturating_mul(4),
        _ => 0,
    };
    let conversion = match colour {
        ColorType::Rgb8 | ColorType::Rgba8 | ColorType::L8 | ColorType::La8 => 0,
        other if other.has_color() => pixels.saturating_mul(3),
        _ => pixels,
    };
    let samples = pixels.div_ceil(u64::from(block) * u64::from(block));
    decoded
        .saturating_add(working)
        .saturating_add(conversion)
        .saturating_add(Limits::luma_bytes(samples))
}

/// A PNG over [`FULL_LUMA_MAX_PIXELS`], read row by row into block means
/// ([`png_rows`]); `None` when it is small, or interlaced.
fn decode_large_png(
    bytes: &[u8],
    limits: &Limits,
    reduction: Reduction,
    want_exif: bool,
) -> Result<Option<DecodedImage>, HashError> {
    let Ok(size) = imagesize::blob_size(bytes) else {
        return Ok(None);
    };
    let (width, height) = (size.width as u64, size.height as u64);
    if width * height <= FULL_LUMA_MAX_PIXELS {
        return Ok(None);
    }
    let (width, height) = (
        u32::try_from(width).unwrap_or(u32::MAX),
        u32::try_from(height).unwrap_or(u32::MAX),
    );
    let block = reduction.block_size(width, height);
    if block == 1 {
        return Ok(None);
    }
    let Some(decoded) = png_rows::decode(bytes, limits, block as usize, want_exif)? else {
        return Ok(None);
    };
    Ok(Some(DecodedImage {
        format: ImageFormat::Png,
        width,
        height,
        luma: decoded.luma,
        block,
        exif_orientation: decoded.orientation,
        views: decoded.views,
    }))
}

/// Luma of a decoded image, averaged over `factor` x `factor` blocks.
pub(super) fn to_luma(image: DynamicImage, factor: usize) -> LumaImage {
    let (width, height) = (image.width() as usize, image.height() as usize);
    let (data, channels, grey): (Vec<u8>, usize, bool) = match image {
        DynamicImage::ImageRgb8(buffer) => (buffer.into_raw(), 3, false),
        DynamicImage::ImageRgba8(buffer) => (buffer.into_raw(), 4, false),
        DynamicImage::ImageLuma8(buffer) => (buffer.into_raw(), 1, true),
        DynamicImage::ImageLumaA8(buffer) => (buffer.into_raw(), 2, true),
        other if other.color().has_color() => (other.to_rgb8().into_raw(), 3, false),
        other => (other.to_luma8().into_raw(), 1, true),
    };
    if factor == 1 {
        return if grey {
            LumaImage::from_grey(&data, width, height, channels)
        } else {
            LumaImage::from_interleaved(&data, width, height, channels)
        };
    }
    let pixel = |offset: usize| -> f32 {
        if grey {
            let v = data[offset];
            luma_of(v, v, v)
        } else {
            luma_of(data[offset], data[offset + 1], data[offset + 2])
        }
    };
    // Means of factor x factor blocks; the last row and column of blocks
    // may be smaller, and are averaged over the pixels they have.
    let (out_w, out_h) = (width.div_ceil(factor), height.div_ceil(factor));
    let mut pixels = vec![0f32; out_w * out_h];
    let row_bytes = width * channels;
    for (out_y, out_row) in pixels.chunks_exact_mut(out_w).enumerate() {
        let rows = out_y * factor..((out_y + 1) * factor).min(height);
        let block_h = rows.len();
        for y in rows {
            let row = y * row_bytes;
            for (out_x, sum) in out_row.iter_mut().enumerate() {
                for x in out_x * factor..((out_x + 1) * factor).min(width) {
                    *sum += pixel(row + x * channels);
                }
            }
        }
        for (out_x, value) in out_row.iter_mut().enumerate() {
            let block_w = ((out_x + 1) * factor).min(width) - out_x * factor;
            *value /= (block_w * block_h) as f32;
        }
    }
    LumaImage {
        width: out_w,
        height: out_h,
        pixels,
    }
}
