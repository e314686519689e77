//! Stage 1: RGB to luma.
//!
//! Weights 0.299, 0.587, 0.114 (ITU-R BT.601, as ThreatExchange's
//! `luma_from_R_coeff` etc.). The sum is formed in `f64` and rounded once to
//! `f32`, which is what the `pdqhash` package (the reference we test against)
//! does with numpy before handing the buffer to the C++ core; the C++ CLI
//! sums in `f32` instead, which can differ in the last bit of a pixel.
//! Per-channel products are tabulated: the same `f64` values, no multiply.

use std::sync::OnceLock;

/// A single-channel float image, row-major, as the PDQ stages consume it.
#[derive(Debug, Clone, PartialEq)]
pub struct LumaImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<f32>,
}

/// The reference's luma weights (ITU-R BT.601).
pub(crate) const LUMA_FROM_R: f64 = 0.299;
pub(crate) const LUMA_FROM_G: f64 = 0.587;
pub(crate) const LUMA_FROM_B: f64 = 0.114;

struct LumaTables {
    r: [f64; 256],
    g: [f64; 256],
    b: [f64; 256],
}

fn tables() -> &'static LumaTables {
    static TABLES: OnceLock<LumaTables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut tables = LumaTables {
            r: [0.0; 256],
            g: [0.0; 256],
            b: [0.0; 256],
        };
        for v in 0..256 {
            tables.r[v] = v as f64 * LUMA_FROM_R;
            tables.g[v] = v as f64 * LUMA_FROM_G;
            tables.b[v] = v as f64 * LUMA_FROM_B;
        }
        tables
    })
}

/// Luma of one RGB pixel, exactly as the reference pipeline computes it.
#[inline]
pub fn luma_of(r: u8, g: u8, b: u8) -> f32 {
    let t = tables();
    (t.r[r as usize] + t.g[g as usize] + t.b[b as usize]) as f32
}

impl LumaImage {
    /// Luma from packed pixels with `channels` bytes each, R, G, B first
    /// (3 for RGB, 4 for RGBA: alpha is ignored, as the reference drops it).
    pub fn from_interleaved(data: &[u8], width: usize, height: usize, channels: usize) -> Self {
        debug_assert!(channels >= 3);
        let t = tables();
        let pixels = data
            .chunks_exact(channels)
            .take(width * height)
            .map(|px| (t.r[px[0] as usize] + t.g[px[1] as usize] + t.b[px[2] as usize]) as f32)
            .collect();
        LumaImage {
            width,
            height,
            pixels,
        }
    }

    /// Luma from grey pixels with `channels` bytes each (1 for grey, 2 for
    /// grey+alpha). A grey value v is treated as the RGB pixel (v, v, v), as
    /// the reference's RGB conversion does.
    pub fn from_grey(data: &[u8], width: usize, height: usize, channels: usize) -> Self {
        let mut lut = [0f32; 256];
        for (v, slot) in lut.iter_mut().enumerate() {
            *slot = luma_of(v as u8, v as u8, v as u8);
        }
        let pixels = data
            .chunks_exact(channels)
            .take(width * height)
            .map(|px| lut[px[0] as usize])
            .collect();
        LumaImage {
            width,
            height,
            pixels,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luma_matches_f64_then_f32() {
        assert_eq!(luma_of(0, 0, 0), 0.0);
        let expected = (255.0f64 * 0.299 + 255.0 * 0.587 + 255.0 * 0.114) as f32;
        assert_eq!(luma_of(255, 255, 255), expected);
        let expected = (10.0f64 * 0.299 + 200.0 * 0.587 + 30.0 * 0.114) as f32;
        assert_eq!(luma_of(10, 200, 30), expected);
    }

    #[test]
    fn rgba_ignores_alpha() {
        let rgba = [10, 20, 30, 0, 10, 20, 30, 255];
        let image = LumaImage::from_interleaved(&rgba, 2, 1, 4);
        assert_eq!(image.pixels[0], image.pixels[1]);
    }
}

/// Pixel-space geometry, used to apply EXIF orientation and to hash
/// rotated or mirrored copies for real.
impl LumaImage {
    fn remap(
        &self,
        width: usize,
        height: usize,
        source: impl Fn(usize, usize) -> (usize, usize),
    ) -> LumaImage {
        let mut pixels = Vec::with_capacity(width * height);
        for y in 0..height {
            for x in 0..width {
                let (sx, sy) = source(x, y);
                pixels.push(self.pixels[sy * self.width + sx]);
            }
        }
        LumaImage {
            width,
            height,
            pixels,
        }
    }

    /// Rotated 90 degrees clockwise.
    pub fn rotate90_cw(&self) -> LumaImage {
        let h = self.height;
        self.remap(self.height, self.width, |x, y| (y, h - 1 - x))
    }

    /// Rotated 180 degrees.
    pub fn rotate180(&self) -> LumaImage {
        let (w, h) = (self.width, self.height);
        self.remap(w, h, |x, y| (w - 1 - x, h - 1 - y))
    }

    /// Rotated 90 degrees counter-clockwise (270 clockwise).
    pub fn rotate270_cw(&self) -> LumaImage {
        let w = self.width;
        self.remap(self.height, self.width, |x, y| (w - 1 - y, x))
    }

    /// Mirrored left to right.
    pub fn flip_horizontal(&self) -> LumaImage {
        let w = self.width;
        self.remap(w, self.height, |x, y| (w - 1 - x, y))
    }

    /// Mirrored top to bottom.
    pub fn flip_vertical(&self) -> LumaImage {
        let h = self.height;
        self.remap(self.width, h, |x, y| (x, h - 1 - y))
    }

    /// Mirrored across the main diagonal.
    pub fn transpose(&self) -> LumaImage {
        self.remap(self.height, self.width, |x, y| (y, x))
    }

    /// Mirrored across the anti-diagonal.
    pub fn transverse(&self) -> LumaImage {
        let (w, h) = (self.width, self.height);
        self.remap(h, w, |x, y| (w - 1 - y, h - 1 - x))
    }
}

#[cfg(test)]
mod geometry_tests {
    use super::*;

    fn sample() -> LumaImage {
        // 3 wide, 2 high:  0 1 2 / 3 4 5
        LumaImage {
            width: 3,
            height: 2,
            pixels: (0..6).map(|v| v as f32).collect(),
        }
    }

    #[test]
    fn rotations_and_flips() {
        assert_eq!(
            sample().rotate90_cw().pixels,
            vec![3.0, 0.0, 4.0, 1.0, 5.0, 2.0]
        );
        assert_eq!(
            sample().rotate270_cw().pixels,
            vec![2.0, 5.0, 1.0, 4.0, 0.0, 3.0]
        );
        assert_eq!(
            sample().rotate180().pixels,
            vec![5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
        );
        assert_eq!(
            sample().flip_horizontal().pixels,
            vec![2.0, 1.0, 0.0, 5.0, 4.0, 3.0]
        );
        assert_eq!(
            sample().flip_vertical().pixels,
            vec![3.0, 4.0, 5.0, 0.0, 1.0, 2.0]
        );
        assert_eq!(
            sample().transpose().pixels,
            vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
        );
        assert_eq!(
            sample().transverse().pixels,
            vec![5.0, 2.0, 4.0, 1.0, 3.0, 0.0]
        );
        assert_eq!(sample().rotate90_cw().rotate270_cw(), sample());
    }
}
