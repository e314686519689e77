//! Limits on what the decoder accepts, checked against the header before
//! any pixel buffer is allocated.
//!
//! A few bytes can declare a huge image (a 38-byte lossless WebP holds
//! 16383 x 6103 pixels of one colour, validly), so what hashing an image
//! costs is decided by its header, not its size. Every decode path
//! therefore works out, from the header alone, the bytes it will hold at
//! once (decoder buffer, any conversion, the luma plane and PDQ's working
//! copy of it) and refuses the image when that is over
//! [`Limits::max_memory`]; the decoder's own buffer is capped again by
//! [`Limits::max_alloc`], and the pixels decoded by [`Limits::max_pixels`],
//! which bounds the CPU time. The extra query hashes
//! ([`crate::variants`]) are computed from at most
//! [`crate::variants::MAX_VARIANT_PIXELS`] of luma whatever the image size.
//!
//! Defaults suit a native tool; [`Limits::edge`] suits a Workers isolate,
//! whose 128 MB are shared by concurrent requests.

use crate::error::HashError;

/// Upper bounds on one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest input in bytes.
    pub max_input_bytes: usize,
    /// Largest width in pixels.
    pub max_width: u32,
    /// Largest height in pixels.
    pub max_height: u32,
    /// Largest width x height.
    pub max_pixels: u64,
    /// Largest single allocation a decoder may make, in bytes.
    pub max_alloc: usize,
    /// Most frames of an animation (GIF, APNG, WebP) decoded and hashed;
    /// later frames are not looked at ([`crate::decode::frames`]).
    pub max_frames: u32,
    /// Most canvas pixels decoded over all frames of an animation (frames
    /// x width x height): the CPU bound on an animation, whatever its frame
    /// count.
    pub max_frame_pixels: u64,
    /// Most bytes hashing one image may hold at once: the decoder's buffer,
    /// a conversion of it, the luma plane and PDQ's working copy, as
    /// estimated from the header before any of them is allocated. The
    /// variants' working set ([`crate::variants::MAX_VARIANT_PIXELS`]) comes
    /// on top of it.
    pub max_memory: usize,
}

impl Default for Limits {
    /// 64 MiB of input, 20,000 px a side, 100 megapixels, a 256 MiB decode
    /// buffer and 512 MiB in all per image, 256 frames or 400 megapixels of
    /// frames: any photo at the default (reduced) scale, and at full
    /// resolution photos up to about 30 MP (JPEG) or 40 MP (other formats).
    fn default() -> Self {
        Limits {
            max_input_bytes: 64 << 20,
            max_width: 20_000,
            max_height: 20_000,
            max_pixels: 100_000_000,
            max_alloc: 256 << 20,
            max_memory: 512 << 20,
            max_frames: 256,
            max_frame_pixels: 400_000_000,
        }
    }
}

impl Limits {
    /// Limits for an edge isolate: 25 MiB of input, 50 megapixels (JPEGs are
    /// decoded at reduced scale, so this is not the memory used), a
    /// 48 MiB cap on any decode buffer, 112 MiB in all (which every image
    /// the 48 MiB cap admits fits: 48 MiB, a 24 MiB conversion and twice a
    /// 16 MiB luma plane), and animations read for at most 64 frames or 32
    /// megapixels of frames (a 500 x 500 GIF: 64 frames; a 1000 x 1000
    /// one: 32).
    pub fn edge() -> Self {
        Limits {
            max_input_bytes: 25 << 20,
            max_width: 16_384,
            max_height: 16_384,
            max_pixels: 50_000_000,
            max_alloc: 48 << 20,
            max_memory: 112 << 20,
            max_frames: 64,
            max_frame_pixels: 32_000_000,
        }
    }

    /// Refuses an input that is too large before anything else is done.
    pub fn check_input(&self, len: usize) -> Result<(), HashError> {
        if len > self.max_input_bytes {
            return Err(HashError::InputTooLarge {
                actual: len,
                limit: self.max_input_bytes,
            });
        }
        Ok(())
    }

    /// Refuses an image whose decode would hold more than `max_memory`
    /// bytes at once (`bytes` is the path's estimate from the header).
    pub fn check_memory(&self, bytes: u64) -> Result<(), HashError> {
        if bytes > self.max_memory as u64 {
            return Err(HashError::MemoryLimit {
                limit: self.max_memory,
            });
        }
        Ok(())
    }

    /// Bytes of a luma plane of `pixels` samples and PDQ's working copy of
    /// it (the full-resolution blur needs a scratch plane of the same size).
    pub fn luma_bytes(pixels: u64) -> u64 {
        pixels.saturating_mul(2 * std::mem::size_of::<f32>() as u64)
    }

    /// Refuses dimensions from a header that are empty or over the limits.
    pub fn check_dimensions(&self, width: u32, height: u32) -> Result<(), HashError> {
        if width == 0 || height == 0 {
            return Err(HashError::NoPixels { width, height });
        }
        let reason = if width > self.max_width {
            "width"
        } else if height > self.max_height {
            "height"
        } else if u64::from(width) * u64::from(height) > self.max_pixels {
            "total pixels"
        } else {
            return Ok(());
        };
        Err(HashError::DimensionsTooLarge {
            width,
            height,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bombs_and_empty_images() {
        let limits = Limits::default();
        assert!(limits.check_dimensions(4000, 3000).is_ok());
        assert_eq!(
            limits.check_dimensions(50_000, 50_000),
            Err(HashError::DimensionsTooLarge {
                width: 50_000,
                height: 50_000,
                reason: "width"
            })
        );
        assert!(matches!(
            limits.check_dimensions(15_000, 15_000),
            Err(HashError::DimensionsTooLarge {
                reason: "total pixels",
                ..
            })
        ));
        assert_eq!(
            limits.check_dimensions(0, 10),
            Err(HashError::NoPixels {
                width: 0,
                height: 10
            })
        );
        assert!(limits.check_input(limits.max_input_bytes + 1).is_err());
    }
}
