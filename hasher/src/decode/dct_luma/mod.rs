//! Baseline JPEG straight to a scaled luma plane, for the reduced path.
//!
//! PDQ at reduced scale needs one luma sample per 2x2, 4x4 or 8x8 pixels,
//! which a JPEG holds almost directly: the luma component's lowest DCT
//! coefficients. A general decoder reads every coefficient of every
//! component, runs an inverse DCT on each block, upsamples chroma and
//! converts to RGB, only for PDQ to fold the RGB back into luma. This path
//! reads only the luma coefficients the reduced inverse DCT uses, skips the
//! rest of the bit stream a whole run of coefficients per table lookup
//! ([`huffman`]), never touches chroma values, and writes luma directly:
//! for YCbCr JPEG, Y is exactly the 0.299/0.587/0.114 luma PDQ computes
//! from RGB (before RGB's rounding and clamping).
//!
//! It covers what cameras and the web produce: 8-bit sequential Huffman
//! JPEG, grey or YCbCr, in one interleaved scan or with luma in a scan of
//! its own first, with or without restart markers. Anything else, and any stream it finds inconsistent, is a
//! [`Fallback`], and the general decoder (`jpeg-decoder`) takes the file,
//! so its errors, and its handling of damaged files, stay the reference.

mod bits;
mod huffman;
mod idct;
mod scan;
mod segments;

pub use segments::Headers;

use crate::pdq::LumaImage;

/// Why the fast path hands a file to the general decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// A kind of JPEG this path does not decode.
    Unsupported(&'static str),
    /// Something in the stream is inconsistent.
    Corrupt(&'static str),
}

/// Reads the segments up to the first scan.
pub fn read_headers(bytes: &[u8]) -> Result<Headers<'_>, Fallback> {
    segments::read(bytes)
}

/// Decodes the luma plane with one sample per `block` x `block` pixels
/// (2, 4 or 8), refusing to allocate more than `max_alloc` bytes for it.
pub fn decode(
    bytes: &[u8],
    headers: &Headers,
    block: u32,
    max_alloc: usize,
) -> Result<LumaImage, Fallback> {
    let size = match block {
        2 => 4,
        4 => 2,
        8 => 1,
        _ => return Err(Fallback::Unsupported("block size other than 2, 4 or 8")),
    };
    let (width, height) = (usize::from(headers.width), usize::from(headers.height));
    let samples = width.div_ceil(block as usize) * height.div_ceil(block as usize);
    if samples.saturating_mul(std::mem::size_of::<f32>()) > max_alloc {
        return Err(Fallback::Unsupported("plane over the memory limit"));
    }
    let data = bytes
        .get(headers.data_start..)
        .ok_or(Fallback::Corrupt("no scan data"))?;
    scan::decode_luma(headers, data, size)
}
