//! Small bombs under the native limits (`hashgate hash`, `scan`, `serve`):
//! a few bytes or kilobytes that declare a huge image, in every format, hashed with
//! the default options and with the most expensive ones (`full`,
//! `variants`, `dihedral`). Each must be refused or hashed within the
//! memory bound and a CPU-time bound, both measured here: peak bytes by a
//! counting global allocator, CPU time by `getrusage` of the process.
//!
//! The memory bound: `Limits::max_memory` (the decode paths' estimate from
//! the header) plus the variants' working set (three planes of
//! `MAX_VARIANT_PIXELS` samples) plus 16 MiB for everything else.

#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use hashgate::variants::{VariantOptions, MAX_VARIANT_PIXELS};
use hashgate::{hash_image, DecodeOptions, HashError, HashOptions, Limits, Reduction};

use hashgate_testkit::{alloc, corpus};

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// CPU time one image may take, decode and every hash. Generous for a
/// loaded 2-core machine; the bombs took 10-12 s each before the limits.
const CPU_BOUND: Duration = Duration::from_secs(5);

fn bound() -> usize {
    Limits::default().max_memory + 3 * MAX_VARIANT_PIXELS * 4 + (16 << 20)
}

fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Bits written least significant first, as VP8L reads them.
#[derive(Default)]
struct LsbBits {
    bytes: Vec<u8>,
    used: usize,
}

impl LsbBits {
    fn put(&mut self, value: u32, count: usize) {
        for i in 0..count {
            if self.used.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if value >> i & 1 == 1 {
                *self.bytes.last_mut().unwrap() |= 1 << (self.used % 8);
            }
            self.used += 1;
        }
    }
}

/// A valid lossless WebP of one colour: every prefix code has a single
/// symbol, so pixels cost no bits at all and any size fits in 30 bytes.
fn webp_one_colour(width: u32, height: u32, alpha: bool) -> Vec<u8> {
    let mut bits = LsbBits::default();
    bits.put(0x2F, 8);
    bits.put(width - 1, 14);
    bits.put(height - 1, 14);
    bits.put(u32::from(alpha), 1);
    bits.put(0, 3); // version
    bits.put(0, 1); // no transform
    bits.put(0, 1); // no colour cache
    bits.put(0, 1); // no meta prefix codes
    for _ in 0..5 {
        bits.put(1, 1); // simple code
        bits.put(0, 1); // one symbol
        bits.put(0, 1); // of 1 bit
        bits.put(0, 1); // symbol 0
    }
    let mut data = bits.bytes;
    if data.len() % 2 == 1 {
        data.push(0);
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(4 + 8 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WEBPVP8L");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out
}

/// An RLE8 BMP whose only code is "end of bitmap": every pixel is palette
/// entry 0, in 70 bytes.
fn bmp_rle(width: i32, height: i32) -> Vec<u8> {
    let mut out = b"BM".to_vec();
    let data_at = 14 + 40 + 8;
    let data = [0u8, 1];
    out.extend_from_slice(&((data_at + data.len()) as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(data_at as u32).to_le_bytes());
    out.extend_from_slice(&40u32.to_le_bytes());
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // BI_RLE8
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&2u32.to_le_bytes()); // colours used
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&[40, 80, 120, 0, 200, 200, 200, 0]);
    out.extend_from_slice(&data);
    out
}

/// A GIF whose logical screen is `width` x `height` and whose one frame is
/// a single pixel.
fn gif_screen(width: u16, height: u16) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    out.extend_from_slice(&[0x80, 0, 0]); // global table of 2 colours
    out.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    out.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]);
    out.extend_from_slice(&[2, 2, 0x4C, 0x01, 0, 0x3B]);
    out
}

/// A PNG of zeros, `interlaced` or not.
fn png_zeros(width: u32, height: u32, depth: u8, colour: u8, interlaced: bool) -> Vec<u8> {
    let channels = match colour {
        0 => 1,
        2 => 3,
        4 => 2,
        6 => 4,
        _ => 1,
    };
    let bytes_per_pixel = channels * usize::from(depth) / 8;
    let raw = if interlaced {
        corpus::adam7_raw_len(width, height, bytes_per_pixel)
    } else {
        corpus::png_raw_len(width, height, bytes_per_pixel)
    };
    let mut header = corpus::ihdr(width, height, depth, colour);
    header[12] = u8::from(interlaced);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    corpus::png_chunk(&mut png, b"IHDR", &header);
    corpus::png_chunk(&mut png, b"IDAT", &corpus::zlib_zeros(raw));
    corpus::png_chunk(&mut png, b"IEND", &[]);
    png
}

fn bombs() -> Vec<(String, Vec<u8>)> {
    let mut out = vec![
        (
            "webp 16383x6103".into(),
            webp_one_colour(16383, 6103, false),
        ),
        (
            "webp 16383x6103 alpha".into(),
            webp_one_colour(16383, 6103, true),
        ),
        (
            "webp 16383x5000".into(),
            webp_one_colour(16383, 5000, false),
        ),
        (
            "webp 14000x5000".into(),
            webp_one_colour(14000, 5000, false),
        ),
        (
            "webp 9000x5000 alpha".into(),
            webp_one_colour(9000, 5000, true),
        ),
        ("webp 6000x4000".into(), webp_one_colour(6000, 4000, false)),
        ("bmp rle 20000x5000".into(), bmp_rle(20000, 5000)),
        ("bmp rle 8000x6000".into(), bmp_rle(8000, 6000)),
        ("gif screen 20000x5000".into(), gif_screen(20000, 5000)),
        ("gif screen 8000x6000".into(), gif_screen(8000, 6000)),
        ("gif screen 6000x4000".into(), gif_screen(6000, 4000)),
        (
            "png interlaced 16-bit rgba 9000x9000".into(),
            png_zeros(9000, 9000, 16, 6, true),
        ),
        (
            "png interlaced rgb 7000x6000".into(),
            png_zeros(7000, 6000, 8, 2, true),
        ),
        (
            "png 16-bit rgba 10000x10000".into(),
            png_zeros(10000, 10000, 16, 6, false),
        ),
    ];
    for base in ["formats/coffee-420.jpg", "formats/coffee-progressive.jpg"] {
        for (w, h) in [(16_384u16, 6_103u16), (10_000, 5_000), (6_000, 4_000)] {
            out.push((
                format!("{base} {w}x{h}"),
                corpus::jpeg_with_size(hashgate_testkit::fixtures::fixture(base), w, h),
            ));
        }
    }
    out
}

fn native(full: bool, extra: bool) -> HashOptions {
    HashOptions {
        decode: DecodeOptions {
            limits: Limits::default(),
            reduction: if full {
                Reduction::Full
            } else {
                Reduction::DEFAULT
            },
            apply_exif: false,
        },
        dihedral: extra,
        variants: if extra {
            VariantOptions::ALL
        } else {
            VariantOptions::NONE
        },
    }
}

#[test]
fn every_format_s_small_bombs_are_refused_or_hashed_within_memory_and_cpu_bounds() {
    let _serial = alloc::serial();
    let webp = webp_one_colour(16383, 6103, false);
    assert!(webp.len() <= 40, "the WebP bomb is {} bytes", webp.len());
    let mut failures = Vec::new();
    for (name, bytes) in bombs() {
        for (full, extra) in [(false, false), (true, true), (false, true)] {
            let options = native(full, extra);
            let cpu = cpu_time();
            let (result, peak) = alloc::peak_bytes(|| hash_image(&bytes, &options));
            let cpu = cpu_time() - cpu;
            let outcome = match &result {
                Ok(h) => format!("hashed {}x{}", h.width, h.height),
                Err(HashError::MemoryLimit { .. }) => "refused (memory)".into(),
                Err(HashError::DimensionsTooLarge { .. }) => "refused (dimensions)".into(),
                Err(e) => format!("error: {e}"),
            };
            println!(
                "{name} ({} bytes) full={full} variants+dihedral={extra}: {outcome}; \
                 peak {:.1} MiB, CPU {:.2} s",
                bytes.len(),
                peak as f64 / 1048576.0,
                cpu.as_secs_f64()
            );
            if peak > bound() {
                failures.push(format!(
                    "{name} full={full} extra={extra}: held {} MiB (bound {} MiB)",
                    peak >> 20,
                    bound() >> 20
                ));
            }
            if cpu > CPU_BOUND {
                failures.push(format!(
                    "{name} full={full} extra={extra}: {:.1} s of CPU (bound {:?})",
                    cpu.as_secs_f64(),
                    CPU_BOUND
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_webp_bomb_is_a_real_image_that_hashes_when_small() {
    // The generator makes valid images: a small one decodes and hashes.
    let hashes = hash_image(&webp_one_colour(300, 200, false), &native(true, true))
        .expect("a one-colour WebP hashes");
    assert_eq!((hashes.width, hashes.height), (300, 200));
    let hashes = hash_image(&bmp_rle(300, 200), &native(false, false)).expect("RLE BMP hashes");
    assert_eq!((hashes.width, hashes.height), (300, 200));
    let hashes = hash_image(&gif_screen(300, 200), &native(false, false)).expect("GIF hashes");
    assert_eq!((hashes.width, hashes.height), (300, 200));
}
