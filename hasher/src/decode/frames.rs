//! The frames of an animation, composited as the format specifies, as
//! [`View`]s.
//!
//! A viewer plays every frame of an animated GIF, APNG or WebP; the
//! reference (and [`super::decode`]) hashes only the first frame (for APNG,
//! the default image, which need not be part of the animation at all). So a
//! listed picture can hide in a later frame, or in a partial frame that only
//! becomes the picture once composited over the previous ones. The `image`
//! crate's animation decoders composite each frame onto the canvas (GIF
//! disposal; APNG dispose and blend ops; WebP blending and disposal): each
//! canvas is one view.
//!
//! Bounds, checked before anything is allocated or while reading:
//! * memory: the decoders hold about three canvases (previous, current,
//!   output); an animation whose three RGBA canvases exceed the decode
//!   buffer cap is refused ([`HashError::MemoryLimit`]), not read in part
//!   (a GIF counts as an animation when its block structure holds a second
//!   image: a still GIF is neither read twice nor held to this bound);
//! * CPU: at most [`Limits::max_frames`] frames and
//!   [`Limits::max_frame_pixels`] canvas pixels in all are decoded. Frames
//!   beyond are not looked at ([`FramesRead::complete`] says so), so a
//!   10,000-frame file costs what its first frames cost;
//! * a frame that fails to decode ends the animation there, as in viewers:
//!   the frames before it have been seen.

use std::io::Cursor;

use image::codecs::gif::GifDecoder;
use image::codecs::png::PngDecoder;
use image::codecs::webp::WebPDecoder;
use image::{AnimationDecoder, DynamicImage, Frames, ImageDecoder};

use super::view::{views_of, View};
use super::{ImageFormat, Reduction};
use crate::error::HashError;
use crate::limits::Limits;

/// What reading an animation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct FramesRead {
    /// Frames decoded and turned into views.
    pub frames: u32,
    /// Whether every frame was read (false: a bound or a corrupt frame
    /// ended the reading early).
    pub complete: bool,
}

/// Reads the frames of `bytes` if it is an animation (GIF, APNG, animated
/// WebP) and hands each frame's views to `visit`, in order. A still image
/// gives no frames (`Ok(None)`).
pub fn frames(
    bytes: &[u8],
    format: ImageFormat,
    limits: &Limits,
    reduction: Reduction,
    visit: &mut dyn FnMut(View),
) -> Result<Option<FramesRead>, HashError> {
    let malformed = |e: image::ImageError| HashError::Malformed(e.to_string());
    let (width, height, frames) = match format {
        ImageFormat::Gif => {
            if !gif_has_frames_after_the_first(bytes) {
                return Ok(None);
            }
            let mut decoder = GifDecoder::new(Cursor::new(bytes)).map_err(malformed)?;
            let (width, height) = decoder.dimensions();
            check_canvas(width, height, limits)?;
            decoder
                .set_limits(decoder_limits(limits))
                .map_err(malformed)?;
            (width, height, decoder.into_frames())
        }
        ImageFormat::Png => {
            let mut decoder = PngDecoder::new(Cursor::new(bytes)).map_err(malformed)?;
            if !decoder.is_apng().map_err(malformed)? {
                return Ok(None);
            }
            let (width, height) = decoder.dimensions();
            check_canvas(width, height, limits)?;
            decoder
                .set_limits(decoder_limits(limits))
                .map_err(malformed)?;
            (
                width,
                height,
                decoder.apng().map_err(malformed)?.into_frames(),
            )
        }
        ImageFormat::WebP => {
            let mut decoder = WebPDecoder::new(Cursor::new(bytes)).map_err(malformed)?;
            if !decoder.has_animation() {
                return Ok(None);
            }
            let (width, height) = decoder.dimensions();
            check_canvas(width, height, limits)?;
            decoder
                .set_limits(decoder_limits(limits))
                .map_err(malformed)?;
            (width, height, decoder.into_frames())
        }
        _ => return Ok(None),
    };
    Ok(Some(read(width, height, frames, limits, reduction, visit)))
}

fn read(
    width: u32,
    height: u32,
    mut frames: Frames<'_>,
    limits: &Limits,
    reduction: Reduction,
    visit: &mut dyn FnMut(View),
) -> FramesRead {
    let canvas = u64::from(width) * u64::from(height);
    let block = reduction.block_size(width, height);
    let mut read = FramesRead::default();
    loop {
        let within = read.frames < limits.max_frames
            && canvas * u64::from(read.frames + 1) <= limits.max_frame_pixels;
        if !within {
            // One more frame exists? Then the reading is incomplete.
            read.complete = frames.next().is_none();
            return read;
        }
        let Some(frame) = frames.next() else {
            read.complete = true;
            return read;
        };
        let Ok(frame) = frame else {
            return read;
        };
        read.frames += 1;
        let image = DynamicImage::ImageRgba8(frame.into_buffer());
        for view in views_of(&image, Some(read.frames), block) {
            visit(view);
        }
    }
}

/// Whether a GIF has a second image, from its block structure alone (no
/// decoding): a still GIF is not read twice, and a large still GIF is not
/// held to the animation's memory bound.
pub fn gif_has_frames_after_the_first(bytes: &[u8]) -> bool {
    let table = |packed: u8| {
        if packed & 0x80 != 0 {
            3usize << ((packed & 7) + 1)
        } else {
            0
        }
    };
    let Some(&packed) = bytes.get(10) else {
        return false;
    };
    let mut at = 13 + table(packed);
    let mut images = 0;
    // Skips data sub-blocks from `at`; the offset after the terminator.
    let sub_blocks = |mut at: usize| -> Option<usize> {
        loop {
            let len = usize::from(*bytes.get(at)?);
            at += 1 + len;
            if len == 0 {
                return Some(at);
            }
        }
    };
    loop {
        match bytes.get(at) {
            Some(0x21) => match sub_blocks(at + 2) {
                Some(next) => at = next,
                None => return false,
            },
            Some(0x2C) => {
                images += 1;
                if images == 2 {
                    return true;
                }
                let Some(&packed) = bytes.get(at + 9) else {
                    return false;
                };
                // Descriptor, local table, LZW code size, then the data.
                match sub_blocks(at + 10 + table(packed) + 1) {
                    Some(next) => at = next,
                    None => return false,
                }
            }
            _ => return false,
        }
    }
}

/// Refuses a canvas whose three RGBA buffers would exceed the decode cap.
fn check_canvas(width: u32, height: u32, limits: &Limits) -> Result<(), HashError> {
    limits.check_dimensions(width, height)?;
    let bytes = u64::from(width) * u64::from(height) * 4 * 3;
    if bytes > limits.max_alloc as u64 {
        return Err(HashError::MemoryLimit {
            limit: limits.max_alloc,
        });
    }
    Ok(())
}

fn decoder_limits(limits: &Limits) -> image::Limits {
    let mut out = image::Limits::default();
    out.max_image_width = Some(limits.max_width);
    out.max_image_height = Some(limits.max_height);
    out.max_alloc = Some(limits.max_alloc as u64);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GIF with `frames` 1x1 images (no global table).
    fn gif(frames: usize) -> Vec<u8> {
        let mut out = b"GIF89a\x01\x00\x01\x00\x00\x00\x00".to_vec();
        for _ in 0..frames {
            out.extend_from_slice(&[0x21, 0xF9, 0x04, 0x00, 0x0A, 0x00, 0x00, 0x00]);
            out.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0x80]);
            out.extend_from_slice(&[0; 6]); // local table of 2 colours
            out.extend_from_slice(&[0x02, 0x02, 0x44, 0x01, 0x00]);
        }
        out.push(0x3B);
        out
    }

    #[test]
    fn counts_gif_images_from_the_block_structure() {
        assert!(!gif_has_frames_after_the_first(&gif(1)));
        assert!(gif_has_frames_after_the_first(&gif(2)));
        assert!(gif_has_frames_after_the_first(&gif(50)));
        let two = gif(2);
        assert!(!gif_has_frames_after_the_first(&two[..30]));
        assert!(!gif_has_frames_after_the_first(b"GIF89a"));
    }
}
