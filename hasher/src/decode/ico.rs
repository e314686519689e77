//! ICO: the images in an icon's directory.
//!
//! An icon holds several images (sizes, depths), each a PNG or a BMP
//! bitmap without its file header; which one a viewer shows depends on the
//! size it draws at, so each is an image to hash (largest first). The
//! `image` crate's decoder picks only the largest and refuses PNGs not in
//! RGBA, which browsers show all the same, so the directory is read here:
//! a PNG entry is handed on as the PNG it is, a bitmap entry as an icon of
//! that one entry (which the `image` crate decodes).
//!
//! Bounds: the directory is read from the bytes given (no allocation
//! beyond the entries' own bytes), entries that point outside the file are
//! refused, and at most [`super::svg::MAX_EMBEDDED`] are returned.

use crate::error::HashError;

/// One image of an icon, ready to hash on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcoEntry {
    /// Width and height from the directory (0 means 256).
    pub size: (u32, u32),
    /// A PNG, or an icon holding only this bitmap.
    pub image: Vec<u8>,
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Whether `bytes` is an icon of one bitmap entry (what [`entries`] makes
/// of a bitmap, and what the `image` crate decodes directly).
pub fn is_single_bitmap(bytes: &[u8]) -> bool {
    matches!(read_directory(bytes), Ok(dir) if dir.len() == 1 && !dir[0].2.starts_with(PNG_SIGNATURE))
}

/// The icon's images, largest first, at most `max`.
pub fn entries(bytes: &[u8], max: usize) -> Result<Vec<IcoEntry>, HashError> {
    let mut dir = read_directory(bytes)?;
    dir.sort_by_key(|(size, _, _)| std::cmp::Reverse(u64::from(size.0) * u64::from(size.1)));
    Ok(dir
        .into_iter()
        .take(max)
        .map(|(size, entry, payload)| {
            let image = if payload.starts_with(PNG_SIGNATURE) {
                payload.to_vec()
            } else {
                // An icon of this one entry, its offset pointing just past
                // the directory.
                let mut one = vec![0, 0, 1, 0, 1, 0];
                one.extend_from_slice(&entry[..12]);
                one.extend_from_slice(&22u32.to_le_bytes());
                one.extend_from_slice(payload);
                one
            };
            IcoEntry { size, image }
        })
        .collect())
}

/// (size, the 16-byte directory entry, the entry's bytes) per entry.
type Entry<'a> = ((u32, u32), &'a [u8], &'a [u8]);

fn read_directory(bytes: &[u8]) -> Result<Vec<Entry<'_>>, HashError> {
    let truncated = || HashError::Truncated("icon directory ends early".into());
    let header = bytes.get(..6).ok_or_else(truncated)?;
    let count = usize::from(u16::from_le_bytes([header[4], header[5]]));
    let mut out = Vec::with_capacity(count.min(64));
    for n in 0..count {
        let entry = bytes
            .get(6 + 16 * n..6 + 16 * (n + 1))
            .ok_or_else(truncated)?;
        let side = |b: u8| if b == 0 { 256 } else { u32::from(b) };
        let size = (side(entry[0]), side(entry[1]));
        let len = u32::from_le_bytes([entry[8], entry[9], entry[10], entry[11]]) as usize;
        let offset = u32::from_le_bytes([entry[12], entry[13], entry[14], entry[15]]) as usize;
        let payload = offset
            .checked_add(len)
            .and_then(|end| bytes.get(offset..end))
            .ok_or_else(|| HashError::Malformed(format!("icon entry {n} lies outside the file")))?;
        out.push((size, entry, payload));
    }
    if out.is_empty() {
        return Err(HashError::Malformed("icon with no images".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn icon(entries: &[(u8, &[u8])]) -> Vec<u8> {
        let mut out = vec![0, 0, 1, 0, entries.len() as u8, 0];
        let mut offset = 6 + 16 * entries.len();
        for (side, payload) in entries {
            out.extend_from_slice(&[*side, *side, 0, 0, 1, 0, 32, 0]);
            out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            out.extend_from_slice(&(offset as u32).to_le_bytes());
            offset += payload.len();
        }
        for (_, payload) in entries {
            out.extend_from_slice(payload);
        }
        out
    }

    #[test]
    fn entries_largest_first_pngs_as_they_are() {
        let png = b"\x89PNG\r\n\x1a\nrest";
        let bitmap = b"\x28\0\0\0bitmap";
        let bytes = icon(&[(16, bitmap), (0, png)]);
        let found = entries(&bytes, 8).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].size, (256, 256));
        assert_eq!(found[0].image, png);
        assert!(is_single_bitmap(&found[1].image));
        assert_eq!(&found[1].image[22..], bitmap);
        assert_eq!(entries(&bytes, 1).unwrap().len(), 1);
    }

    #[test]
    fn refuses_entries_outside_the_file() {
        let mut bytes = icon(&[(16, b"abc")]);
        bytes[14..18].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(entries(&bytes, 8).is_err());
        assert!(entries(&bytes[..10], 8).is_err());
    }
}
