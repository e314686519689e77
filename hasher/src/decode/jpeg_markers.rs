//! The JPEG marker walk, once: the marker segments from SOI up to the first
//! scan (SOS), for both readers of JPEG headers.
//!
//! Two readers need the segments, and they differ only in how much damage
//! they accept, which is [`Walk`]:
//!
//! - [`Walk::AsJpegDecoder`]: the frame header that sizes `jpeg-decoder`'s
//!   buffers before it allocates them (`jpeg.rs`) must be found where
//!   `jpeg-decoder` finds it, so this walk is as lenient as that decoder:
//!   bytes between segments are skipped, stray SOI and stuffed zeros are
//!   ignored, a length below 2 is stepped over, and EOI or the end of the
//!   data ends the walk quietly.
//! - [`Walk::Strict`]: the luma fast path (`dct_luma`) guesses about
//!   nothing: whatever is not a well-formed segment is a [`WalkError`], and
//!   the general decoder, whose handling of damaged files is the reference,
//!   takes the file.
//!
//! Both walks start after the two SOI bytes, skip fill bytes (`0xFF`) before
//! a marker and the markers without a length (TEM, RSTn), and end after
//! yielding the first SOS segment: entropy-coded data follows it.

/// How much damage the walk accepts (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// As `jpeg-decoder` reads: skip what is not a segment; never an error.
    AsJpegDecoder,
    /// Only well-formed segments; anything else is a [`WalkError`].
    Strict,
}

/// Why a [`Walk::Strict`] walk stopped.
/// (Internal to the decoders, which turn it into their own errors.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkError {
    ExpectedMarker,
    EndsBeforeScan,
    UnexpectedMarker,
    EndsInLength,
    LengthBelowTwo,
    RunsPastEnd,
}

impl WalkError {
    /// What went wrong, in words.
    pub fn text(self) -> &'static str {
        match self {
            WalkError::ExpectedMarker => "expected a marker",
            WalkError::EndsBeforeScan => "ends before a scan",
            WalkError::UnexpectedMarker => "unexpected marker before the scan",
            WalkError::EndsInLength => "ends in a segment length",
            WalkError::LengthBelowTwo => "segment length below 2",
            WalkError::RunsPastEnd => "segment runs past the end",
        }
    }
}

/// One marker segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    /// The marker's second byte (`0xC0` for SOF0, `0xDA` for SOS, ...).
    pub marker: u8,
    /// Offset of the segment's first byte after its length field.
    pub start: usize,
    /// The segment's bytes after the length field: exactly the declared
    /// length in a strict walk; cut at the end of the data in a lenient one.
    pub body: &'a [u8],
    /// Offset just after the segment (of entropy-coded data, after SOS).
    pub end: usize,
}

/// The segments of `bytes` (a JPEG, SOI first) up to and including the
/// first SOS. A strict walk yields at most one error, then ends.
pub fn segments(bytes: &[u8], walk: Walk) -> Segments<'_> {
    Segments {
        bytes,
        at: 2,
        walk,
        done: false,
    }
}

/// The iterator [`segments`] returns.
pub struct Segments<'a> {
    bytes: &'a [u8],
    at: usize,
    walk: Walk,
    done: bool,
}

impl<'a> Segments<'a> {
    /// Ends the walk: quietly when lenient, with `error` when strict.
    fn stop(&mut self, error: WalkError) -> Option<Result<Segment<'a>, WalkError>> {
        self.done = true;
        match self.walk {
            Walk::AsJpegDecoder => None,
            Walk::Strict => Some(Err(error)),
        }
    }

    fn next_segment(&mut self) -> Option<Result<Segment<'a>, WalkError>> {
        let bytes = self.bytes;
        let lenient = self.walk == Walk::AsJpegDecoder;
        let marker = loop {
            if bytes.get(self.at) != Some(&0xFF) {
                if !lenient {
                    return self.stop(WalkError::ExpectedMarker);
                }
                // Bytes between segments are skipped, as jpeg-decoder does.
                match bytes.get(self.at..)?.iter().position(|&b| b == 0xFF) {
                    Some(skip) => self.at += skip,
                    None => return self.stop(WalkError::EndsBeforeScan),
                }
            }
            while bytes.get(self.at) == Some(&0xFF) {
                self.at += 1;
            }
            let Some(&marker) = bytes.get(self.at) else {
                return self.stop(WalkError::EndsBeforeScan);
            };
            self.at += 1;
            match marker {
                // TEM and RSTn: no length.
                0x01 | 0xD0..=0xD7 => continue,
                // A stuffed zero or a second SOI: jpeg-decoder reads on.
                0x00 | 0xD8 if lenient => continue,
                0x00 | 0xD8 => return self.stop(WalkError::UnexpectedMarker),
                // EOI before any scan.
                0xD9 => return self.stop(WalkError::UnexpectedMarker),
                _ => break marker,
            }
        };
        let Some(field) = bytes.get(self.at..self.at + 2) else {
            return self.stop(WalkError::EndsInLength);
        };
        let length = usize::from(u16::from_be_bytes([field[0], field[1]]));
        let start = self.at + 2;
        let end = if lenient {
            self.at + length.max(2)
        } else if length < 2 {
            return self.stop(WalkError::LengthBelowTwo);
        } else {
            self.at + length
        };
        let body = match bytes.get(start..end) {
            Some(body) => body,
            None if lenient => bytes.get(start.min(bytes.len())..).unwrap_or_default(),
            None => return self.stop(WalkError::RunsPastEnd),
        };
        self.at = end;
        if marker == 0xDA {
            self.done = true;
        }
        Some(Ok(Segment {
            marker,
            start,
            body,
            end,
        }))
    }
}

impl<'a> Iterator for Segments<'a> {
    type Item = Result<Segment<'a>, WalkError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.next_segment()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn markers(bytes: &[u8], walk: Walk) -> Vec<Result<u8, WalkError>> {
        segments(bytes, walk).map(|s| s.map(|s| s.marker)).collect()
    }

    /// SOI, APP0 (length 4), fill bytes, DQT (length 2), SOS (length 3), data.
    const WELL_FORMED: &[u8] = &[
        0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 1, 2, 0xFF, 0xFF, 0xDB, 0, 2, 0xFF, 0xDA, 0, 3, 9, 0x55,
    ];

    #[test]
    fn both_walks_agree_on_a_well_formed_file() {
        for walk in [Walk::AsJpegDecoder, Walk::Strict] {
            assert_eq!(markers(WELL_FORMED, walk), [Ok(0xE0), Ok(0xDB), Ok(0xDA)]);
            let sos = segments(WELL_FORMED, walk).last().unwrap().unwrap();
            assert_eq!((sos.start, sos.body, sos.end), (17, &[9u8][..], 18));
        }
    }

    #[test]
    fn the_lenient_walk_skips_what_the_strict_one_refuses() {
        // Junk between segments.
        let junk = [&[0xFF, 0xD8, 0x12, 0x34][..], &WELL_FORMED[2..]].concat();
        assert_eq!(
            markers(&junk, Walk::AsJpegDecoder),
            [Ok(0xE0), Ok(0xDB), Ok(0xDA)]
        );
        assert_eq!(
            markers(&junk, Walk::Strict),
            [Err(WalkError::ExpectedMarker)]
        );
        // A second SOI and a stuffed zero.
        let stray = [&[0xFF, 0xD8, 0xFF, 0xD8, 0xFF, 0x00][..], &WELL_FORMED[2..]].concat();
        assert_eq!(markers(&stray, Walk::AsJpegDecoder).len(), 3);
        assert_eq!(
            markers(&stray, Walk::Strict),
            [Err(WalkError::UnexpectedMarker)]
        );
        // A length below 2 is stepped over.
        let short = [0xFF, 0xD8, 0xFF, 0xE0, 0, 1, 0xFF, 0xDA, 0, 2];
        assert_eq!(markers(&short, Walk::AsJpegDecoder), [Ok(0xE0), Ok(0xDA)]);
        assert_eq!(
            markers(&short, Walk::Strict),
            [Err(WalkError::LengthBelowTwo)]
        );
    }

    #[test]
    fn endings() {
        let cases: [(&[u8], WalkError); 4] = [
            (&[0xFF, 0xD8, 0xFF, 0xD9], WalkError::UnexpectedMarker),
            (&[0xFF, 0xD8, 0xFF, 0xFF], WalkError::EndsBeforeScan),
            (&[0xFF, 0xD8, 0xFF, 0xE0, 0], WalkError::EndsInLength),
            (&[0xFF, 0xD8, 0xFF, 0xE0, 0, 9, 1], WalkError::RunsPastEnd),
        ];
        for (bytes, error) in cases {
            assert_eq!(markers(bytes, Walk::Strict), [Err(error)]);
            let lenient = markers(bytes, Walk::AsJpegDecoder);
            assert!(lenient.iter().all(Result::is_ok), "{lenient:?}");
        }
        // A lenient segment running past the end is cut there.
        let cut = segments(&[0xFF, 0xD8, 0xFF, 0xC0, 0, 9, 1], Walk::AsJpegDecoder)
            .next()
            .unwrap()
            .unwrap();
        assert_eq!((cut.start, cut.body), (6, &[1u8][..]));
    }
}
