//! Bits of entropy-coded data, most significant first.
//!
//! A byte 0xFF in the data is followed by a stuffed 0x00, and any other
//! byte after 0xFF is a marker that ends the segment. The reader loads four
//! bytes at a time when none of them is 0xFF (the common case) and byte by
//! byte otherwise; at a marker or the end of the input it supplies zero bits
//! and counts them, so that a scan that reads into them is known to have
//! run past its data.

/// Bits the reader guarantees after [`BitReader::fill`]: one Huffman code
/// (up to 16 bits) plus its value bits (up to 11).
pub const GUARANTEED_BITS: u32 = 32;

pub struct BitReader<'a> {
    /// The low `count` bits are unread, oldest highest. Kept apart from
    /// [`Source`] so that the cold refill never takes their address and the
    /// compiler can hold them in registers.
    buffer: u64,
    count: u32,
    source: Source<'a>,
}

/// Where the bytes come from.
struct Source<'a> {
    data: &'a [u8],
    /// Next byte to load.
    pos: usize,
    /// Zero bits appended after a marker or the end of data.
    padding: u32,
    at_marker: bool,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        BitReader {
            buffer: 0,
            count: 0,
            source: Source {
                data,
                pos: 0,
                padding: 0,
                at_marker: false,
            },
        }
    }

    /// Ensures at least [`GUARANTEED_BITS`] bits are buffered.
    #[inline(always)]
    pub fn fill(&mut self) {
        if self.count >= GUARANTEED_BITS {
            return;
        }
        let source = &mut self.source;
        if let Some(word) = source.data.get(source.pos..source.pos + 4) {
            let word = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
            if !has_ff_byte(word) {
                self.buffer = (self.buffer << 32) | u64::from(word);
                self.count += 32;
                source.pos += 4;
                return;
            }
        }
        (self.buffer, self.count) = source.fill_slowly(self.buffer, self.count);
    }

    /// The next `n` bits (1 to 32) without consuming them; needs a
    /// preceding [`BitReader::fill`].
    #[inline(always)]
    pub fn peek(&self, n: u32) -> u32 {
        debug_assert!(n >= 1 && n <= self.count && n <= 32);
        ((self.buffer >> (self.count - n)) & ((1u64 << n) - 1)) as u32
    }

    #[inline(always)]
    pub fn consume(&mut self, n: u32) {
        debug_assert!(n <= self.count);
        self.count -= n;
    }

    /// Reads `n` bits (0 to 16) as an unsigned value.
    #[inline(always)]
    pub fn bits(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        let value = self.peek(n);
        self.consume(n);
        value
    }

    /// Bits buffered that came from the data, not from padding.
    #[inline(always)]
    pub fn real_bits(&self) -> u32 {
        self.count.saturating_sub(self.source.padding)
    }

    /// Whether any padding bit has been consumed: the scan read past its data.
    pub fn overran(&self) -> bool {
        self.source.padding > self.count
    }

    /// At a restart interval's end: drops the bits left in the current
    /// byte and expects the marker RST`expected`. Returns false if it is not
    /// there (or bits were read past the data).
    pub fn restart(&mut self, expected: u8) -> bool {
        if self.overran() {
            return false;
        }
        // Whole bytes still buffered belong before the marker only if they
        // are padding; real unread bytes mean the interval ended early.
        if self.real_bits() >= 8 {
            return false;
        }
        let source = &mut self.source;
        let mut at = source.pos;
        if source.data.get(at) != Some(&0xFF) {
            return false;
        }
        while source.data.get(at) == Some(&0xFF) {
            at += 1;
        }
        if source.data.get(at) != Some(&(0xD0 + expected)) {
            return false;
        }
        source.pos = at + 1;
        source.padding = 0;
        source.at_marker = false;
        self.buffer = 0;
        self.count = 0;
        true
    }
}

impl Source<'_> {
    /// Loads bytes one at a time until more than 56 bits are buffered.
    #[cold]
    #[inline(never)]
    fn fill_slowly(&mut self, mut buffer: u64, mut count: u32) -> (u64, u32) {
        while count <= 56 {
            buffer = (buffer << 8) | u64::from(self.next_byte());
            count += 8;
        }
        (buffer, count)
    }

    fn next_byte(&mut self) -> u8 {
        if !self.at_marker {
            match self.data.get(self.pos) {
                Some(&0xFF) if self.data.get(self.pos + 1) == Some(&0x00) => {
                    self.pos += 2;
                    return 0xFF;
                }
                Some(&0xFF) | None => self.at_marker = true,
                Some(&byte) => {
                    self.pos += 1;
                    return byte;
                }
            }
        }
        self.padding += 8;
        0
    }
}

/// Whether any byte of `word` is 0xFF.
#[inline(always)]
fn has_ff_byte(word: u32) -> bool {
    let inverted = !word;
    inverted.wrapping_sub(0x0101_0101) & word & 0x8080_8080 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_ff_bytes() {
        assert!(!has_ff_byte(0x0000_0000));
        assert!(!has_ff_byte(0xFEFE_7F80));
        assert!(has_ff_byte(0xFF00_0000));
        assert!(has_ff_byte(0x0000_00FF));
        assert!(has_ff_byte(0x12FF_3456));
        assert!(has_ff_byte(0xFFFF_FFFF));
        for byte in 0..=255u32 {
            for shift in [0, 8, 16, 24] {
                assert_eq!(
                    has_ff_byte(byte << shift),
                    byte == 0xFF,
                    "{byte:#x} << {shift}"
                );
            }
        }
    }

    #[test]
    fn unstuffs_and_stops_at_markers() {
        let data = [0xAB, 0xFF, 0x00, 0xCD, 0xFF, 0xD9];
        let mut reader = BitReader::new(&data);
        reader.fill();
        assert_eq!(reader.bits(8), 0xAB);
        assert_eq!(reader.bits(8), 0xFF);
        assert_eq!(reader.bits(4), 0xC);
        assert_eq!(reader.bits(4), 0xD);
        assert!(!reader.overran());
        reader.fill();
        assert_eq!(reader.bits(1), 0);
        assert!(reader.overran());
    }

    #[test]
    fn restarts_at_the_expected_marker() {
        let data = [0b1010_0000, 0xFF, 0xD3, 0x80];
        let mut reader = BitReader::new(&data);
        reader.fill();
        assert_eq!(reader.bits(3), 0b101);
        assert!(!reader.restart(2));
        assert!(reader.restart(3));
        reader.fill();
        assert_eq!(reader.bits(1), 1);
    }
}
