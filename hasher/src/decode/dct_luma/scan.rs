//! The first scan, MCU by MCU: luma blocks are decoded as far as the
//! reduced inverse DCT needs and transformed into the output plane; every
//! other coefficient, and every chroma block, is only skipped over.

use super::bits::BitReader;
use super::huffman::{Class, HuffmanTable, SKIP_BITS};
use super::idct::{Block, ScaledIdct};
use super::segments::{max_sampling, Headers};
use super::Fallback;
use crate::pdq::LumaImage;

/// Natural (row-major) index of each zigzag position.
const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// The largest DC difference size for 8-bit samples.
const MAX_DC_SIZE: u8 = 11;

/// How one scan component is read.
struct Reading<'t> {
    dc: &'t HuffmanTable,
    ac: &'t HuffmanTable,
    /// Blocks per MCU across and down (1 x 1 in a single-component scan).
    h: usize,
    v: usize,
    luma: bool,
}

/// Where each zigzag position lands in the `size`x`size` coefficient
/// block, with its quantizer: positions the reduced inverse DCT does not use
/// land in [`DISCARD`], so that storing a value never branches.
struct Needed {
    last: u32,
    slot: [u8; 64],
    quant: [f32; 64],
}

/// The slot of a [`Block`] that takes the values nobody reads.
const DISCARD: u8 = 16;

impl Needed {
    fn new(size: usize, quant: &[u16; 64]) -> Self {
        let mut needed = Needed {
            last: 0,
            slot: [DISCARD; 64],
            quant: [0.0; 64],
        };
        for k in 0..64 {
            let natural = usize::from(ZIGZAG[k]);
            let (row, col) = (natural / 8, natural % 8);
            needed.quant[k] = f32::from(quant[k]);
            if row < size && col < size {
                needed.slot[k] = (row * size + col) as u8;
                needed.last = k as u32;
            }
        }
        needed
    }
}

/// Decodes the luma plane at `size` samples per block side (1, 2 or 4).
pub fn decode_luma(headers: &Headers, data: &[u8], size: usize) -> Result<LumaImage, Fallback> {
    let tables = Tables::new(headers)?;
    let interleaved = headers.scan.len() > 1;
    let readings = headers
        .scan
        .iter()
        .map(|s| {
            let component = &headers.components[s.frame_index];
            let (h, v) = if interleaved {
                (usize::from(component.h), usize::from(component.v))
            } else {
                (1, 1)
            };
            Ok(Reading {
                dc: tables.dc[usize::from(s.dc_table)]
                    .as_ref()
                    .ok_or(Fallback::Corrupt("scan uses a missing DC table"))?,
                ac: tables.ac[usize::from(s.ac_table)]
                    .as_ref()
                    .ok_or(Fallback::Corrupt("scan uses a missing AC table"))?,
                h,
                v,
                luma: s.frame_index == 0,
            })
        })
        .collect::<Result<Vec<_>, Fallback>>()?;
    let quant = headers.quant[usize::from(headers.components[0].quant_table)]
        .as_ref()
        .ok_or(Fallback::Corrupt("luma uses a missing quantization table"))?;
    let needed = Needed::new(size, quant);
    let idct = ScaledIdct::new(size);

    let (width, height) = (usize::from(headers.width), usize::from(headers.height));
    let (h_max, v_max) = if interleaved {
        let (h, v) = max_sampling(&headers.components);
        (usize::from(h), usize::from(v))
    } else {
        (1, 1)
    };
    let mcus_x = width.div_ceil(8 * h_max);
    let mcus_y = height.div_ceil(8 * v_max);
    let out_w = (width * size).div_ceil(8);
    let out_h = (height * size).div_ceil(8);
    let mut pixels = vec![0f32; out_w * out_h];

    let mut reader = BitReader::new(data);
    let mut predictor = 0i32;
    let restart_interval = usize::from(headers.restart_interval);
    let mut next_restart = 0u8;
    let mut block: Block = [0f32; 17];
    for mcu_y in 0..mcus_y {
        for mcu_x in 0..mcus_x {
            let index = mcu_y * mcus_x + mcu_x;
            if restart_interval > 0 && index > 0 && index % restart_interval == 0 {
                if !reader.restart(next_restart) {
                    return Err(Fallback::Corrupt("missing restart marker"));
                }
                next_restart = (next_restart + 1) & 7;
                predictor = 0;
            }
            for reading in &readings {
                for block_y in 0..reading.v {
                    for block_x in 0..reading.h {
                        if !reading.luma {
                            skip_block(&mut reader, reading)?;
                            continue;
                        }
                        block.fill(0.0);
                        read_luma_block(&mut reader, reading, &needed, &mut predictor, &mut block)?;
                        idct.transform(&mut block);
                        let x0 = (mcu_x * reading.h + block_x) * size;
                        let y0 = (mcu_y * reading.v + block_y) * size;
                        for y in 0..size.min(out_h.saturating_sub(y0)) {
                            let row = &mut pixels[(y0 + y) * out_w..][..out_w];
                            for x in 0..size.min(out_w.saturating_sub(x0)) {
                                row[x0 + x] = block[y * size + x];
                            }
                        }
                    }
                }
            }
        }
        if reader.overran() {
            return Err(Fallback::Corrupt("scan data ends early"));
        }
    }
    Ok(LumaImage {
        width: out_w,
        height: out_h,
        pixels,
    })
}

/// Huffman tables by id, built once.
struct Tables {
    dc: [Option<HuffmanTable>; 4],
    ac: [Option<HuffmanTable>; 4],
}

impl Tables {
    fn new(headers: &Headers) -> Result<Self, Fallback> {
        let mut tables = Tables {
            dc: Default::default(),
            ac: Default::default(),
        };
        for component in &headers.scan {
            let (dc, ac) = (
                usize::from(component.dc_table),
                usize::from(component.ac_table),
            );
            if tables.dc[dc].is_none() {
                if let Some(spec) = &headers.dc_tables[dc] {
                    tables.dc[dc] = Some(HuffmanTable::new(spec, Class::Dc)?);
                }
            }
            if tables.ac[ac].is_none() {
                if let Some(spec) = &headers.ac_tables[ac] {
                    tables.ac[ac] = Some(HuffmanTable::new(spec, Class::Ac)?);
                }
            }
        }
        Ok(tables)
    }
}

/// Reads a luma block's DC and the AC coefficients up to `needed.last`
/// into `block` (dequantized), and skips the rest.
#[inline(always)]
fn read_luma_block(
    reader: &mut BitReader,
    reading: &Reading,
    needed: &Needed,
    predictor: &mut i32,
    block: &mut Block,
) -> Result<(), Fallback> {
    let (_, size, difference) = reading.dc.decode_coded(reader, Class::Dc)?;
    if size > u32::from(MAX_DC_SIZE) {
        return Err(Fallback::Corrupt("DC difference too large"));
    }
    *predictor = predictor.wrapping_add(difference);
    block[0] = *predictor as f32 * needed.quant[0];
    let mut k = 1u32;
    while k <= needed.last {
        let (run, size, value) = reading.ac.decode_coded(reader, Class::Ac)?;
        if size == 0 {
            if run == 15 {
                k += 16;
                continue;
            }
            return Ok(());
        }
        k += run;
        if k > 63 {
            return Err(Fallback::Corrupt("AC run past the block"));
        }
        block[usize::from(needed.slot[k as usize])] = value as f32 * needed.quant[k as usize];
        k += 1;
    }
    skip_ac(reader, reading.ac, k)
}

/// Skips a whole (chroma) block.
#[inline(always)]
fn skip_block(reader: &mut BitReader, reading: &Reading) -> Result<(), Fallback> {
    let size = reading.dc.decode(reader)?;
    if size > MAX_DC_SIZE {
        return Err(Fallback::Corrupt("DC difference too large"));
    }
    reader.consume(u32::from(size));
    skip_ac(reader, reading.ac, 1)
}

/// Skips AC coefficients from zigzag position `k` to the end of the block.
#[inline(always)]
fn skip_ac(reader: &mut BitReader, ac: &HuffmanTable, mut k: u32) -> Result<(), Fallback> {
    while k < 64 {
        reader.fill();
        if reader.real_bits() >= SKIP_BITS {
            let entry = ac.skip_entry_at(reader);
            let advance = entry.advance();
            if entry.bits() != 0 {
                if entry.ends_block() {
                    if k + advance < 64 {
                        reader.consume(entry.bits());
                        return Ok(());
                    }
                } else if k + advance <= 64 {
                    reader.consume(entry.bits());
                    k += advance;
                    continue;
                }
            }
        }
        let symbol = ac.decode(reader)?;
        let (run, size) = (u32::from(symbol >> 4), u32::from(symbol & 0x0F));
        if size == 0 {
            if run == 15 {
                k += 16;
                continue;
            }
            return Ok(());
        }
        k += run;
        if k > 63 {
            return Err(Fallback::Corrupt("AC run past the block"));
        }
        reader.consume(size);
        k += 1;
    }
    Ok(())
}
