//! Huffman tables built for decoding: a lookup on the next few bits for
//! short codes, the canonical bounds for long ones, a lookup that decodes a
//! code together with its value bits, and (for AC tables) a table that
//! skips several whole coefficients at once.
//!
//! Skipping is what makes scaled decoding cheap: a block's AC coefficients
//! beyond the ones the reduced inverse DCT uses still have to be read (the
//! code is a bit stream), but their values are never needed. A skip entry
//! says, for the next [`SKIP_BITS`] bits, how many bits the complete
//! (code, value) pairs in them take, how many coefficient positions they
//! advance, and whether they end with end-of-block, so a typical block is
//! passed over in a few lookups instead of one per coefficient.

use super::bits::BitReader;
use super::segments::HuffmanSpec;
use super::Fallback;

/// Bits resolved by one lookup of [`HuffmanTable::lookup`].
const LOOKAHEAD: u32 = 9;
/// Bits covered by one [`SkipEntry`].
pub const SKIP_BITS: u32 = 14;
/// Bits covered by one [`Coded`] entry.
const CODED_BITS: u32 = 11;

/// Which kind of table: DC symbols are a size, AC symbols a run and a size.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Dc,
    Ac,
}

pub struct HuffmanTable {
    /// For the next LOOKAHEAD bits: `length << 8 | symbol`, 0 if the code is longer.
    lookup: Vec<u16>,
    /// Largest code of each length (index 1..=16), -1 if none.
    max_code: [i32; 17],
    /// Add to a code of that length for its index in `symbols`.
    offset: [i32; 17],
    symbols: Vec<u8>,
    /// Every code: (code, length, symbol), shortest first.
    codes: Vec<(u16, u8, u8)>,
    /// For every CODED_BITS-bit pattern: the code and value at its start.
    coded: Vec<Coded>,
    /// For AC tables: skip entries for every SKIP_BITS-bit pattern.
    skip: Vec<SkipEntry>,
}

/// A code and its value bits decoded together: `bits` 0 when they do not
/// fit in [`CODED_BITS`]. For DC tables `run` is 0 and `size` the symbol.
#[derive(Clone, Copy, Default)]
pub struct Coded {
    pub bits: u8,
    pub run: u8,
    pub size: u8,
    pub value: i16,
}

/// Packed: bits used (low 4 bits), positions advanced (next 7 bits), and
/// whether the run ends with end-of-block (bit 11). Zero bits used means no
/// complete pair fits.
#[derive(Clone, Copy, Default)]
pub struct SkipEntry(u16);

impl SkipEntry {
    fn new(bits: u32, advance: u32, ends_block: bool) -> Self {
        debug_assert!(bits < 16 && advance < 128);
        SkipEntry((bits | advance << 4 | u32::from(ends_block) << 11) as u16)
    }

    #[inline(always)]
    pub fn bits(self) -> u32 {
        u32::from(self.0 & 0x0F)
    }

    #[inline(always)]
    pub fn advance(self) -> u32 {
        u32::from(self.0 >> 4) & 0x7F
    }

    #[inline(always)]
    pub fn ends_block(self) -> bool {
        self.0 & 0x800 != 0
    }
}

impl HuffmanTable {
    pub fn new(spec: &HuffmanSpec, class: Class) -> Result<Self, Fallback> {
        let mut max_code = [-1i32; 17];
        let mut offset = [0i32; 17];
        let mut lookup = vec![0u16; 1 << LOOKAHEAD];
        let mut codes = Vec::with_capacity(spec.symbols.len());
        let mut code = 0u32;
        let mut index = 0usize;
        for length in 1..=16u32 {
            let count = u32::from(spec.counts[length as usize - 1]);
            if count > 0 {
                if code + count > 1 << length {
                    return Err(Fallback::Corrupt("Huffman code lengths overflow"));
                }
                offset[length as usize] = index as i32 - code as i32;
                for _ in 0..count {
                    let symbol = spec.symbols[index];
                    if length <= LOOKAHEAD {
                        let shift = LOOKAHEAD - length;
                        let first = (code << shift) as usize;
                        lookup[first..first + (1 << shift)]
                            .fill((length as u16) << 8 | u16::from(symbol));
                    }
                    codes.push((code as u16, length as u8, symbol));
                    code += 1;
                    index += 1;
                }
                max_code[length as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        let mut table = HuffmanTable {
            lookup,
            max_code,
            offset,
            symbols: spec.symbols.clone(),
            codes,
            coded: Vec::new(),
            skip: Vec::new(),
        };
        table.coded = table.coded_entries(class);
        if class == Class::Ac {
            table.skip = vec![SkipEntry::default(); 1 << SKIP_BITS];
            table.fill_skip(0, 0, 0);
        }
        Ok(table)
    }

    /// The [`Coded`] entry of every CODED_BITS-bit pattern.
    fn coded_entries(&self, class: Class) -> Vec<Coded> {
        let mut entries = vec![Coded::default(); 1 << CODED_BITS];
        for &(code, length, symbol) in &self.codes {
            let (run, size) = match class {
                Class::Dc => (0, symbol),
                Class::Ac => (symbol >> 4, symbol & 0x0F),
            };
            let total = u32::from(length) + u32::from(size);
            if total > CODED_BITS {
                continue;
            }
            let tail = CODED_BITS - total;
            for raw in 0..1u32 << size {
                let start = (((u32::from(code) << size) | raw) << tail) as usize;
                entries[start..start + (1 << tail)].fill(Coded {
                    bits: total as u8,
                    run,
                    size,
                    value: extend(raw, u32::from(size)) as i16,
                });
            }
        }
        entries
    }

    /// Fills the skip entries of every pattern that starts with a decoded
    /// prefix of `used` bits, which advanced `advance` positions: the range
    /// from `start`, `1 << (SKIP_BITS - used)` entries long. Each code that
    /// fits (with its value bits) narrows the range and recurses, so the
    /// work is proportional to the table, not to patterns times codes.
    fn fill_skip(&mut self, start: usize, used: u32, advance: u32) {
        let remaining = SKIP_BITS - used;
        self.skip[start..start + (1 << remaining)].fill(SkipEntry::new(used, advance, false));
        if advance >= 64 {
            return;
        }
        for index in 0..self.codes.len() {
            let (code, length, symbol) = self.codes[index];
            let length = u32::from(length);
            if length > remaining {
                break;
            }
            let sub_start = start + (usize::from(code) << (remaining - length));
            let (run, size) = (u32::from(symbol >> 4), u32::from(symbol & 0x0F));
            match (run, size) {
                (0, 0) => {
                    let entry = SkipEntry::new(used + length, advance, true);
                    self.skip[sub_start..sub_start + (1 << (remaining - length))].fill(entry);
                }
                (15, 0) => self.fill_skip(sub_start, used + length, advance + 16),
                // Runs of zeros without a value are invalid: left to the
                // one-symbol path, which reports them.
                (_, 0) => {}
                _ if length + size > remaining => {}
                _ => {
                    let tail = remaining - length - size;
                    for value in 0..1usize << size {
                        self.fill_skip(
                            sub_start + (value << tail),
                            used + length + size,
                            advance + run + 1,
                        );
                    }
                }
            }
        }
    }

    /// Decodes one symbol.
    #[inline(always)]
    pub fn decode(&self, reader: &mut BitReader) -> Result<u8, Fallback> {
        reader.fill();
        let entry = self.lookup[reader.peek(LOOKAHEAD) as usize];
        if entry != 0 {
            reader.consume(u32::from(entry >> 8));
            return Ok(entry as u8);
        }
        self.decode_long(reader)
    }

    #[cold]
    fn decode_long(&self, reader: &mut BitReader) -> Result<u8, Fallback> {
        let bits = reader.peek(16);
        for length in LOOKAHEAD + 1..=16 {
            let code = (bits >> (16 - length)) as i32;
            if code <= self.max_code[length as usize] {
                let index = (code + self.offset[length as usize]) as usize;
                let symbol = *self
                    .symbols
                    .get(index)
                    .ok_or(Fallback::Corrupt("bad Huffman code"))?;
                reader.consume(length);
                return Ok(symbol);
            }
        }
        Err(Fallback::Corrupt("bad Huffman code"))
    }

    /// Decodes one code and its value bits: (run, size, value).
    #[inline(always)]
    pub fn decode_coded(
        &self,
        reader: &mut BitReader,
        class: Class,
    ) -> Result<(u32, u32, i32), Fallback> {
        reader.fill();
        let coded = self.coded[reader.peek(CODED_BITS) as usize];
        if coded.bits != 0 {
            reader.consume(u32::from(coded.bits));
            return Ok((
                u32::from(coded.run),
                u32::from(coded.size),
                i32::from(coded.value),
            ));
        }
        let symbol = self.decode(reader)?;
        let (run, size) = match class {
            Class::Dc => (0, u32::from(symbol)),
            Class::Ac => (u32::from(symbol >> 4), u32::from(symbol & 0x0F)),
        };
        // Sizes beyond 16 bits are the caller's error to report.
        let value = if size <= 16 {
            extend(reader.bits(size), size)
        } else {
            0
        };
        Ok((run, size, value))
    }

    /// The skip entry for the next [`SKIP_BITS`] bits; needs a fill.
    #[inline(always)]
    pub fn skip_entry_at(&self, reader: &BitReader) -> SkipEntry {
        self.skip[reader.peek(SKIP_BITS) as usize]
    }
}

/// A value of `size` bits in JPEG's sign-magnitude-like coding.
#[inline(always)]
pub fn extend(value: u32, size: u32) -> i32 {
    if size == 0 {
        return 0;
    }
    let value = value as i32;
    if value < 1 << (size - 1) {
        value - (1 << size) + 1
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Codes: 0 -> 00, 1 -> 010, 2 -> 011, ... (the standard luma DC table).
    fn luma_dc() -> HuffmanSpec {
        HuffmanSpec {
            counts: [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
            symbols: (0..12).collect(),
        }
    }

    #[test]
    fn decodes_canonical_codes() {
        let table = HuffmanTable::new(&luma_dc(), Class::Dc).unwrap();
        // 00 | 010 | 111111110 (symbol 11, 9 bits) | 1110 (symbol 6)
        let data = [0b0001_0111, 0b1111_1011, 0b1000_0000, 0, 0, 0, 0, 0];
        let mut reader = BitReader::new(&data);
        assert_eq!(table.decode(&mut reader).unwrap(), 0);
        assert_eq!(table.decode(&mut reader).unwrap(), 1);
        assert_eq!(table.decode(&mut reader).unwrap(), 11);
        assert_eq!(table.decode(&mut reader).unwrap(), 6);
    }

    #[test]
    fn rejects_overfull_lengths() {
        let spec = HuffmanSpec {
            counts: [3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            symbols: vec![1, 2, 3],
        };
        assert!(HuffmanTable::new(&spec, Class::Dc).is_err());
    }

    #[test]
    fn skip_entries_sum_whole_pairs() {
        // AC codes: 0x01 (run 0, size 1) -> 0, 0x00 (EOB) -> 10, 0x11 -> 110.
        let spec = HuffmanSpec {
            counts: [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            symbols: vec![0x01, 0x00, 0x11],
        };
        let table = HuffmanTable::new(&spec, Class::Ac).unwrap();
        // 0+v | 0+v | 110+v v | 10 (EOB) | rest
        // Grouped by field: code, value, code, value, code, value, EOB, rest.
        #[allow(clippy::unusual_byte_groupings)]
        let pattern = 0b0_1_0_0_110_1_10_00 << (SKIP_BITS - 12);
        let entry = table.skip[pattern as usize];
        assert_eq!(entry.bits(), 10);
        assert_eq!(entry.advance(), 1 + 1 + 2);
        assert!(entry.ends_block());
        assert_eq!(extend(0, 1), -1);
        assert_eq!(extend(1, 1), 1);
        assert_eq!(extend(2, 3), -5);
        assert_eq!(extend(5, 3), 5);
    }
}
