//! The malformed-image corpus, generated in memory from the fixtures.
//!
//! Whoever serves abusive images has every reason to send the scanner files
//! built to crash it, stall it or slip through. This module makes such files
//! from the valid fixtures of every format, deterministically (a seeded
//! generator, no files written), so the same corpus runs natively, in wasm
//! under node, and in the timing report (`examples/malformed_report.rs`):
//!
//! * truncation at many offsets (dense in the header, spread over the data);
//! * seeded bit flips in the header and in the data;
//! * wrong lengths in each format's framing (PNG chunks, JPEG segments, GIF
//!   sub-blocks, RIFF chunks, BMP headers);
//! * huge declared dimensions (decompression bombs) for PNG, JPEG, GIF,
//!   WebP and BMP, and dimensions within the pixel limit whose decode
//!   buffers are not (progressive and lossless JPEG keep full-resolution
//!   buffers however small the output);
//! * zip-bomb PNGs: a tiny file whose IDAT inflates to far more than the
//!   decode limit;
//! * an animated GIF with thousands of frames (only the first is decoded);
//! * CMYK JPEG, 16-bit PNG (grey, grey+alpha, RGB, RGBA) and 12/16-bit
//!   lossless JPEG, which must hash like their 8-bit originals;
//! * polyglots that are an image and HTML at once, which must hash exactly
//!   like the image (a listed image must not slip through in disguise);
//! * the containers read for what a viewer sees: ICO, TIFF, SVG with
//!   embedded images (cut, nested too deep, a thousand of them), APNG with
//!   a lying frame count, AVIF recognised but not decoded.
//!
//! Each [`Case`] says what it must give ([`Expect`]); the test checks it and
//! the report prints outcome counts and times.

use crate::fixtures::fixture;
use crate::rng::Rng;

/// The valid images every format-generic mutation starts from: one of each
/// format and variant, all 300x200, so cases stay fast.
pub const BASES: &[&str] = &[
    "formats/coffee-progressive.jpg",
    "formats/coffee-420.jpg",
    "formats/coffee-grey.jpg",
    "formats/coffee-cmyk.jpg",
    "formats/coffee-rgba.png",
    "formats/coffee-palette.png",
    "formats/coffee-grey.png",
    "formats/coffee-grey16.png",
    "formats/coffee.gif",
    "formats/coffee-lossless.webp",
    "formats/coffee-lossy.webp",
    "formats/coffee.bmp",
];

/// What a case must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A typed error or a hash: both are right (a flipped bit in entropy
    /// coded data may still decode).
    Either,
    /// A typed error of any kind: the data cannot be a whole image.
    Error,
    /// Refused before decoding: `DimensionsTooLarge` or `MemoryLimit`.
    Refused,
    /// `UnsupportedFormat`.
    Unsupported,
    /// A hash (any).
    Hash,
    /// Exactly the PDQ hash of this fixture: the same pixels in disguise.
    SameAs(&'static str),
    /// A typed error, or exactly the fixture's PDQ hash (never another):
    /// what a cut after the last pixel may give.
    SameOrError(&'static str),
    /// A PDQ hash within this many bits of the fixture's.
    Near(&'static str, u32),
}

/// One generated input.
#[derive(Debug, Clone)]
pub struct Case {
    /// Group (`truncated`, `bitflip`, `length`, `bomb`, ...) and detail.
    pub group: &'static str,
    pub name: String,
    pub bytes: Vec<u8>,
    pub expect: Expect,
}

// ------------------------------------------------------------ the corpus

/// Every case, in a fixed order.
pub fn corpus() -> Vec<Case> {
    let mut cases = Vec::new();
    for base in BASES {
        truncations(base, &mut cases);
        bit_flips(base, &mut cases);
    }
    png_lengths(&mut cases);
    jpeg_lengths(&mut cases);
    gif_lengths(&mut cases);
    webp_lengths(&mut cases);
    bmp_lengths(&mut cases);
    bombs(&mut cases);
    zip_bombs(&mut cases);
    animated_gif(&mut cases);
    deep_colour(&mut cases);
    jpeg_structure(&mut cases);
    polyglots(&mut cases);
    hidden_containers(&mut cases);
    cases
}

fn push(
    cases: &mut Vec<Case>,
    group: &'static str,
    name: impl Into<String>,
    bytes: Vec<u8>,
    expect: Expect,
) {
    cases.push(Case {
        group,
        name: name.into(),
        bytes,
        expect,
    });
}

fn short(base: &str) -> &str {
    base.rsplit('/').next().unwrap_or(base)
}

/// Cuts at every offset of the first bytes that hold headers, then at
/// spread fractions of the file and just before its end.
fn truncations(base: &'static str, cases: &mut Vec<Case>) {
    let whole = fixture(base);
    let len = whole.len();
    let mut cuts: Vec<usize> = vec![
        0, 1, 2, 3, 4, 6, 8, 11, 12, 13, 16, 20, 24, 26, 30, 33, 40, 48, 64, 96, 128, 256, 512,
    ];
    cuts.extend((1..16).map(|k| k * len / 16));
    cuts.extend([len - 8, len - 2, len - 1]);
    cuts.sort_unstable();
    cuts.dedup();
    // A JPEG decoder may fill what is missing (progressive scans refine an
    // image already whole); every other format must refuse a cut image,
    // unless only what follows the pixels is cut: a PNG's IEND chunk (12
    // bytes), a GIF's block terminator and trailer, a WebP's last padding.
    for cut in cuts.into_iter().filter(|&c| c < len) {
        let expect = match (cut, base.rsplit('.').next()) {
            (0, _) => Expect::Error,
            (_, Some("jpg")) => Expect::Either,
            (cut, Some("png")) if cut >= len - 12 => Expect::SameOrError(base),
            (cut, Some("gif" | "webp")) if cut >= len - 2 => Expect::SameOrError(base),
            _ => Expect::Error,
        };
        push(
            cases,
            "truncated",
            format!("{} cut at {cut}", short(base)),
            whole[..cut].to_vec(),
            expect,
        );
    }
}

fn seed_of(name: &str) -> u64 {
    // FNV-1a: a fixed seed per base, so adding a base leaves others alone.
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Flips 1 to 3 bits at a time: 12 cases in the first 64 bytes (headers),
/// 12 in the data, and 4 with 16 flips spread over the whole file.
fn bit_flips(base: &'static str, cases: &mut Vec<Case>) {
    let whole = fixture(base);
    let mut rng = Rng::new(seed_of(base));
    let header = whole.len().min(64);
    for (region, count, flips) in [("header", 12, 0), ("data", 12, 0), ("spread", 4, 16)] {
        for n in 0..count {
            let mut bytes = whole.to_vec();
            let flips = if flips == 0 { 1 + rng.below(3) } else { flips };
            let mut at = Vec::new();
            for _ in 0..flips {
                let offset = match region {
                    "header" => rng.below(header),
                    "data" => header + rng.below(whole.len() - header),
                    _ => rng.below(whole.len()),
                };
                bytes[offset] ^= 1 << rng.below(8);
                at.push(offset);
            }
            push(
                cases,
                "bitflip",
                format!("{} {region} #{n} at {at:?}", short(base)),
                bytes,
                Expect::Either,
            );
        }
    }
}

// ------------------------------------------------------------ PNG

pub const PNG_SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// CRC-32 (ISO-HDLC), as PNG chunks use.
pub fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for part in parts {
        for &byte in *part {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
    }
    !crc
}

pub fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(&[kind, data]).to_be_bytes());
}

pub fn ihdr(width: u32, height: u32, depth: u8, colour: u8) -> Vec<u8> {
    let mut data = Vec::with_capacity(13);
    data.extend_from_slice(&width.to_be_bytes());
    data.extend_from_slice(&height.to_be_bytes());
    data.extend_from_slice(&[depth, colour, 0, 0, 0]);
    data
}

/// The chunks of a PNG as (offset of the length field, type, data range).
pub fn png_chunks(png: &[u8]) -> Vec<(usize, [u8; 4], std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut at = 8;
    while at + 8 <= png.len() {
        let len = u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]) as usize;
        let kind = [png[at + 4], png[at + 5], png[at + 6], png[at + 7]];
        let end = (at + 8).saturating_add(len).min(png.len());
        out.push((at, kind, at + 8..end));
        at = end + 4;
    }
    out
}

/// A PNG's IHDR with new dimensions, CRC fixed (so only the size is wrong).
pub fn png_with_size(png: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut out = png.to_vec();
    out[16..20].copy_from_slice(&width.to_be_bytes());
    out[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&[&out[12..29]]);
    out[29..33].copy_from_slice(&crc.to_be_bytes());
    out
}

fn png_lengths(cases: &mut Vec<Case>) {
    let base = fixture("formats/coffee-grey.png");
    let chunks = png_chunks(base);
    let idat = chunks
        .iter()
        .find(|c| &c.1 == b"IDAT")
        .map(|c| c.0)
        .unwrap_or(33);
    let idat_len = u32::from_be_bytes([base[idat], base[idat + 1], base[idat + 2], base[idat + 3]]);
    for (what, at, value) in [
        ("IHDR length 0", 8, 0u32),
        ("IHDR length 12", 8, 12),
        ("IHDR length 2^31-1", 8, 0x7FFF_FFFF),
        ("IHDR length 2^32-1", 8, 0xFFFF_FFFF),
        ("IDAT length 0", idat, 0),
        ("IDAT length +1", idat, idat_len + 1),
        ("IDAT length -1", idat, idat_len - 1),
        ("IDAT length past the end", idat, base.len() as u32 * 2),
        ("IDAT length 2^31-1", idat, 0x7FFF_FFFF),
    ] {
        let mut bytes = base.to_vec();
        bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
        push(cases, "length", format!("png {what}"), bytes, Expect::Error);
    }
    // IDAT split into one-byte chunks: odd but valid.
    let mut split = base[..idat].to_vec();
    let data: Vec<u8> = chunks
        .iter()
        .filter(|c| &c.1 == b"IDAT")
        .flat_map(|c| base[c.2.clone()].to_vec())
        .collect();
    for byte in data.chunks(1).take(4096) {
        png_chunk(&mut split, b"IDAT", byte);
    }
    png_chunk(&mut split, b"IDAT", &data[data.len().min(4096)..]);
    png_chunk(&mut split, b"IEND", &[]);
    push(
        cases,
        "length",
        "png IDAT in 4097 chunks",
        split,
        Expect::SameAs("formats/coffee-grey.png"),
    );
    // A bad CRC on IHDR.
    let mut crc = base.to_vec();
    crc[29] ^= 0x55;
    push(cases, "length", "png IHDR CRC wrong", crc, Expect::Either);
    // A bit depth and colour type that do not go together.
    for (depth, colour) in [(3u8, 0u8), (16, 3), (8, 1), (0, 0), (8, 7)] {
        let mut bytes = base.to_vec();
        bytes[24] = depth;
        bytes[25] = colour;
        let crc = crc32(&[&bytes[12..29]]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        push(
            cases,
            "length",
            format!("png depth {depth} colour {colour}"),
            bytes,
            Expect::Error,
        );
    }
}

// ------------------------------------------------------------ deflate

/// A zlib stream of `zeros` zero bytes: dynamic Huffman codes in which a
/// 258-byte match at distance 1 costs 2 bits, so 1 MiB of output takes
/// about 1 KiB, the largest ratio deflate allows (about 1032:1).
pub fn zlib_zeros(zeros: usize) -> Vec<u8> {
    let mut bits = BitWriter::default();
    bits.put(1, 1); // BFINAL
    bits.put(2, 2); // BTYPE = dynamic
    bits.put(29, 5); // HLIT: 286 literal/length codes
    bits.put(1, 5); // HDIST: 2 distance codes
    bits.put(14, 4); // HCLEN: 18 code length codes
                     // Code length code lengths in the permuted order 16, 17, 18, 0, 8, 7,
                     // 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1: symbol 18 (a run of zeros)
                     // gets 1 bit, lengths 1 and 2 get 2 bits each.
    for length in [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2] {
        bits.put(length, 3);
    }
    // Canonical codes: 18 -> 0, 1 -> 10, 2 -> 11 (Huffman codes go in
    // most significant bit first).
    let cl = |bits: &mut BitWriter, symbol: u32| match symbol {
        18 => bits.code(0b0, 1),
        1 => bits.code(0b10, 2),
        _ => bits.code(0b11, 2),
    };
    let zero_run = |bits: &mut BitWriter, mut n: u32| {
        while n > 0 {
            let run = n.min(138);
            cl(bits, 18);
            bits.put(run - 11, 7);
            n -= run;
        }
    };
    // Literal/length lengths: 0 -> 2, 1..=255 -> 0, 256 -> 2, 257..=284
    // -> 0, 285 (length 258) -> 1; distance lengths: 0 -> 1, 1 -> 1.
    cl(&mut bits, 2);
    zero_run(&mut bits, 255);
    cl(&mut bits, 2);
    zero_run(&mut bits, 28);
    cl(&mut bits, 1);
    cl(&mut bits, 1);
    cl(&mut bits, 1);
    // Data: a literal 0, then (length 258, distance 1) pairs ("0" "0"),
    // then literals for the rest, then end of block. Codes: 285 -> 0,
    // literal 0 -> 10, 256 -> 11; distance 0 -> 0.
    let mut written = 0;
    if zeros > 0 {
        bits.code(0b10, 2);
        written = 1;
    }
    while zeros - written >= 258 {
        bits.code(0b00, 2);
        written += 258;
    }
    while written < zeros {
        bits.code(0b10, 2);
        written += 1;
    }
    bits.code(0b11, 2);
    let mut out = vec![0x78, 0x01];
    out.extend_from_slice(&bits.finish());
    // Adler-32 of zeros: a stays 1, b grows by 1 per byte.
    let adler = ((zeros % 65_521) as u32) << 16 | 1;
    out.extend_from_slice(&adler.to_be_bytes());
    out
}

/// A zlib stream holding `data` in stored (uncompressed) blocks.
pub fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut chunks = data.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xFF, 0xFF]);
    }
    while let Some(chunk) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&(b << 16 | a).to_be_bytes());
    out
}

/// Deflate's bit order: values least significant bit first, Huffman codes
/// most significant bit first.
#[derive(Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    acc: u64,
    used: u32,
}

impl BitWriter {
    pub fn put(&mut self, value: u32, count: u32) {
        self.acc |= u64::from(value) << self.used;
        self.used += count;
        while self.used >= 8 {
            self.bytes.push(self.acc as u8);
            self.acc >>= 8;
            self.used -= 8;
        }
    }

    pub fn code(&mut self, code: u32, count: u32) {
        let reversed = code.reverse_bits() >> (32 - count);
        self.put(reversed, count);
    }

    pub fn finish(mut self) -> Vec<u8> {
        if self.used > 0 {
            self.bytes.push(self.acc as u8);
        }
        self.bytes
    }
}

/// A PNG of `width` x `height` whose IDAT inflates to `inflated` zero bytes
/// (rows of filter byte 0 and black pixels, however many the header needs).
pub fn png_zeros(width: u32, height: u32, depth: u8, colour: u8, inflated: usize) -> Vec<u8> {
    let mut png = PNG_SIGNATURE.to_vec();
    png_chunk(&mut png, b"IHDR", &ihdr(width, height, depth, colour));
    png_chunk(&mut png, b"IDAT", &zlib_zeros(inflated));
    png_chunk(&mut png, b"IEND", &[]);
    png
}

/// Bytes of filtered image data an interlaced (Adam7) PNG of this size
/// needs: seven passes, each a smaller image with its own filter bytes.
pub fn adam7_raw_len(width: u32, height: u32, bytes_per_pixel: usize) -> usize {
    const PASSES: [(u32, u32, u32, u32); 7] = [
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ];
    PASSES
        .iter()
        .map(|&(x0, y0, dx, dy)| {
            let columns = width.saturating_sub(x0).div_ceil(dx) as usize;
            let rows = height.saturating_sub(y0).div_ceil(dy) as usize;
            if columns == 0 || rows == 0 {
                0
            } else {
                (columns * bytes_per_pixel + 1) * rows
            }
        })
        .sum()
}

/// Bytes of filtered image data a PNG of this size needs.
pub fn png_raw_len(width: u32, height: u32, bytes_per_pixel: usize) -> usize {
    (width as usize * bytes_per_pixel + 1) * height as usize
}

// ------------------------------------------------------------ JPEG

/// Offsets of a JPEG's marker segments: (offset of 0xFF, marker, length
/// field value), up to the first SOS.
pub fn jpeg_segments(jpeg: &[u8]) -> Vec<(usize, u8, usize)> {
    let mut out = Vec::new();
    let mut at = 2;
    while at + 4 <= jpeg.len() && jpeg[at] == 0xFF {
        let marker = jpeg[at + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        out.push((at, marker, len));
        if marker == 0xDA {
            break;
        }
        at += 2 + len;
    }
    out
}

fn is_sof(marker: u8) -> bool {
    matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF)
}

/// A JPEG with its frame header's dimensions replaced.
pub fn jpeg_with_size(jpeg: &[u8], width: u16, height: u16) -> Vec<u8> {
    let mut out = jpeg.to_vec();
    if let Some(&(at, _, _)) = jpeg_segments(jpeg).iter().find(|s| is_sof(s.1)) {
        out[at + 5..at + 7].copy_from_slice(&height.to_be_bytes());
        out[at + 7..at + 9].copy_from_slice(&width.to_be_bytes());
    }
    out
}

fn jpeg_lengths(cases: &mut Vec<Case>) {
    for base in ["formats/coffee-420.jpg", "formats/coffee-progressive.jpg"] {
        let jpeg = fixture(base);
        for (at, marker, len) in jpeg_segments(jpeg) {
            let name = match marker {
                0xDB => "DQT",
                0xC4 => "DHT",
                0xDA => "SOS",
                0xE0 => "APP0",
                m if is_sof(m) => "SOF",
                _ => continue,
            };
            for value in [0usize, 1, 2, len - 1, len + 1, 0xFFFF] {
                let mut bytes = jpeg.to_vec();
                bytes[at + 2..at + 4].copy_from_slice(&(value as u16).to_be_bytes());
                push(
                    cases,
                    "length",
                    format!("{} {name}@{at} length {value}", short(base)),
                    bytes,
                    Expect::Either,
                );
            }
        }
    }
}

/// One lossless (SOF3) JPEG of `samples` (interleaved, `components` per
/// pixel, each below 2^precision), predictor 1 (left), one Huffman table.
/// Lossless JPEG is the only kind with 16-bit samples; jpeg-decoder reads
/// it, so the hasher must hash it right or refuse it.
pub fn lossless_jpeg(
    width: u16,
    height: u16,
    components: u8,
    precision: u8,
    samples: &[u16],
) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    let nc = usize::from(components);
    // SOF3
    out.extend_from_slice(&[0xFF, 0xC3]);
    out.extend_from_slice(&((8 + 3 * nc) as u16).to_be_bytes());
    out.push(precision);
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&width.to_be_bytes());
    out.push(components);
    for id in 1..=components {
        out.extend_from_slice(&[id, 0x11, 0]);
    }
    // DHT: DC table 0, categories 0..=16 each coded in 5 bits (code = category).
    out.extend_from_slice(&[0xFF, 0xC4]);
    out.extend_from_slice(&((2 + 1 + 16 + 17) as u16).to_be_bytes());
    out.push(0x00);
    let mut counts = [0u8; 16];
    counts[4] = 17;
    out.extend_from_slice(&counts);
    out.extend((0..=16).map(|s| s as u8));
    // SOS: every component, table 0, predictor 1, point transform 0.
    out.extend_from_slice(&[0xFF, 0xDA]);
    out.extend_from_slice(&((6 + 2 * nc) as u16).to_be_bytes());
    out.push(components);
    for id in 1..=components {
        out.extend_from_slice(&[id, 0x00]);
    }
    out.extend_from_slice(&[1, 0, 0]);

    let mut bits = JpegBits::default();
    let (w, h) = (usize::from(width), usize::from(height));
    let modulus = 1i64 << precision;
    for y in 0..h {
        for x in 0..w {
            for c in 0..nc {
                let at = |x: usize, y: usize| i64::from(samples[(y * w + x) * nc + c]);
                let prediction = match (x, y) {
                    (0, 0) => 1 << (precision - 1),
                    (0, _) => at(0, y - 1),
                    _ => at(x - 1, y),
                };
                // Differences are taken modulo 2^16 (2^precision suffices
                // below 16 bits): -32768 is coded as category 16.
                let mut diff = (at(x, y) - prediction).rem_euclid(modulus.max(65_536));
                if diff >= 32_768 {
                    diff -= 65_536;
                }
                if precision < 16 && diff.abs() >= modulus {
                    diff = diff.rem_euclid(modulus);
                }
                let category = if diff == -32_768 {
                    16
                } else {
                    64 - diff.unsigned_abs().leading_zeros()
                };
                bits.put(category, 5);
                if (1..16).contains(&category) {
                    let extra = if diff < 0 { diff - 1 } else { diff };
                    bits.put((extra as u32) & ((1 << category) - 1), category);
                }
            }
        }
    }
    out.extend_from_slice(&bits.finish());
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// JPEG entropy-coded bits: most significant bit first, 0xFF stuffed.
#[derive(Default)]
struct JpegBits {
    bytes: Vec<u8>,
    acc: u32,
    used: u32,
}

impl JpegBits {
    fn put(&mut self, value: u32, count: u32) {
        for i in (0..count).rev() {
            self.acc = (self.acc << 1) | ((value >> i) & 1);
            self.used += 1;
            if self.used == 8 {
                self.byte();
            }
        }
    }

    fn byte(&mut self) {
        let byte = self.acc as u8;
        self.bytes.push(byte);
        if byte == 0xFF {
            self.bytes.push(0);
        }
        self.acc = 0;
        self.used = 0;
    }

    fn finish(mut self) -> Vec<u8> {
        while self.used != 0 {
            self.put(1, 1); // pad with ones
        }
        self.bytes
    }
}

/// A minimal frame: SOI, a frame header of the given marker, and nothing
/// else (what the decoder reads before deciding anything).
fn jpeg_frame_only(
    marker: u8,
    precision: u8,
    width: u16,
    height: u16,
    components: &[(u8, u8)],
) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8, 0xFF, marker];
    out.extend_from_slice(&((8 + 3 * components.len()) as u16).to_be_bytes());
    out.push(precision);
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&width.to_be_bytes());
    out.push(components.len() as u8);
    for (id, &(sampling, table)) in components.iter().enumerate() {
        out.extend_from_slice(&[id as u8 + 1, sampling, table]);
    }
    out
}

fn jpeg_structure(cases: &mut Vec<Case>) {
    let base = fixture("formats/coffee-420.jpg");
    // Frame headers with 2, 5 or 255 components: not greyscale, RGB or CMYK.
    for count in [2usize, 5, 255] {
        let components = vec![(0x11u8, 0u8); count];
        let mut bytes = jpeg_frame_only(0xC0, 8, 64, 64, &components);
        bytes.extend_from_slice(&base[2..]);
        push(
            cases,
            "jpeg",
            format!("{count} components, then a whole JPEG"),
            bytes,
            Expect::Error,
        );
        push(
            cases,
            "jpeg",
            format!("{count} components, frame header only"),
            jpeg_frame_only(0xC0, 8, 64, 64, &components),
            Expect::Error,
        );
    }
    // Precisions the DCT process does not allow, and 12-bit extended DCT.
    for (marker, precision) in [
        (0xC0u8, 12u8),
        (0xC1, 12),
        (0xC0, 16),
        (0xC2, 7),
        (0xC3, 1),
        (0xC3, 17),
    ] {
        let mut bytes = base.to_vec();
        if let Some(&(at, _, _)) = jpeg_segments(base).iter().find(|s| is_sof(s.1)) {
            bytes[at + 1] = marker;
            bytes[at + 4] = precision;
        }
        push(
            cases,
            "jpeg",
            format!("SOF {marker:02X} precision {precision}"),
            bytes,
            Expect::Error,
        );
    }
    // Sampling factors of 0 and 5, and a quantisation table index of 9.
    for (what, sampling, table) in [
        ("sampling 0", 0x00u8, 0u8),
        ("sampling 5x5", 0x55, 0),
        ("table 9", 0x11, 9),
    ] {
        let mut bytes = base.to_vec();
        if let Some(&(at, _, _)) = jpeg_segments(base).iter().find(|s| is_sof(s.1)) {
            bytes[at + 11] = sampling;
            bytes[at + 12] = table;
        }
        push(
            cases,
            "jpeg",
            format!("first component {what}"),
            bytes,
            Expect::Either,
        );
    }
    // Only markers: SOI EOI; SOI then fill bytes; a second SOI.
    push(
        cases,
        "jpeg",
        "SOI EOI",
        vec![0xFF, 0xD8, 0xFF, 0xD9],
        Expect::Error,
    );
    let mut fill = vec![0xFF, 0xD8, 0xFF];
    fill.extend(std::iter::repeat_n(0xFF, 100_000));
    push(
        cases,
        "jpeg",
        "SOI then 100,000 fill bytes",
        fill,
        Expect::Error,
    );
    let mut twice = base[..base.len() / 2].to_vec();
    twice.extend_from_slice(base);
    push(
        cases,
        "jpeg",
        "half a JPEG then a whole one",
        twice,
        Expect::Either,
    );
    // Restart interval of 1 with no restart markers.
    let mut dri = base[..2].to_vec();
    dri.extend_from_slice(&[0xFF, 0xDD, 0x00, 0x04, 0x00, 0x01]);
    dri.extend_from_slice(&base[2..]);
    push(
        cases,
        "jpeg",
        "restart interval 1, no RST markers",
        dri,
        Expect::Either,
    );
}

// ------------------------------------------------------------ GIF

/// The GIF's blocks after the header, logical screen and global colour
/// table: (offset of the first image descriptor, offset of the trailer).
fn gif_layout(gif: &[u8]) -> (usize, usize) {
    let packed = gif[10];
    let table = if packed & 0x80 != 0 {
        3 << ((packed & 7) + 1)
    } else {
        0
    };
    let first = 13 + table;
    (first, gif.len() - 1)
}

/// One 1x1 frame with a delay, coded in 4 bytes of LZW.
fn gif_tiny_frame(out: &mut Vec<u8>, x: u16, y: u16) {
    out.extend_from_slice(&[0x21, 0xF9, 0x04, 0x00, 0x0A, 0x00, 0x00, 0x00]);
    out.push(0x2C);
    out.extend_from_slice(&x.to_le_bytes());
    out.extend_from_slice(&y.to_le_bytes());
    out.extend_from_slice(&[1, 0, 1, 0, 0]);
    // LZW minimum code size 2: clear (4), index 0, end (5) in 3-bit codes.
    out.extend_from_slice(&[0x02, 0x02, 0x44, 0x01, 0x00]);
}

fn gif_lengths(cases: &mut Vec<Case>) {
    let gif = fixture("formats/coffee.gif");
    let (first, _) = gif_layout(gif);
    // Image descriptor at `first` (no extension before it in this file).
    let lzw = first + 10;
    for (what, at, value) in [
        ("LZW code size 0", lzw, 0u8),
        ("LZW code size 12", lzw, 12),
        ("LZW code size 255", lzw, 255),
        ("first sub-block length 0", lzw + 1, 0),
        ("first sub-block length 1", lzw + 1, 1),
        ("global table size 0 with the flag", 10, gif[10] & 0xF8),
        ("no global table", 10, gif[10] & 0x7F),
    ] {
        let mut bytes = gif.to_vec();
        bytes[at] = value;
        push(
            cases,
            "length",
            format!("gif {what}"),
            bytes,
            Expect::Either,
        );
    }
    // The frame larger than the screen, and placed outside it.
    for (what, offset, value) in [
        ("frame 65535 wide", 5usize, 0xFFFFu16),
        ("frame 65535 high", 7, 0xFFFF),
        ("frame at x 65000", 1, 65_000),
        ("frame at y 65000", 3, 65_000),
    ] {
        let mut bytes = gif.to_vec();
        bytes[first + offset..first + offset + 2].copy_from_slice(&value.to_le_bytes());
        push(
            cases,
            "length",
            format!("gif {what}"),
            bytes,
            Expect::Either,
        );
    }
    // No trailer, no image: a header alone.
    push(
        cases,
        "length",
        "gif header and screen only",
        gif[..first].to_vec(),
        Expect::Error,
    );
}

fn animated_gif(cases: &mut Vec<Case>) {
    let gif = fixture("formats/coffee.gif");
    let (_, trailer) = gif_layout(gif);
    // 5,000 tiny frames after the first.
    let mut many = gif[..trailer].to_vec();
    many[..6].copy_from_slice(b"GIF89a");
    for n in 0..5_000u16 {
        gif_tiny_frame(&mut many, n % 300, n % 200);
    }
    many.push(0x3B);
    push(
        cases,
        "animated",
        "5,000 frames of 1x1 after the first",
        many,
        Expect::SameAs("formats/coffee.gif"),
    );
    // 40 more copies of the full first frame (each a full LZW decode if
    // a decoder went through them).
    let (first, _) = gif_layout(gif);
    let mut heavy = gif[..trailer].to_vec();
    heavy[..6].copy_from_slice(b"GIF89a");
    for _ in 0..40 {
        heavy.extend_from_slice(&gif[first..trailer]);
    }
    heavy.push(0x3B);
    push(
        cases,
        "animated",
        "40 full frames after the first",
        heavy,
        Expect::SameAs("formats/coffee.gif"),
    );
    // Later frames that declare 65535x65535.
    let mut bombs = gif[..trailer].to_vec();
    bombs[..6].copy_from_slice(b"GIF89a");
    for _ in 0..1_000 {
        gif_tiny_frame(&mut bombs, 0, 0);
        let at = bombs.len() - 10;
        bombs[at..at + 4].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    }
    bombs.push(0x3B);
    push(
        cases,
        "animated",
        "1,000 later frames declaring 65535x65535",
        bombs,
        Expect::SameAs("formats/coffee.gif"),
    );
}

// ------------------------------------------------------------ WebP

fn webp_lengths(cases: &mut Vec<Case>) {
    for base in ["formats/coffee-lossy.webp", "formats/coffee-lossless.webp"] {
        let webp = fixture(base);
        let len = webp.len() as u32;
        let chunk_len = u32::from_le_bytes([webp[16], webp[17], webp[18], webp[19]]);
        for (what, at, value) in [
            ("RIFF size 0", 4usize, 0u32),
            ("RIFF size 4", 4, 4),
            ("RIFF size +100", 4, len + 100),
            ("RIFF size 2^32-1", 4, u32::MAX),
            ("chunk size 0", 16, 0),
            ("chunk size +1", 16, chunk_len + 1),
            ("chunk size -1", 16, chunk_len - 1),
            ("chunk size 2^32-1", 16, u32::MAX),
        ] {
            let mut bytes = webp.to_vec();
            bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
            push(
                cases,
                "length",
                format!("{} {what}", short(base)),
                bytes,
                Expect::Either,
            );
        }
    }
}

/// A VP8X (extended) WebP header declaring a canvas, with the lossy
/// fixture's VP8 chunk inside.
fn webp_extended(canvas_w: u32, canvas_h: u32) -> Vec<u8> {
    let lossy = fixture("formats/coffee-lossy.webp");
    let mut body = b"WEBP".to_vec();
    body.extend_from_slice(b"VP8X");
    body.extend_from_slice(&10u32.to_le_bytes());
    body.extend_from_slice(&[0, 0, 0, 0]);
    body.extend_from_slice(&(canvas_w - 1).to_le_bytes()[..3]);
    body.extend_from_slice(&(canvas_h - 1).to_le_bytes()[..3]);
    body.extend_from_slice(&lossy[12..]);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

// ------------------------------------------------------------ BMP

fn bmp_lengths(cases: &mut Vec<Case>) {
    let bmp = fixture("formats/coffee.bmp");
    let len = bmp.len() as u32;
    for (what, at, value) in [
        ("file size 0", 2usize, 0u32),
        ("file size 2^32-1", 2, u32::MAX),
        ("pixel offset 0", 10, 0),
        ("pixel offset 14", 10, 14),
        ("pixel offset past the end", 10, len + 10),
        ("pixel offset 2^32-1", 10, u32::MAX),
        ("header size 0", 14, 0),
        ("header size 12", 14, 12),
        ("header size 200", 14, 200),
        ("header size 2^32-1", 14, u32::MAX),
        ("compression RLE8", 30, 1),
        ("compression bitfields", 30, 3),
        ("compression 99", 30, 99),
        ("colours used 2^32-1", 46, u32::MAX),
        ("colours used 300", 46, 300),
        ("image size 2^32-1", 34, u32::MAX),
    ] {
        let mut bytes = bmp.to_vec();
        bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
        push(
            cases,
            "length",
            format!("bmp {what}"),
            bytes,
            Expect::Either,
        );
    }
    for bpp in [0u16, 3, 7, 64, 0xFFFF] {
        let mut bytes = bmp.to_vec();
        bytes[28..30].copy_from_slice(&bpp.to_le_bytes());
        push(
            cases,
            "length",
            format!("bmp {bpp} bits per pixel"),
            bytes,
            Expect::Error,
        );
    }
}

fn bmp_with_size(width: i32, height: i32) -> Vec<u8> {
    let mut bytes = fixture("formats/coffee.bmp").to_vec();
    bytes[18..22].copy_from_slice(&width.to_le_bytes());
    bytes[22..26].copy_from_slice(&height.to_le_bytes());
    bytes
}

// ------------------------------------------------------------ bombs

fn bombs(cases: &mut Vec<Case>) {
    use Expect::{Error, Refused};
    let png = fixture("formats/coffee-rgba.png");
    for (w, h, expect) in [
        (50_000, 50_000, Refused),
        (16_385, 1, Refused),
        (1, 16_385, Refused),
        (16_384, 16_384, Refused),
        (0x7FFF_FFFF, 0x7FFF_FFFF, Refused),
        (0xFFFF_FFFF, 1, Refused),
        // 49 MP passes the pixel limit and is read row by row (never 196 MB
        // of RGBA at once); the small image's data cannot fill it.
        (7_000, 7_000, Error),
        (0, 0, Error),
        (0, 200, Error),
    ] {
        push(
            cases,
            "bomb",
            format!("png {w}x{h}"),
            png_with_size(png, w, h),
            expect,
        );
    }
    for base in [
        "formats/coffee-420.jpg",
        "formats/coffee-progressive.jpg",
        "formats/coffee-grey.jpg",
        "formats/coffee-cmyk.jpg",
    ] {
        for (w, h, expect) in [
            (65_535u16, 65_535u16, Refused),
            (16_385, 16, Refused),
            (16_384, 16_384, Refused),
            // Within 16,384 a side and 50 MP: sequential frames decode row
            // by row at 1/8 scale (the missing data reads as empty blocks);
            // progressive ones would need every coefficient at full size.
            (16_384, 3_051, Expect::Either),
            (7_000, 7_000, Expect::Either),
        ] {
            let expect = if base.contains("progressive") && expect == Expect::Either {
                Refused
            } else {
                expect
            };
            push(
                cases,
                "bomb",
                format!("{} {w}x{h}", short(base)),
                jpeg_with_size(fixture(base), w, h),
                expect,
            );
        }
    }
    let gif = fixture("formats/coffee.gif");
    for (w, h, expect) in [
        (65_535u16, 65_535u16, Refused),
        (16_385, 1, Refused),
        (7_000, 7_000, Refused),
        (0, 0, Error),
    ] {
        let mut bytes = gif.to_vec();
        bytes[6..8].copy_from_slice(&w.to_le_bytes());
        bytes[8..10].copy_from_slice(&h.to_le_bytes());
        push(cases, "bomb", format!("gif screen {w}x{h}"), bytes, expect);
    }
    // WebP: VP8 frame header (14-bit sizes), VP8L (14-bit sizes - 1) and the
    // VP8X canvas (24-bit sizes - 1).
    let lossy = fixture("formats/coffee-lossy.webp");
    let mut vp8 = lossy.to_vec();
    vp8[26..28].copy_from_slice(&0x3FFFu16.to_le_bytes());
    vp8[28..30].copy_from_slice(&0x3FFFu16.to_le_bytes());
    push(cases, "bomb", "webp VP8 16383x16383", vp8, Refused);
    let lossless = fixture("formats/coffee-lossless.webp");
    let mut vp8l = lossless.to_vec();
    // 14 bits width-1, 14 bits height-1, after the 0x2F signature.
    let packed: u32 = 0x3FFF | (0x3FFF << 14) | (u32::from(vp8l[24]) & 0xF0) << 24;
    vp8l[21..25].copy_from_slice(&packed.to_le_bytes());
    push(cases, "bomb", "webp VP8L 16384x16384", vp8l, Refused);
    push(
        cases,
        "bomb",
        "webp VP8X canvas 2^24 x 2^24",
        webp_extended(1 << 24, 1 << 24),
        Refused,
    );
    push(
        cases,
        "bomb",
        "webp VP8X canvas 7000x7000",
        webp_extended(7_000, 7_000),
        Expect::Either,
    );
    push(
        cases,
        "bomb",
        "webp VP8X canvas 300x200 (the frame's own)",
        webp_extended(300, 200),
        Expect::Either,
    );
    for (w, h, expect) in [
        (1_000_000, 1_000_000, Refused),
        (1_000_000, -1_000_000, Refused),
        (16_385, 1, Refused),
        (7_000, 7_000, Refused),
        (i32::MIN, 1, Error),
        (1, i32::MIN, Error),
        (-300, 200, Error),
        (0, 200, Error),
    ] {
        push(
            cases,
            "bomb",
            format!("bmp {w}x{h}"),
            bmp_with_size(w, h),
            expect,
        );
    }
    // Lossless JPEG: full-resolution sample planes whatever the scale.
    let lossless = lossless_jpeg(8, 8, 1, 16, &[0x8000; 64]);
    push(
        cases,
        "bomb",
        "lossless jpeg 16384x3051 (8x8 of data)",
        jpeg_with_size(&lossless, 16_384, 3_051),
        Refused,
    );
    let lossless = lossless_jpeg(8, 8, 3, 16, &[0x8000; 192]);
    push(
        cases,
        "bomb",
        "lossless jpeg RGB 16384x3051 (8x8 of data)",
        jpeg_with_size(&lossless, 16_384, 3_051),
        Refused,
    );
    // 2,000 x 2,000 lossless RGB: 96 MB of buffers for 12 MB of pixels.
    let lossless = lossless_jpeg(8, 8, 3, 8, &[128; 192]);
    push(
        cases,
        "bomb",
        "lossless jpeg RGB 2000x2000 (8x8 of data)",
        jpeg_with_size(&lossless, 2_000, 2_000),
        Refused,
    );
}

fn zip_bombs(cases: &mut Vec<Case>) {
    // 4096x4096 RGBA: 64 MiB of pixels, over the edge's 48 MiB; the IDAT
    // (66 KB) inflates to all of it. Read row by row into block means, it
    // never needs that buffer, so it is hashed.
    let raw = png_raw_len(4_096, 4_096, 4);
    push(
        cases,
        "zipbomb",
        format!("png 4096x4096 RGBA, IDAT inflating to {} MiB", raw >> 20),
        png_zeros(4_096, 4_096, 8, 6, raw),
        Expect::Hash,
    );
    // 7000x7000 grey, 47 MiB of pixels from a 48 KB file: hashed row by row.
    let raw = png_raw_len(7_000, 7_000, 1);
    push(
        cases,
        "zipbomb",
        "png 7000x7000 grey, IDAT of exactly its size",
        png_zeros(7_000, 7_000, 8, 0, raw),
        Expect::Hash,
    );
    // Interlaced (Adam7) rows come in seven passes: such files are decoded
    // whole, within the allocation cap.
    let mut interlaced = PNG_SIGNATURE.to_vec();
    let mut header = ihdr(3_000, 2_000, 8, 0);
    header[12] = 1;
    png_chunk(&mut interlaced, b"IHDR", &header);
    png_chunk(
        &mut interlaced,
        b"IDAT",
        &zlib_zeros(adam7_raw_len(3_000, 2_000, 1)),
    );
    png_chunk(&mut interlaced, b"IEND", &[]);
    push(
        cases,
        "zipbomb",
        "png 3000x2000 grey, interlaced",
        interlaced,
        Expect::Hash,
    );
    // 1024x1024 grey, 1 MiB of pixels, IDAT inflating to 256 MiB: the
    // decoder must stop at what the header needs.
    push(
        cases,
        "zipbomb",
        "png 1024x1024 grey, IDAT inflating to 256 MiB",
        png_zeros(1_024, 1_024, 8, 0, 256 << 20),
        Expect::Either,
    );
    // 4000x3000 grey: 12 MB, within every limit; a legitimate large image.
    let raw = png_raw_len(4_000, 3_000, 1);
    push(
        cases,
        "zipbomb",
        "png 4000x3000 grey, IDAT of exactly its size",
        png_zeros(4_000, 3_000, 8, 0, raw),
        Expect::Hash,
    );
    // 16-bit RGBA, 2048x2048: 32 MiB of samples, within the limit.
    let raw = png_raw_len(2_048, 2_048, 8);
    push(
        cases,
        "zipbomb",
        "png 2048x2048 RGBA16, IDAT of exactly its size",
        png_zeros(2_048, 2_048, 16, 6, raw),
        Expect::Hash,
    );
    // The same in many small IDAT chunks of 2 bytes each.
    let stream = zlib_zeros(png_raw_len(512, 512, 1));
    let mut split = PNG_SIGNATURE.to_vec();
    png_chunk(&mut split, b"IHDR", &ihdr(512, 512, 8, 0));
    for piece in stream.chunks(2) {
        png_chunk(&mut split, b"IDAT", piece);
    }
    png_chunk(&mut split, b"IEND", &[]);
    push(
        cases,
        "zipbomb",
        "png 512x512 grey in 2-byte IDAT chunks",
        split,
        Expect::Hash,
    );
}

// ------------------------------------------------------------ deep colour

fn deep_colour(cases: &mut Vec<Case>) {
    use image::{DynamicImage, ImageFormat};
    let rgba =
        image::load_from_memory_with_format(fixture("formats/coffee-rgba.png"), ImageFormat::Png)
            .expect("coffee-rgba.png decodes")
            .to_rgba8();
    let grey =
        image::load_from_memory_with_format(fixture("formats/coffee-grey.png"), ImageFormat::Png)
            .expect("coffee-grey.png decodes")
            .to_luma8();
    let encode = |image: DynamicImage| {
        let mut out = std::io::Cursor::new(Vec::new());
        image
            .write_to(&mut out, ImageFormat::Png)
            .expect("PNG encodes");
        out.into_inner()
    };
    let wide = |v: u8| u16::from(v) * 257;
    let (w, h) = rgba.dimensions();
    let rgb16 = image::ImageBuffer::from_fn(w, h, |x, y| {
        let p = rgba.get_pixel(x, y).0;
        image::Rgb([wide(p[0]), wide(p[1]), wide(p[2])])
    });
    let rgba16 =
        image::ImageBuffer::from_fn(w, h, |x, y| image::Rgba(rgba.get_pixel(x, y).0.map(wide)));
    let grey_alpha16 = image::ImageBuffer::from_fn(w, h, |x, y| {
        image::LumaA([wide(grey.get_pixel(x, y).0[0]), 40_000])
    });
    push(
        cases,
        "deep",
        "png RGB 16-bit",
        encode(DynamicImage::ImageRgb16(rgb16)),
        Expect::SameAs("formats/coffee-rgba.png"),
    );
    push(
        cases,
        "deep",
        "png RGBA 16-bit",
        encode(DynamicImage::ImageRgba16(rgba16)),
        Expect::SameAs("formats/coffee-rgba.png"),
    );
    push(
        cases,
        "deep",
        "png grey+alpha 16-bit",
        encode(DynamicImage::ImageLumaA16(grey_alpha16)),
        Expect::SameAs("formats/coffee-grey.png"),
    );
    push(
        cases,
        "deep",
        "png grey 16-bit (fixture)",
        fixture("formats/coffee-grey16.png").to_vec(),
        Expect::SameAs("formats/coffee-grey.png"),
    );
    push(
        cases,
        "deep",
        "jpeg CMYK (fixture)",
        fixture("formats/coffee-cmyk.jpg").to_vec(),
        Expect::Near("formats/coffee-rgba.png", 16),
    );

    // Lossless JPEG of the same pixels at 16 and 12 bits, grey and RGB.
    let (w16, h16) = (w as u16, h as u16);
    let grey_samples: Vec<u8> = grey.as_raw().clone();
    let rgb_samples: Vec<u8> = rgba
        .pixels()
        .flat_map(|p| [p.0[0], p.0[1], p.0[2]])
        .collect();
    // 8-bit values widened with low bits that differ from the high ones
    // (v * 257 would read the same in either byte order).
    let widen = |v: u8, precision: u8| match precision {
        16 => u16::from(v) << 8 | u16::from(v ^ 0xA5),
        12 => u16::from(v) << 4 | u16::from(v & 0x0F ^ 0x0A),
        _ => u16::from(v),
    };
    for precision in [16u8, 12, 8] {
        let samples: Vec<u16> = grey_samples.iter().map(|&v| widen(v, precision)).collect();
        push(
            cases,
            "deep",
            format!("lossless jpeg grey {precision}-bit"),
            lossless_jpeg(w16, h16, 1, precision, &samples),
            Expect::SameAs("formats/coffee-grey.png"),
        );
        let samples: Vec<u16> = rgb_samples.iter().map(|&v| widen(v, precision)).collect();
        push(
            cases,
            "deep",
            format!("lossless jpeg RGB {precision}-bit"),
            lossless_jpeg(w16, h16, 3, precision, &samples),
            Expect::SameAs("formats/coffee-rgba.png"),
        );
    }
    // Large enough for reduced-scale decoding (which lossless JPEG has not).
    let tiled: Vec<u16> = (0..1_200 * 800)
        .map(|i| {
            let (x, y) = (i % 1_200, i / 1_200);
            widen(
                grey_samples[(y % 200) as usize * w as usize + (x % 300) as usize],
                16,
            )
        })
        .collect();
    push(
        cases,
        "deep",
        "lossless jpeg grey 16-bit 1200x800",
        lossless_jpeg(1_200, 800, 1, 16, &tiled),
        Expect::Hash,
    );
}

// ------------------------------------------------------------ polyglots

const HTML: &[u8] = b"<!doctype html><html><body><script>alert(document.domain)</script><img src=x onerror=alert(1)></body></html>\n";

fn polyglots(cases: &mut Vec<Case>) {
    // PNG, then HTML after IEND.
    let png = fixture("formats/coffee-palette.png");
    push(
        cases,
        "polyglot",
        "png + html after IEND",
        [png, HTML].concat(),
        Expect::SameAs("formats/coffee-palette.png"),
    );
    // PNG with the HTML in a tEXt chunk before the image data.
    let mut text = png[..33].to_vec();
    png_chunk(
        &mut text,
        b"tEXt",
        &[b"Comment\0".as_slice(), HTML].concat(),
    );
    text.extend_from_slice(&png[33..]);
    push(
        cases,
        "polyglot",
        "png with html in tEXt",
        text,
        Expect::SameAs("formats/coffee-palette.png"),
    );
    // JPEG with the HTML in a comment segment right after SOI.
    let jpeg = fixture("formats/coffee-420.jpg");
    let mut com = jpeg[..2].to_vec();
    com.extend_from_slice(&[0xFF, 0xFE]);
    com.extend_from_slice(&((HTML.len() + 2) as u16).to_be_bytes());
    com.extend_from_slice(HTML);
    com.extend_from_slice(&jpeg[2..]);
    push(
        cases,
        "polyglot",
        "jpeg with html in COM",
        com,
        Expect::SameAs("formats/coffee-420.jpg"),
    );
    push(
        cases,
        "polyglot",
        "jpeg + html after EOI",
        [jpeg, HTML].concat(),
        Expect::SameAs("formats/coffee-420.jpg"),
    );
    // GIF with the HTML in a comment extension before the image.
    let gif = fixture("formats/coffee.gif");
    let (first, _) = gif_layout(gif);
    let mut comment = gif[..first].to_vec();
    comment[..6].copy_from_slice(b"GIF89a");
    comment.extend_from_slice(&[0x21, 0xFE]);
    for block in HTML.chunks(255) {
        comment.push(block.len() as u8);
        comment.extend_from_slice(block);
    }
    comment.push(0);
    comment.extend_from_slice(&gif[first..]);
    push(
        cases,
        "polyglot",
        "gif with html in a comment extension",
        comment,
        Expect::SameAs("formats/coffee.gif"),
    );
    // WebP with the HTML in an unknown RIFF chunk after the image.
    let webp = fixture("formats/coffee-lossy.webp");
    let mut riff = webp.to_vec();
    riff.extend_from_slice(b"HTML");
    riff.extend_from_slice(&(HTML.len() as u32).to_le_bytes());
    riff.extend_from_slice(HTML);
    if HTML.len() % 2 == 1 {
        riff.push(0);
    }
    let size = (riff.len() - 8) as u32;
    riff[4..8].copy_from_slice(&size.to_le_bytes());
    push(
        cases,
        "polyglot",
        "webp with an HTML chunk",
        riff,
        Expect::Either,
    );
    // BMP with HTML after the pixels.
    let bmp = fixture("formats/coffee.bmp");
    push(
        cases,
        "polyglot",
        "bmp + html after the pixels",
        [bmp, HTML].concat(),
        Expect::SameAs("formats/coffee.bmp"),
    );
    // HTML first, image after: a browser renders HTML; hashgate must not
    // call it an image (the worker then decides by the route's rules).
    push(
        cases,
        "polyglot",
        "html then a png",
        [HTML, png].concat(),
        Expect::Unsupported,
    );
    push(
        cases,
        "polyglot",
        "html then a jpeg",
        [HTML, jpeg].concat(),
        Expect::Unsupported,
    );
}

// ------------------------------------------------------------ measuring

// ------------------------------------------------------------ containers

/// An ICO file holding `png` as its only image.
pub fn ico_with_png(png: &[u8], width: u8, height: u8) -> Vec<u8> {
    let mut out = vec![0, 0, 1, 0, 1, 0];
    out.extend_from_slice(&[width, height, 0, 0, 1, 0, 32, 0]);
    out.extend_from_slice(&(png.len() as u32).to_le_bytes());
    out.extend_from_slice(&22u32.to_le_bytes());
    out.extend_from_slice(png);
    out
}

/// An SVG wrapping `image` in an `<image>` data: URI.
pub fn svg_with(image: &[u8], media_type: &str) -> Vec<u8> {
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(image);
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg"><image href="data:{media_type};base64,{data}"/></svg>"#
    )
    .into_bytes()
}

/// A little-endian TIFF header and one IFD declaring `width` x `height`
/// 8-bit grey, with `pixels` as its only strip.
pub fn tiff_grey(width: u32, height: u32, pixels: &[u8]) -> Vec<u8> {
    let entries: [(u16, u16, u32); 8] = [
        (256, 4, width),               // ImageWidth
        (257, 4, height),              // ImageLength
        (258, 3, 8),                   // BitsPerSample
        (259, 3, 1),                   // Compression: none
        (262, 3, 1),                   // Photometric: black is zero
        (273, 4, 8 + 2 + 8 * 12 + 4),  // StripOffsets
        (278, 4, height),              // RowsPerStrip
        (279, 4, pixels.len() as u32), // StripByteCounts
    ];
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, kind, value) in entries {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        if kind == 3 {
            out.extend_from_slice(&(value as u16).to_le_bytes());
            out.extend_from_slice(&[0, 0]);
        } else {
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(pixels);
    out
}

fn hidden_containers(cases: &mut Vec<Case>) {
    let png = fixture("formats/coffee-rgba.png");
    let ico = ico_with_png(png, 0, 0);
    push(
        cases,
        "container",
        "ico around a png",
        ico.clone(),
        Expect::Either,
    );
    for cut in [6, 14, 22, 40, ico.len() / 2, ico.len() - 13] {
        push(
            cases,
            "container",
            format!("ico cut at {cut}"),
            ico[..cut].to_vec(),
            Expect::Either,
        );
    }
    let mut lying = ico.clone();
    lying[14..18].copy_from_slice(&u32::MAX.to_le_bytes());
    push(
        cases,
        "container",
        "ico entry size u32::MAX",
        lying,
        Expect::Either,
    );

    let pixels: Vec<u8> = (0..64 * 48).map(|i| ((i * 7) % 251) as u8).collect();
    let tiff = tiff_grey(64, 48, &pixels);
    push(
        cases,
        "container",
        "tiff 64x48 grey",
        tiff.clone(),
        Expect::Hash,
    );
    push(
        cases,
        "container",
        "tiff strip cut",
        tiff[..tiff.len() - 100].to_vec(),
        Expect::Error,
    );
    push(
        cases,
        "bomb",
        "tiff claiming 50,000 x 50,000",
        tiff_grey(50_000, 50_000, &pixels),
        Expect::Refused,
    );
    push(
        cases,
        "bomb",
        "tiff claiming 16,000 x 3,000 (under the pixel cap) with 3 KB of strip",
        tiff_grey(16_000, 3_000, &pixels),
        Expect::Error,
    );

    let svg = svg_with(png, "image/png");
    push(
        cases,
        "container",
        "svg around a png",
        svg.clone(),
        Expect::SameAs("formats/coffee-rgba.png"),
    );
    for cut in [20, 60, svg.len() / 2, svg.len() - 10] {
        push(
            cases,
            "container",
            format!("svg cut at {cut}"),
            svg[..cut].to_vec(),
            Expect::Either,
        );
    }
    let once = svg_with(&svg, "image/svg+xml");
    push(
        cases,
        "container",
        "svg in svg",
        once.clone(),
        Expect::SameAs("formats/coffee-rgba.png"),
    );
    push(
        cases,
        "container",
        "svg in svg in svg (too deep)",
        svg_with(&once, "image/svg+xml"),
        Expect::Error,
    );
    let tiny = fixture("exact/synthetic-5x5.png");
    let one = String::from_utf8(svg_with(tiny, "image/png")).expect("ascii");
    let image = &one[one.find("<image").expect("image")..one.rfind("</svg>").expect("end")];
    push(
        cases,
        "bomb",
        "svg with 1,000 embedded images",
        format!("<svg>{}</svg>", image.repeat(1_000)).into_bytes(),
        Expect::Hash,
    );
    push(
        cases,
        "container",
        "svg around a bomb",
        svg_with(fixture("errors/bomb-50000.png"), "image/png"),
        Expect::Refused,
    );

    // An APNG whose acTL claims 10,000 frames and whose frames are missing.
    let mut apng = png[..33].to_vec();
    let mut actl = 10_000u32.to_be_bytes().to_vec();
    actl.extend_from_slice(&0u32.to_be_bytes());
    png_chunk(&mut apng, b"acTL", &actl);
    apng.extend_from_slice(&png[33..]);
    push(
        cases,
        "animated",
        "apng claiming 10,000 frames, holding none",
        apng,
        Expect::SameAs("formats/coffee-rgba.png"),
    );

    push(
        cases,
        "container",
        "avif header",
        b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf".to_vec(),
        Expect::Error,
    );
}
