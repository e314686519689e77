//! The marker segments before the first scan: what the scan decoder needs
//! (frame, tables, restart interval, the scan's components) and nothing
//! more. The segments come from the one marker walk
//! (`decode::jpeg_markers`), strict: anything between segments that is not
//! a well-formed segment is [`Fallback::Corrupt`]. Anything this fast path does not handle is reported as
//! [`Fallback::Unsupported`] so that the general decoder takes the file.

use super::Fallback;
use crate::decode::jpeg_markers::{self, Segment, Walk};

/// One component of the frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Component {
    pub id: u8,
    pub h: u8,
    pub v: u8,
    pub quant_table: u8,
}

/// A Huffman table as stored: code counts per length (1 to 16) and symbols.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HuffmanSpec {
    pub counts: [u8; 16],
    pub symbols: Vec<u8>,
}

/// One component of the first scan, with its table selectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanComponent {
    /// Index into [`Headers::components`].
    pub frame_index: usize,
    pub dc_table: u8,
    pub ac_table: u8,
}

/// Everything read before the first scan's entropy-coded data.
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    pub width: u16,
    pub height: u16,
    pub components: Vec<Component>,
    /// Quantization tables in zigzag order, by table id.
    pub quant: [Option<[u16; 64]>; 4],
    pub dc_tables: [Option<HuffmanSpec>; 4],
    pub ac_tables: [Option<HuffmanSpec>; 4],
    /// MCUs between restart markers, 0 for none.
    pub restart_interval: u16,
    pub scan: Vec<ScanComponent>,
    /// The EXIF payload of APP1 (after `Exif\0\0`), if any.
    pub exif: Option<&'a [u8]>,
    /// Offset of the first byte of entropy-coded data.
    pub data_start: usize,
}

/// A cursor over big-endian segment fields that never reads past its slice.
struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
    fn u8(&mut self) -> Result<u8, Fallback> {
        let value = *self
            .bytes
            .get(self.at)
            .ok_or(Fallback::Corrupt("short segment"))?;
        self.at += 1;
        Ok(value)
    }

    fn u16(&mut self) -> Result<u16, Fallback> {
        Ok(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Fallback> {
        let slice = self
            .bytes
            .get(self.at..self.at + n)
            .ok_or(Fallback::Corrupt("short segment"))?;
        self.at += n;
        Ok(slice)
    }

    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }
}

/// Reads the segments from SOI up to the first SOS.
pub fn read(bytes: &[u8]) -> Result<Headers<'_>, Fallback> {
    if bytes.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err(Fallback::Corrupt("no SOI"));
    }
    let mut headers = Headers {
        width: 0,
        height: 0,
        components: Vec::new(),
        quant: [None; 4],
        dc_tables: Default::default(),
        ac_tables: Default::default(),
        restart_interval: 0,
        scan: Vec::new(),
        exif: None,
        data_start: 0,
    };
    let mut adobe_transform = None;
    for segment in jpeg_markers::segments(bytes, Walk::Strict) {
        let Segment {
            marker, body, end, ..
        } = segment.map_err(|e| Fallback::Corrupt(e.text()))?;
        let mut fields = Fields { bytes: body, at: 0 };
        match marker {
            0xC0 | 0xC1 => read_frame(&mut fields, &mut headers)?,
            0xC2..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                return Err(Fallback::Unsupported("not a sequential Huffman JPEG"))
            }
            0xC4 => read_huffman(&mut fields, &mut headers)?,
            0xCC => return Err(Fallback::Unsupported("arithmetic coding")),
            0xDB => read_quant(&mut fields, &mut headers)?,
            0xDD => headers.restart_interval = fields.u16()?,
            0xDC => return Err(Fallback::Unsupported("DNL")),
            0xE1 if body.starts_with(b"Exif\0\0") && headers.exif.is_none() => {
                headers.exif = Some(&body[6..]);
            }
            0xEE if body.starts_with(b"Adobe") && body.len() >= 12 => {
                adobe_transform = Some(body[11]);
            }
            0xDA => {
                read_scan(&mut fields, &mut headers)?;
                headers.data_start = end;
                check_colour(&headers, adobe_transform)?;
                return Ok(headers);
            }
            _ => {}
        }
    }
    // A strict walk ends with an error or after the first scan.
    Err(Fallback::Corrupt("ends before a scan"))
}

fn read_frame(fields: &mut Fields, headers: &mut Headers) -> Result<(), Fallback> {
    if !headers.components.is_empty() {
        return Err(Fallback::Corrupt("two frame headers"));
    }
    if fields.u8()? != 8 {
        return Err(Fallback::Unsupported("sample precision other than 8 bits"));
    }
    headers.height = fields.u16()?;
    headers.width = fields.u16()?;
    if headers.width == 0 || headers.height == 0 {
        return Err(Fallback::Unsupported("zero or deferred (DNL) dimensions"));
    }
    let count = fields.u8()?;
    if !matches!(count, 1 | 3) {
        return Err(Fallback::Unsupported("neither 1 nor 3 components"));
    }
    for _ in 0..count {
        let id = fields.u8()?;
        let sampling = fields.u8()?;
        let quant_table = fields.u8()?;
        let (h, v) = (sampling >> 4, sampling & 0x0F);
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) || quant_table > 3 {
            return Err(Fallback::Corrupt("bad component in frame header"));
        }
        if headers.components.iter().any(|c| c.id == id) {
            return Err(Fallback::Corrupt("repeated component id"));
        }
        headers.components.push(Component {
            id,
            h,
            v,
            quant_table,
        });
    }
    Ok(())
}

fn read_huffman(fields: &mut Fields, headers: &mut Headers) -> Result<(), Fallback> {
    while !fields.done() {
        let class_and_id = fields.u8()?;
        let (class, id) = (class_and_id >> 4, usize::from(class_and_id & 0x0F));
        if class > 1 || id > 3 {
            return Err(Fallback::Corrupt("bad Huffman table class or id"));
        }
        let mut counts = [0u8; 16];
        counts.copy_from_slice(fields.take(16)?);
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        if total > 256 {
            return Err(Fallback::Corrupt("more than 256 Huffman codes"));
        }
        let symbols = fields.take(total)?.to_vec();
        let spec = Some(HuffmanSpec { counts, symbols });
        if class == 0 {
            headers.dc_tables[id] = spec;
        } else {
            headers.ac_tables[id] = spec;
        }
    }
    Ok(())
}

fn read_quant(fields: &mut Fields, headers: &mut Headers) -> Result<(), Fallback> {
    while !fields.done() {
        let precision_and_id = fields.u8()?;
        let (precision, id) = (precision_and_id >> 4, usize::from(precision_and_id & 0x0F));
        if precision > 1 || id > 3 {
            return Err(Fallback::Corrupt("bad quantization table"));
        }
        let mut table = [0u16; 64];
        for value in &mut table {
            *value = if precision == 0 {
                u16::from(fields.u8()?)
            } else {
                fields.u16()?
            };
        }
        headers.quant[id] = Some(table);
    }
    Ok(())
}

fn read_scan(fields: &mut Fields, headers: &mut Headers) -> Result<(), Fallback> {
    if headers.components.is_empty() {
        return Err(Fallback::Corrupt("scan before the frame header"));
    }
    let count = usize::from(fields.u8()?);
    for _ in 0..count {
        let id = fields.u8()?;
        let tables = fields.u8()?;
        let frame_index = headers
            .components
            .iter()
            .position(|c| c.id == id)
            .ok_or(Fallback::Corrupt("scan names an unknown component"))?;
        if headers.scan.iter().any(|s| s.frame_index == frame_index) {
            return Err(Fallback::Corrupt("scan repeats a component"));
        }
        let (dc_table, ac_table) = (tables >> 4, tables & 0x0F);
        if dc_table > 3 || ac_table > 3 {
            return Err(Fallback::Corrupt("bad Huffman table selector"));
        }
        headers.scan.push(ScanComponent {
            frame_index,
            dc_table,
            ac_table,
        });
    }
    // One interleaved scan of every component, or components in scans of
    // their own with luma first: either way the first scan has all of luma.
    let luma_alone = headers.scan.len() == 1 && headers.scan[0].frame_index == 0;
    if headers.scan.len() != headers.components.len() && !luma_alone {
        return Err(Fallback::Unsupported("the first scan has no luma"));
    }
    let (start, end, approximation) = (fields.u8()?, fields.u8()?, fields.u8()?);
    if (start, end, approximation) != (0, 63, 0) {
        return Err(Fallback::Corrupt(
            "sequential scan with a spectral selection",
        ));
    }
    let luma = &headers.components[0];
    let (h_max, v_max) = max_sampling(&headers.components);
    if luma.h != h_max || luma.v != v_max {
        return Err(Fallback::Unsupported(
            "luma is not the most sampled component",
        ));
    }
    Ok(())
}

/// Three components are YCbCr unless an Adobe marker says RGB or the
/// component ids spell it (as jpeg-decoder decides); only YCbCr and grey
/// carry luma in their first component.
fn check_colour(headers: &Headers, adobe_transform: Option<u8>) -> Result<(), Fallback> {
    if headers.components.len() == 3 {
        let ids: Vec<u8> = headers.components.iter().map(|c| c.id).collect();
        if adobe_transform == Some(0) || ids == b"RGB" {
            return Err(Fallback::Unsupported("RGB JPEG"));
        }
    }
    Ok(())
}

/// The largest horizontal and vertical sampling factors.
pub fn max_sampling(components: &[Component]) -> (u8, u8) {
    let h = components.iter().map(|c| c.h).max().unwrap_or(1);
    let v = components.iter().map(|c| c.v).max().unwrap_or(1);
    (h, v)
}
