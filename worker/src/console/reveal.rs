//! The reviewer's "Reveal blurred image": preserved evidence bytes to a
//! small, greyscale, strongly blurred PNG (pure; the handler reads and
//! decrypts the evidence, writes the audit entry, then serves this).
//!
//! Looking at matched images harms the people who review them, so review
//! tools (Thorn's Safer, and others) show them blurred and in greyscale by
//! default: enough to see shapes and decide whether a match is plausibly
//! a false positive (a logo, a cat, a landscape), no detail. The rendering
//! is made from the preserved evidence object only, never from the URL
//! the image was seen at (attacker-controlled, and possibly changed since).
//!
//! Steps, each reusing the hasher: decode with the hasher's decoder under
//! the isolate's limits ([`Limits::edge`], the same header checks against
//! decompression bombs as every scan) at reduced scale, to BT.601 luma
//! (greyscale), EXIF orientation applied (as a viewer would see it);
//! downscale by block means ([`hashgate::variants::block_means`]) until the
//! longest side is at most [`MAX_SIDE`]; blur with [`BLUR_ROUNDS`] rounds of
//! the box filter PDQ uses ([`hashgate::pdq::jarosz::box_blur`]), its window
//! a fixed share of the longest side ([`BLUR_WINDOW_DIVISOR`]), so the blur
//! is as strong relative to the picture whatever its size; quantise to
//! 8-bit grey and encode as a greyscale PNG (the `png` crate, already in
//! the wasm for decoding).
//!
//! Served inline, as a `data:` URL in the page the POST answers, rather than
//! from a GET endpoint with a one-time token: the rendering then exists
//! only in that one `no-store` response (a token endpoint would have to
//! keep the rendering or the token somewhere, KV being eventually
//! consistent across locations, and a GET URL can be reopened, shared or
//! prefetched). The page that carries it is the only one whose
//! Content-Security-Policy allows `img-src data:`; every other page has
//! `img-src 'none'`.

use hashgate::decode::{decode, DecodeOptions, Reduction};
use hashgate::pdq::jarosz::box_blur;
use hashgate::variants::block_means;
use hashgate::{HashError, Limits};

/// The longest side of a rendering, in pixels: small enough that a face or
/// a body is a shape and not a likeness even before the blur, large enough
/// to tell a photo of a person from a cartoon, a logo or a landscape. The
/// page shows it at this size (CSS pixels), not enlarged.
pub const MAX_SIDE: usize = 160;

/// The blur window is the longest side divided by this: 13 pixels at
/// [`MAX_SIDE`], which with [`BLUR_ROUNDS`] rounds is a tent about 25 pixels
/// wide (a standard deviation of about 5 pixels, 1/30 of the picture): the
/// layout and large shapes stay, edges, faces and text do not.
pub const BLUR_WINDOW_DIVISOR: usize = 12;

/// Rounds of the box filter (two: PDQ's tent approximation of a Gaussian).
pub const BLUR_ROUNDS: usize = 2;

/// Why no rendering could be made.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RevealError {
    /// The evidence is not an image the decoder reads, or is over the
    /// limits (the same limits as a scan's).
    #[error("the evidence could not be decoded as an image: {0}")]
    Decode(#[from] HashError),
    /// The PNG encoder refused (not expected: the input is 8-bit grey).
    #[error("the rendering could not be encoded: {0}")]
    Encode(String),
}

/// A rendering, ready to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendering {
    pub width: usize,
    pub height: usize,
    /// A greyscale 8-bit PNG.
    pub png: Vec<u8>,
}

impl Rendering {
    /// The PNG as a `data:` URL.
    pub fn data_url(&self) -> String {
        use base64::Engine;
        format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&self.png)
        )
    }
}

/// The decoder's options for a rendering: the isolate's limits, reduced
/// scale (the rendering is tiny), EXIF orientation applied.
pub fn decode_options() -> DecodeOptions {
    DecodeOptions {
        limits: Limits::edge(),
        reduction: Reduction::Scaled,
        apply_exif: true,
    }
}

/// The largest evidence object read for a rendering: the decoder's input
/// limit, and room for the object's header line and tag.
pub fn max_object_bytes() -> u64 {
    Limits::edge().max_input_bytes as u64 + 64 * 1024
}

/// Renders image bytes as a small, greyscale, blurred PNG.
pub fn render(bytes: &[u8]) -> Result<Rendering, RevealError> {
    let decoded = decode(bytes, &decode_options())?;
    let luma = decoded.luma;
    let longest = luma.width.max(luma.height);
    let factor = longest.div_ceil(MAX_SIDE).max(1);
    let mut small = if factor > 1 {
        block_means(&luma, factor)
    } else {
        luma
    };
    let (width, height) = (small.width, small.height);
    let window = width.max(height) / BLUR_WINDOW_DIVISOR;
    box_blur(&mut small.pixels, width, height, window, BLUR_ROUNDS);
    let grey: Vec<u8> = small
        .pixels
        .iter()
        .map(|&v| v.round().clamp(0.0, 255.0) as u8)
        .collect();
    let png = encode_grey(&grey, width, height)?;
    Ok(Rendering { width, height, png })
}

/// Encodes 8-bit grey pixels as a PNG.
fn encode_grey(grey: &[u8], width: usize, height: usize) -> Result<Vec<u8>, RevealError> {
    let to_u32 = |v: usize| u32::try_from(v).map_err(|e| RevealError::Encode(e.to_string()));
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, to_u32(width)?, to_u32(height)?);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder
        .write_header()
        .map_err(|e| RevealError::Encode(e.to_string()))?;
    writer
        .write_image_data(grey)
        .map_err(|e| RevealError::Encode(e.to_string()))?;
    writer
        .finish()
        .map_err(|e| RevealError::Encode(e.to_string()))?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> Vec<u8> {
        std::fs::read(format!("{}/../fixtures/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    /// Decodes a PNG: (width, height, colour type, 8-bit samples).
    fn read_png(bytes: &[u8]) -> (u32, u32, png::ColorType, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info.width, info.height, info.color_type, buf)
    }

    /// Mean absolute difference of horizontally and vertically adjacent
    /// samples: the image's high-frequency energy.
    fn edge_energy(grey: &[u8], width: usize) -> f64 {
        let height = grey.len() / width;
        let mut sum = 0f64;
        let mut n = 0f64;
        for y in 0..height {
            for x in 0..width {
                let v = f64::from(grey[y * width + x]);
                if x + 1 < width {
                    sum += (v - f64::from(grey[y * width + x + 1])).abs();
                    n += 1.0;
                }
                if y + 1 < height {
                    sum += (v - f64::from(grey[(y + 1) * width + x])).abs();
                    n += 1.0;
                }
            }
        }
        sum / n
    }

    /// The same image unblurred, at the rendering's size: luma block means.
    fn unblurred(bytes: &[u8], width: usize) -> Vec<u8> {
        let luma = decode(bytes, &decode_options()).unwrap().luma;
        let factor = luma.width.max(luma.height).div_ceil(MAX_SIDE).max(1);
        let small = block_means(&luma, factor);
        assert_eq!(small.width, width);
        small
            .pixels
            .iter()
            .map(|&v| v.round().clamp(0.0, 255.0) as u8)
            .collect()
    }

    #[test]
    fn a_photo_becomes_a_small_grey_blurred_png() {
        for photo in [
            "photos/chelsea.jpg",
            "photos/astronaut.jpg",
            "photos/coffee.jpg",
        ] {
            let bytes = fixture(photo);
            let r = render(&bytes).unwrap();
            let (w, h, colour, grey) = read_png(&r.png);
            assert_eq!(colour, png::ColorType::Grayscale, "{photo}");
            assert_eq!((w as usize, h as usize), (r.width, r.height), "{photo}");
            assert!(r.width.max(r.height) <= MAX_SIDE, "{photo}: {w}x{h}");
            assert!(r.width.max(r.height) > MAX_SIDE / 2, "{photo}: {w}x{h}");
            // The aspect ratio is kept (within a pixel of rounding).
            let decoded = decode(&bytes, &decode_options()).unwrap();
            let (dw, dh) = decoded.display_dimensions();
            let expected_h = r.width as f64 * f64::from(dh) / f64::from(dw);
            assert!(
                (r.height as f64 - expected_h).abs() <= 1.5,
                "{photo}: {w}x{h} from {dw}x{dh}"
            );
            // Blurred: far less edge energy than the same image unblurred
            // at the same size, but not a flat grey (shapes remain).
            let sharp = edge_energy(&unblurred(&bytes, r.width), r.width);
            let soft = edge_energy(&grey, r.width);
            assert!(soft < sharp / 4.0, "{photo}: {soft} vs {sharp}");
            let (min, max) = (grey.iter().min().unwrap(), grey.iter().max().unwrap());
            assert!(max - min > 40, "{photo}: no shapes left ({min}..{max})");
        }
    }

    #[test]
    fn colour_becomes_grey() {
        // A PNG in pure red and pure blue halves: grey levels of their luma.
        let (w, h) = (64u32, 32u32);
        let mut rgb = Vec::new();
        for _ in 0..h {
            for x in 0..w {
                rgb.extend_from_slice(if x < w / 2 {
                    &[255, 0, 0]
                } else {
                    &[0, 0, 255]
                });
            }
        }
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&rgb).unwrap();
        writer.finish().unwrap();
        let r = render(&bytes).unwrap();
        assert_eq!(
            (r.width, r.height),
            (64, 32),
            "a small image is not enlarged"
        );
        let (_, _, colour, grey) = read_png(&r.png);
        assert_eq!(colour, png::ColorType::Grayscale);
        // Far from the border between the halves: 0.299 * 255 and 0.114 * 255.
        assert!(
            (i32::from(grey[16 * 64]) - 76).abs() <= 1,
            "{}",
            grey[16 * 64]
        );
        assert!(
            (i32::from(grey[16 * 64 + 63]) - 29).abs() <= 1,
            "{}",
            grey[16 * 64 + 63]
        );
    }

    #[test]
    fn a_bomb_header_is_refused_before_decoding() {
        let bomb = fixture("errors/bomb-50000.png");
        assert!(matches!(
            render(&bomb),
            Err(RevealError::Decode(HashError::DimensionsTooLarge { .. }))
        ));
    }

    #[test]
    fn what_is_not_an_image_is_a_decode_error() {
        for path in [
            "errors/not-an-image.html",
            "errors/truncated.png",
            "errors/empty.bin",
        ] {
            let err = render(&fixture(path)).unwrap_err();
            assert!(matches!(err, RevealError::Decode(_)), "{path}: {err:?}");
            assert!(err
                .to_string()
                .starts_with("the evidence could not be decoded"));
        }
        let over = vec![0xffu8; Limits::edge().max_input_bytes + 1];
        assert!(matches!(
            render(&over),
            Err(RevealError::Decode(HashError::InputTooLarge { .. }))
        ));
    }

    #[test]
    fn the_data_url_is_the_png() {
        let r = render(&fixture("photos/chelsea.jpg")).unwrap();
        let url = r.data_url();
        let b64 = url.strip_prefix("data:image/png;base64,").unwrap();
        use base64::Engine;
        let back = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(back, r.png);
        assert!(r.png.starts_with(b"\x89PNG\r\n\x1a\n"));
    }
}
