//! JPEG, decoded with `jpeg-decoder` at reduced scale when asked.
//!
//! JPEG stores 8x8 blocks of DCT coefficients, so a decoder can produce the
//! image at 1/2, 1/4 or 1/8 size by running a smaller inverse DCT on each
//! block: less work and a buffer up to 64 times smaller (PIL's "draft mode"
//! does the same through libjpeg). PDQ only keeps a 64x64 downsample, so a
//! few hundred pixels per side are enough.

use jpeg_decoder::{Decoder, PixelFormat};

use super::{DecodedImage, Reduction};
use crate::error::HashError;
use crate::limits::Limits;
use crate::pdq::LumaImage;

fn map_error(error: jpeg_decoder::Error) -> HashError {
    match error {
        jpeg_decoder::Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            HashError::Truncated("JPEG data ends early".into())
        }
        jpeg_decoder::Error::Io(e) => HashError::Malformed(e.to_string()),
        jpeg_decoder::Error::Unsupported(feature) => {
            HashError::Malformed(format!("unsupported JPEG feature: {feature:?}"))
        }
        other => HashError::Malformed(other.to_string()),
    }
}

/// Decodes a JPEG to luma, honouring `limits` and `reduction`.
pub fn decode(bytes: &[u8], limits: &Limits, reduction: Reduction, want_exif: bool) -> Result<DecodedImage, HashError> {
    let mut decoder = Decoder::new(bytes);
    decoder.read_info().map_err(map_error)?;
    let info = decoder.info().ok_or_else(|| HashError::Malformed("no JPEG frame header".into()))?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    limits.check_dimensions(width, height)?;
    let exif_orientation = if want_exif {
        decoder.exif_data().and_then(image::metadata::Orientation::from_exif_chunk)
    } else {
        None
    };

    let block = reduction.block_size(width, height);
    let eighths = 8 / block;
    let (out_w, out_h) = if eighths == 8 {
        (info.width, info.height)
    } else {
        let req_w = (width * eighths).div_ceil(8) as u16;
        let req_h = (height * eighths).div_ceil(8) as u16;
        decoder.scale(req_w, req_h).map_err(map_error)?
    };
    let (out_w, out_h) = (usize::from(out_w), usize::from(out_h));
    let channels = info.pixel_format.pixel_bytes();
    let needed = out_w * out_h * channels;
    if needed > limits.max_alloc {
        return Err(HashError::MemoryLimit { limit: limits.max_alloc });
    }
    decoder.set_max_decoding_buffer_size(limits.max_alloc);
    let pixels = decoder.decode().map_err(map_error)?;
    if pixels.len() < needed {
        return Err(HashError::Truncated("JPEG decoded fewer pixels than declared".into()));
    }

    let luma = match info.pixel_format {
        PixelFormat::RGB24 => LumaImage::from_interleaved(&pixels, out_w, out_h, 3),
        PixelFormat::L8 => LumaImage::from_grey(&pixels, out_w, out_h, 1),
        PixelFormat::L16 => {
            // 16-bit samples, big-endian: keep the high byte.
            LumaImage::from_grey(&pixels, out_w, out_h, 2)
        }
        PixelFormat::CMYK32 => {
            let rgb: Vec<u8> = pixels
                .chunks_exact(4)
                .flat_map(|p| {
                    let k = 255 - u32::from(p[3]);
                    let channel = |c: u8| ((255 - u32::from(c)) * k / 255) as u8;
                    [channel(p[0]), channel(p[1]), channel(p[2])]
                })
                .collect();
            LumaImage::from_interleaved(&rgb, out_w, out_h, 3)
        }
    };
    Ok(DecodedImage {
        format: super::ImageFormat::Jpeg,
        width,
        height,
        luma,
        block,
        exif_orientation,
    })
}
