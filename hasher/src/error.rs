//! One error type for everything that can go wrong between raw bytes and a
//! hash. Callers (the worker's fail mode, the CLI's per-file error line, the
//! service's 4xx body) need to tell *why* an image was not hashed, so each
//! cause is its own variant rather than a string.

use thiserror::Error;

use crate::decode::ImageFormat;

/// Why an input could not be hashed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashError {
    /// The input is empty.
    #[error("empty input")]
    Empty,
    /// The first bytes match no supported image format.
    #[error("not a supported image (JPEG, PNG, GIF, WebP, BMP, ICO, TIFF or SVG)")]
    UnsupportedFormat,
    /// An image in a format that is recognised but cannot be decoded here
    /// (AVIF, HEIF, JPEG XL): not "not an image", an image left unchecked.
    #[error("{} images are recognised but cannot be decoded", .0.name())]
    UndecodableFormat(ImageFormat),
    /// An SVG with no raster image embedded in it: vectors are not rendered,
    /// so there are no pixels to hash.
    #[error("SVG with no embedded raster image (vectors are not rendered)")]
    NoRaster,
    /// The input is larger than the configured byte limit.
    #[error("input is {actual} bytes, over the limit of {limit} bytes")]
    InputTooLarge { actual: usize, limit: usize },
    /// The header declares dimensions over a configured limit. Checked before
    /// any pixel buffer is allocated, so decompression bombs cost microseconds.
    #[error("image is {width}x{height}, over the limit ({reason})")]
    DimensionsTooLarge {
        width: u32,
        height: u32,
        reason: &'static str,
    },
    /// The image declares a zero width or height.
    #[error("image has no pixels ({width}x{height})")]
    NoPixels { width: u32, height: u32 },
    /// The data ends before the image does.
    #[error("truncated image: {0}")]
    Truncated(String),
    /// The data is not a valid image of its format.
    #[error("malformed image: {0}")]
    Malformed(String),
    /// Decoding would need more memory than the configured limit.
    #[error("decoding needs more memory than the limit of {limit} bytes")]
    MemoryLimit { limit: usize },
}
