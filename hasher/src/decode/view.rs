//! What a viewer sees, where it differs from the pixels the reference
//! hashes.
//!
//! PDQ's reference hashes the stored RGB values and drops alpha, and reads
//! only the first (or default) image of an animation. A viewer composites
//! alpha over the page's background and plays every frame, so an image can
//! show a listed picture while its stored RGB, or its first frame, is
//! something else. Each [`View`] is one such rendering, as luma ready for
//! PDQ: the caller hashes it as one more query hash, next to the image's own
//! (reference) hash, which stays exactly as it was.
//!
//! Backgrounds differ between viewers (white pages, dark themes, image
//! viewers' black), so an image with any non-opaque pixel gets two views:
//! over white and over black. Fully opaque images and frames get none
//! beyond their pixels as they are.

use core::fmt;

use image::DynamicImage;

use crate::pdq::luma::luma_of;
use crate::pdq::{FullScale, LumaImage};

/// The background alpha is composited over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Background {
    White,
    Black,
}

impl Background {
    fn value(self) -> u32 {
        match self {
            Background::White => 255,
            Background::Black => 0,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Background::White => "over-white",
            Background::Black => "over-black",
        }
    }
}

/// Which rendering a view is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rendering {
    /// The frame of an animation (1 is the first shown), composited as the
    /// format specifies; `None` for a still image.
    pub frame: Option<u32>,
    /// The background its alpha is composited over; `None` when opaque.
    pub background: Option<Background>,
}

impl fmt::Display for Rendering {
    /// `over-white`, `frame-3`, `frame-3-over-black`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.frame, self.background) {
            (Some(n), Some(b)) => write!(f, "frame-{n}-{}", b.name()),
            (Some(n), None) => write!(f, "frame-{n}"),
            (None, Some(b)) => f.write_str(b.name()),
            (None, None) => f.write_str("pixels"),
        }
    }
}

/// One rendering as luma, possibly reduced (`block` pixels a side per
/// sample) from `width` x `height`.
#[derive(Debug, Clone)]
pub struct View {
    pub rendering: Rendering,
    pub luma: LumaImage,
    pub width: u32,
    pub height: u32,
    pub block: u32,
}

impl View {
    /// What PDQ needs to know about the scale of [`View::luma`].
    pub fn full_scale(&self) -> FullScale {
        FullScale {
            width: self.width as usize,
            height: self.height as usize,
            block: self.block as usize,
            always_project: true,
        }
    }
}

/// Whether any pixel of `image` is not fully opaque.
pub fn has_visible_alpha(image: &DynamicImage) -> bool {
    match image {
        DynamicImage::ImageRgba8(buffer) => buffer.pixels().any(|p| p.0[3] != u8::MAX),
        DynamicImage::ImageLumaA8(buffer) => buffer.pixels().any(|p| p.0[1] != u8::MAX),
        DynamicImage::ImageRgba16(buffer) => buffer.pixels().any(|p| p.0[3] != u16::MAX),
        DynamicImage::ImageLumaA16(buffer) => buffer.pixels().any(|p| p.0[1] != u16::MAX),
        other if other.color().has_alpha() => other.to_rgba8().pixels().any(|p| p.0[3] != 255),
        _ => false,
    }
}

/// The views of one still image or frame: over white and over black when
/// it has non-opaque pixels, else (for a frame) its pixels as they are, at
/// `block` pixels per sample. A still opaque image has no view: its own
/// hash is what a viewer sees.
pub fn views_of(image: &DynamicImage, frame: Option<u32>, block: u32) -> Vec<View> {
    let (width, height) = (image.width(), image.height());
    let view = |background: Option<Background>, luma: LumaImage| View {
        rendering: Rendering { frame, background },
        luma,
        width,
        height,
        block,
    };
    if has_visible_alpha(image) {
        let owned;
        let rgba = match image {
            DynamicImage::ImageRgba8(buffer) => buffer,
            other => {
                owned = other.to_rgba8();
                &owned
            }
        };
        let (w, h) = (width as usize, height as usize);
        [Background::White, Background::Black]
            .into_iter()
            .map(|background| {
                let bg = background.value();
                let luma = block_means(w, h, block as usize, |x, y| {
                    let [r, g, b, a] = rgba.get_pixel(x as u32, y as u32).0;
                    let a = u32::from(a);
                    let over = |c: u8| ((u32::from(c) * a + bg * (255 - a) + 127) / 255) as u8;
                    luma_of(over(r), over(g), over(b))
                });
                view(Some(background), luma)
            })
            .collect()
    } else if frame.is_some() {
        let rgb = image.to_rgb8();
        let luma = block_means(width as usize, height as usize, block as usize, |x, y| {
            let [r, g, b] = rgb.get_pixel(x as u32, y as u32).0;
            luma_of(r, g, b)
        });
        vec![view(None, luma)]
    } else {
        Vec::new()
    }
}

/// Means of `block` x `block` squares of `pixel(x, y)` over a `width` x
/// `height` image; the last row and column of blocks may be smaller.
fn block_means(
    width: usize,
    height: usize,
    block: usize,
    pixel: impl Fn(usize, usize) -> f32,
) -> LumaImage {
    let block = block.max(1);
    let (out_w, out_h) = (width.div_ceil(block), height.div_ceil(block));
    let mut pixels = vec![0f32; out_w * out_h];
    for y in 0..height {
        let row = &mut pixels[(y / block) * out_w..][..out_w];
        for x in 0..width {
            row[x / block] += pixel(x, y);
        }
    }
    for (i, value) in pixels.iter_mut().enumerate() {
        let (bx, by) = (i % out_w, i / out_w);
        let w = ((bx + 1) * block).min(width) - bx * block;
        let h = ((by + 1) * block).min(height) - by * block;
        *value /= (w * h) as f32;
    }
    LumaImage {
        width: out_w,
        height: out_h,
        pixels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    #[test]
    fn names() {
        let r = |frame, background| Rendering { frame, background }.to_string();
        assert_eq!(r(None, Some(Background::White)), "over-white");
        assert_eq!(r(Some(3), None), "frame-3");
        assert_eq!(r(Some(2), Some(Background::Black)), "frame-2-over-black");
    }

    #[test]
    fn opaque_stills_have_no_views_and_frames_one() {
        let image = DynamicImage::ImageRgb8(RgbImage::from_pixel(8, 8, Rgb([10, 20, 30])));
        assert!(views_of(&image, None, 1).is_empty());
        let frame = views_of(&image, Some(2), 1);
        assert_eq!(frame.len(), 1);
        assert_eq!(frame[0].rendering.background, None);
        let opaque = DynamicImage::ImageRgba8(RgbaImage::from_pixel(4, 4, Rgba([1, 2, 3, 255])));
        assert!(views_of(&opaque, None, 1).is_empty());
    }

    #[test]
    fn alpha_is_composited_over_both_backgrounds() {
        // Black ink whose coverage is in alpha: white page shows grey, RGB is all black.
        let mut image = RgbaImage::from_pixel(4, 2, Rgba([0, 0, 0, 0]));
        image.put_pixel(0, 0, Rgba([0, 0, 0, 255]));
        image.put_pixel(1, 0, Rgba([200, 200, 200, 0]));
        let views = views_of(&DynamicImage::ImageRgba8(image), None, 1);
        assert_eq!(views.len(), 2);
        let white = &views[0].luma.pixels;
        let black = &views[1].luma.pixels;
        assert!(
            white[0] < 1.0 && (white[1] - 255.0).abs() < 0.5,
            "{white:?}"
        );
        assert!(black.iter().all(|v| *v < 1.0), "{black:?}");
    }

    #[test]
    fn block_means_average_partial_blocks() {
        let luma = block_means(3, 3, 2, |x, y| (x + 3 * y) as f32);
        assert_eq!((luma.width, luma.height), (2, 2));
        assert_eq!(luma.pixels, vec![2.0, 3.5, 6.5, 8.0]);
    }
}
