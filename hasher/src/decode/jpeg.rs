//! JPEG, decoded with `jpeg-decoder` at reduced scale when asked.
//!
//! JPEG stores 8x8 blocks of DCT coefficients, so a decoder can produce the
//! image at 1/2, 1/4 or 1/8 size by running a smaller inverse DCT on each
//! block: less work and a buffer up to 64 times smaller (PIL's "draft mode"
//! does the same through libjpeg). PDQ only keeps a 64x64 downsample, so a
//! few hundred pixels per side are enough.
//!
//! Not every JPEG shrinks that way: progressive files keep every DCT
//! coefficient at full resolution until the last scan, and lossless files
//! (the only kind with 9- to 16-bit samples) have no DCT at all. Their
//! buffers are sized from the frame header ([`Frame`]) and refused beyond
//! `max_alloc` before the decoder allocates them, so a 50 MP progressive
//! frame with a few bytes of data cannot take 300 MB of an isolate.

use jpeg_decoder::{Decoder, PixelFormat};

use super::jpeg_markers::{self, Segment, Walk};
use super::{dct_luma, DecodedImage, Reduction};
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

/// What the frame header (SOFn) says, read by [`frame`]: what jpeg-decoder
/// does not expose but its buffers depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Frame {
    /// The SOF marker's low byte: 0xC2/0xC6/0xCA progressive, 0xC3/0xC7/0xCB/0xCF lossless.
    marker: u8,
    precision: u8,
    width: u16,
    height: u16,
    /// Horizontal and vertical sampling factor of each component.
    sampling: Vec<(u8, u8)>,
}

impl Frame {
    fn is_progressive(&self) -> bool {
        matches!(self.marker, 0xC2 | 0xC6 | 0xCA | 0xCE)
    }

    fn is_lossless(&self) -> bool {
        matches!(self.marker, 0xC3 | 0xC7 | 0xCB | 0xCF)
    }

    /// Bytes jpeg-decoder 0.3 allocates at full resolution whatever the
    /// output scale: for progressive frames one i16 per coefficient of every
    /// block of every component (blocks padded to whole MCUs); for lossless
    /// frames, per sample and component, a u16 result, an i32 difference
    /// and the 2-byte output. Sequential DCT frames decode row by row.
    fn full_resolution_bytes(&self) -> u64 {
        let (width, height) = (u64::from(self.width), u64::from(self.height));
        let components = self.sampling.len() as u64;
        if self.is_lossless() {
            return width * height * components * (2 + 4 + 2);
        }
        if !self.is_progressive() {
            return 0;
        }
        let h_max = self
            .sampling
            .iter()
            .map(|s| u64::from(s.0.max(1)))
            .max()
            .unwrap_or(1);
        let v_max = self
            .sampling
            .iter()
            .map(|s| u64::from(s.1.max(1)))
            .max()
            .unwrap_or(1);
        let (mcu_w, mcu_h) = (width.div_ceil(8 * h_max), height.div_ceil(8 * v_max));
        self.sampling
            .iter()
            .map(|&(h, v)| mcu_w * u64::from(h) * mcu_h * u64::from(v) * 64 * 2)
            .sum()
    }
}

/// The first frame header of a JPEG, found where jpeg-decoder finds it
/// ([`Walk::AsJpegDecoder`]). `None` when there is none before the first
/// scan. The fields are read from the data after the length field, as
/// jpeg-decoder reads them, whatever the declared length.
fn frame(bytes: &[u8]) -> Option<Frame> {
    for segment in jpeg_markers::segments(bytes, Walk::AsJpegDecoder) {
        let Segment { marker, start, .. } = segment.ok()?;
        if marker == 0xDA {
            return None;
        }
        if matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) {
            let header = bytes.get(start..start + 6)?;
            let count = usize::from(header[5]);
            let sampling = (0..count)
                .map(|i| {
                    bytes
                        .get(start + 6 + 3 * i + 1)
                        .map(|&s| (s >> 4, s & 0x0F))
                })
                .collect::<Option<Vec<_>>>()?;
            return Some(Frame {
                marker,
                precision: header[0],
                height: u16::from_be_bytes([header[1], header[2]]),
                width: u16::from_be_bytes([header[3], header[4]]),
                sampling,
            });
        }
    }
    None
}

/// Samples of a lossless frame whose precision is not 8 bits: jpeg-decoder
/// returns them as native-endian u16 (even below 8 bits), which are
/// rescaled to 8 bits here (the top bits, as a 16-bit PNG is read).
fn to_8_bit(pixels: &[u8], precision: u8) -> Vec<u8> {
    pixels
        .chunks_exact(2)
        .map(|pair| {
            let value = u32::from(u16::from_ne_bytes([pair[0], pair[1]]));
            let scaled = if precision >= 8 {
                value >> (precision - 8)
            } else {
                value << (8 - precision)
            };
            scaled.min(255) as u8
        })
        .collect()
}

/// Decodes a JPEG to luma, honouring `limits` and `reduction`: at reduced
/// scale through [`dct_luma`] when the file is a kind it reads, otherwise
/// (and always at full scale) with jpeg-decoder.
pub fn decode(
    bytes: &[u8],
    limits: &Limits,
    reduction: Reduction,
    want_exif: bool,
) -> Result<DecodedImage, HashError> {
    if let Some(decoded) = decode_baseline_luma(bytes, limits, reduction, want_exif) {
        return Ok(decoded);
    }
    decode_general(bytes, limits, reduction, want_exif)
}

/// Any JPEG jpeg-decoder reads, at the scale `reduction` picks.
fn decode_general(
    bytes: &[u8],
    limits: &Limits,
    reduction: Reduction,
    want_exif: bool,
) -> Result<DecodedImage, HashError> {
    let mut decoder = Decoder::new(bytes);
    decoder.read_info().map_err(map_error)?;
    // read_info has checked the frame header (1, 3 or 4 components,
    // sampling factors 1 to 4); what it does not expose is read again here.
    let frame = frame(bytes).ok_or_else(|| HashError::Malformed("no JPEG frame header".into()))?;
    let info = decoder
        .info()
        .ok_or_else(|| HashError::Malformed("no JPEG frame header".into()))?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    limits.check_dimensions(width, height)?;
    if frame.full_resolution_bytes() > limits.max_alloc as u64 {
        return Err(HashError::MemoryLimit {
            limit: limits.max_alloc,
        });
    }
    let exif_orientation = if want_exif {
        decoder
            .exif_data()
            .and_then(image::metadata::Orientation::from_exif_chunk)
    } else {
        None
    };

    // Lossless frames have no DCT to scale.
    let block = if frame.is_lossless() {
        1
    } else {
        reduction.block_size(width, height)
    };
    let eighths = 8 / block;
    let (out_w, out_h) = if eighths == 8 {
        (info.width, info.height)
    } else {
        let req_w = (width * eighths).div_ceil(8) as u16;
        let req_h = (height * eighths).div_ceil(8) as u16;
        decoder.scale(req_w, req_h).map_err(map_error)?
    };
    let (out_w, out_h) = (usize::from(out_w), usize::from(out_h));
    let components = frame.sampling.len();
    // Lossless samples of other than 8 bits come as 2 bytes each.
    let wide = frame.is_lossless() && frame.precision != 8;
    let needed = out_w * out_h * components * if wide { 2 } else { 1 };
    if needed > limits.max_alloc {
        return Err(HashError::MemoryLimit {
            limit: limits.max_alloc,
        });
    }
    // jpeg-decoder holds its component planes (about the output's size)
    // beside the output, the coefficients of a progressive frame, then the
    // luma plane and PDQ's copy of it.
    let samples = (out_w * out_h) as u64;
    limits.check_memory(
        (needed as u64)
            .saturating_mul(2)
            .saturating_add(frame.full_resolution_bytes())
            .saturating_add(Limits::luma_bytes(samples)),
    )?;
    decoder.set_max_decoding_buffer_size(limits.max_alloc);
    let pixels = decoder.decode().map_err(map_error)?;
    if pixels.len() < needed {
        return Err(HashError::Truncated(
            "JPEG decoded fewer pixels than declared".into(),
        ));
    }

    let pixels = if wide {
        to_8_bit(&pixels, frame.precision)
    } else {
        pixels
    };
    let luma = match info.pixel_format {
        PixelFormat::RGB24 => LumaImage::from_interleaved(&pixels, out_w, out_h, 3),
        PixelFormat::L8 | PixelFormat::L16 => LumaImage::from_grey(&pixels, out_w, out_h, 1),
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
        views: Vec::new(),
    })
}

/// The fast path for the reduced scale ([`dct_luma`]); `None` hands the
/// file to jpeg-decoder.
fn decode_baseline_luma(
    bytes: &[u8],
    limits: &Limits,
    reduction: Reduction,
    want_exif: bool,
) -> Option<DecodedImage> {
    let headers = dct_luma::read_headers(bytes).ok()?;
    let (width, height) = (u32::from(headers.width), u32::from(headers.height));
    limits.check_dimensions(width, height).ok()?;
    let block = reduction.block_size(width, height);
    if block == 1 {
        return None;
    }
    let samples = u64::from(width.div_ceil(block)) * u64::from(height.div_ceil(block));
    limits.check_memory(Limits::luma_bytes(samples)).ok()?;
    let luma = dct_luma::decode(bytes, &headers, block, limits.max_alloc).ok()?;
    let exif_orientation = if want_exif {
        headers
            .exif
            .and_then(image::metadata::Orientation::from_exif_chunk)
    } else {
        None
    };
    Some(DecodedImage {
        format: super::ImageFormat::Jpeg,
        width,
        height,
        luma,
        block,
        exif_orientation,
        views: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    //! The fast path against jpeg-decoder on the same files, at the same
    //! scale: JPEGs of many sizes, samplings, qualities and restart
    //! intervals, made by an independent encoder.

    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
    use proptest::prelude::*;

    use super::*;

    /// A photo-like RGB image: smooth gradients, a few hard edges and
    /// noise, so that every frequency and saturated colours occur.
    fn picture(width: usize, height: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        let mut noise = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 41) as i32 - 20
        };
        let mut rgb = Vec::with_capacity(width * height * 3);
        for y in 0..height {
            for x in 0..width {
                let edge = if (x / 37 + y / 23) % 3 == 0 { 90 } else { 0 };
                let base = [
                    (x * 255 / width) as i32 + edge,
                    (y * 255 / height) as i32,
                    ((x + y) * 200 / (width + height)) as i32 + 40 - edge,
                ];
                rgb.extend(base.map(|v| (v + noise()).clamp(0, 255) as u8));
            }
        }
        rgb
    }

    fn encode(
        rgb: &[u8],
        width: usize,
        height: usize,
        setup: impl FnOnce(&mut Encoder<&mut Vec<u8>>),
        grey: bool,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = Encoder::new(&mut out, 90);
        setup(&mut encoder);
        if grey {
            let luma: Vec<u8> = rgb
                .chunks_exact(3)
                .map(|p| {
                    ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000)
                        as u8
                })
                .collect();
            encoder
                .encode(&luma, width as u16, height as u16, ColorType::Luma)
                .expect("encodes");
        } else {
            encoder
                .encode(rgb, width as u16, height as u16, ColorType::Rgb)
                .expect("encodes");
        }
        out
    }

    const SAMPLINGS: [SamplingFactor; 8] = [
        SamplingFactor::F_1_1,
        SamplingFactor::F_2_1,
        SamplingFactor::F_1_2,
        SamplingFactor::F_2_2,
        SamplingFactor::F_4_1,
        SamplingFactor::F_4_2,
        SamplingFactor::F_1_4,
        SamplingFactor::F_2_4,
    ];

    /// Mean and largest absolute difference of two luma planes of one size.
    fn difference(a: &LumaImage, b: &LumaImage) -> (f32, f32) {
        assert_eq!((a.width, a.height), (b.width, b.height));
        let diffs = a.pixels.iter().zip(&b.pixels).map(|(x, y)| (x - y).abs());
        let (sum, max) = diffs.fold((0f32, 0f32), |(s, m), d| (s + d, m.max(d)));
        (sum / a.pixels.len() as f32, max)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]

        #[test]
        fn fast_path_agrees_with_jpeg_decoder(
            // Short sides from 385 pixels are decoded at reduced scale.
            width in 385usize..1100,
            height in 385usize..1100,
            seed in any::<u64>(),
            sampling in 0usize..8,
            quality in 40u8..99,
            restart in prop_oneof![Just(0u16), 1u16..9],
            optimized in any::<bool>(),
            grey in any::<bool>(),
        ) {
            let rgb = picture(width, height, seed);
            // jpeg-encoder 0.7 panics building some optimized tables; such
            // cases are skipped, not failed.
            let encoded = std::panic::catch_unwind(|| encode(&rgb, width, height, |e| {
                e.set_quality(quality);
                e.set_sampling_factor(SAMPLINGS[sampling]);
                e.set_optimized_huffman_tables(optimized);
                if restart > 0 {
                    e.set_restart_interval(restart);
                }
            }, grey));
            prop_assume!(encoded.is_ok());
            let bytes = encoded.expect("encoded");
            let limits = Limits::default();
            let fast = decode_baseline_luma(&bytes, &limits, Reduction::Scaled, false)
                .expect("a baseline JPEG takes the fast path");
            let general = decode_general(&bytes, &limits, Reduction::Scaled, false).expect("decodes");
            prop_assert_eq!(fast.block, general.block);
            prop_assert!(fast.block >= 2);
            let (mean, max) = difference(&fast.luma, &general.luma);
            // Rounding to 8-bit RGB, integer inverse DCTs and clamping of
            // saturated colours: well under one grey level on average.
            prop_assert!(mean < 0.75, "mean difference {mean}");
            prop_assert!(max < 24.0, "largest difference {max}");
        }

        #[test]
        fn a_cut_file_is_never_decoded_as_complete(cut in 0.0f64..1.0, seed in any::<u64>()) {
            let (width, height) = (520, 400);
            let rgb = picture(width, height, seed);
            let bytes = encode(&rgb, width, height, |e| e.set_sampling_factor(SamplingFactor::F_2_2), false);
            let limits = Limits::default();
            let whole = decode_baseline_luma(&bytes, &limits, Reduction::Scaled, false).expect("decodes");
            let cut_at = ((bytes.len() - 2) as f64 * cut) as usize;
            // Either refused (and left to jpeg-decoder) or every sample came
            // from the data: never zeros standing in for the missing part.
            if let Some(partial) = decode_baseline_luma(&bytes[..cut_at], &limits, Reduction::Scaled, false) {
                prop_assert_eq!(partial.luma.pixels, whole.luma.pixels);
            }
        }
    }

    #[test]
    fn progressive_and_small_files_go_to_jpeg_decoder() {
        let rgb = picture(400, 300, 7);
        let limits = Limits::default();
        let progressive = encode(&rgb, 400, 300, |e| e.set_progressive(true), false);
        assert!(decode_baseline_luma(&progressive, &limits, Reduction::Scaled, false).is_none());
        let baseline = encode(&rgb, 400, 300, |_| {}, false);
        assert!(decode_baseline_luma(&baseline, &limits, Reduction::Full, false).is_none());
        let small = encode(&picture(100, 90, 7), 100, 90, |_| {}, false);
        assert!(decode_baseline_luma(&small, &limits, Reduction::Scaled, false).is_none());
        // All three still decode.
        for bytes in [&progressive, &baseline, &small] {
            assert!(decode(bytes, &limits, Reduction::Scaled, false).is_ok());
        }
    }

    #[test]
    fn exif_orientation_is_read_on_the_fast_path() {
        // A minimal big-endian TIFF with one IFD entry: Orientation = 6.
        let exif: Vec<u8> = [
            &b"MM\0\x2a\0\0\0\x08"[..],
            &[0, 1],
            &[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0],
            &[0, 0, 0, 0],
        ]
        .concat();
        let rgb = picture(520, 400, 9);
        let bytes = encode(
            &rgb,
            520,
            400,
            |e| e.add_exif_metadata(&exif).expect("exif"),
            false,
        );
        let limits = Limits::default();
        let decoded =
            decode_baseline_luma(&bytes, &limits, Reduction::Scaled, true).expect("fast path");
        assert_eq!(decoded.display_dimensions(), (400, 520));
        let general = decode_general(&bytes, &limits, Reduction::Scaled, true).expect("decodes");
        assert_eq!(general.display_dimensions(), (400, 520));
    }
}
