//! Query hashes for what a viewer sees ([`crate::decode::view`]): an
//! image's alpha composited over white and black, the frames of an
//! animation, the images embedded in an SVG.
//!
//! Each is one more PDQ hash for the index look-up, so the set is kept
//! small: a view whose hash equals one already in the set is dropped; a
//! view of quality below [`MIN_VIEW_QUALITY`] is dropped (the reference's
//! advice for any hash: a blank or flat rendering, such as a mostly
//! transparent image over black, says nothing and matches at random); and
//! at most [`MAX_VIEW_HASHES`] are kept: the still image's views first,
//! then frames sampled evenly over the animation (first and last included).
//! The image's own hash is never affected: it stays the reference's.

use crate::decode::View;
use crate::hashes::PdqHash;
use crate::pdq;
use crate::variants::{Variant, VariantHash};

/// Most view hashes added to one image's query.
pub const MAX_VIEW_HASHES: usize = 8;

/// Views whose PDQ quality is below this are not queried (Meta's PDQ
/// README: discard hashes of quality <= 49).
pub const MIN_VIEW_QUALITY: u8 = 50;

/// Collects the distinct view hashes of one image.
#[derive(Debug, Clone)]
pub struct ViewHashes {
    /// Hashes already in the query set (the image's own).
    taken: Vec<PdqHash>,
    stills: Vec<VariantHash>,
    frames: Vec<VariantHash>,
}

impl ViewHashes {
    /// A set for an image whose own hash is `primary`.
    pub fn new(primary: PdqHash) -> Self {
        ViewHashes {
            taken: vec![primary],
            stills: Vec::new(),
            frames: Vec::new(),
        }
    }

    /// Hashes `view` and keeps it if it is new and of use.
    pub fn add(&mut self, view: View) {
        let full = view.full_scale();
        let rendering = view.rendering;
        let output = pdq::hash_luma_scaled(view.luma, Some(full));
        self.add_hash(VariantHash {
            variant: Variant::Rendering(rendering),
            pdq: output.hash,
            quality: output.quality,
        });
    }

    /// Keeps an already computed hash if it is new and of use (frames go
    /// to the sampled group, the rest are kept first).
    pub fn add_hash(&mut self, hash: VariantHash) {
        if hash.quality < MIN_VIEW_QUALITY || self.contains(&hash.pdq) {
            return;
        }
        let is_frame = matches!(
            hash.variant,
            Variant::Rendering(r) if r.frame.is_some()
        );
        if is_frame {
            self.frames.push(hash);
        } else {
            self.stills.push(hash);
        }
    }

    fn contains(&self, hash: &PdqHash) -> bool {
        self.taken.contains(hash)
            || self.stills.iter().any(|v| v.pdq == *hash)
            || self.frames.iter().any(|v| v.pdq == *hash)
    }

    /// The kept hashes: stills first, then frames sampled evenly, at most
    /// [`MAX_VIEW_HASHES`] in all.
    pub fn finish(self) -> Vec<VariantHash> {
        let mut out = self.stills;
        out.truncate(MAX_VIEW_HASHES);
        let room = MAX_VIEW_HASHES - out.len();
        out.extend(sample_evenly(self.frames, room));
        out
    }
}

/// At most `room` items of `items`, evenly spaced, first and last included.
fn sample_evenly<T>(items: Vec<T>, room: usize) -> Vec<T> {
    let n = items.len();
    if n <= room {
        return items;
    }
    if room == 0 {
        return Vec::new();
    }
    if room == 1 {
        return items.into_iter().take(1).collect();
    }
    let picks: Vec<usize> = (0..room).map(|i| i * (n - 1) / (room - 1)).collect();
    items
        .into_iter()
        .enumerate()
        .filter(|(i, _)| picks.contains(i))
        .map(|(_, item)| item)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Rendering;

    fn hash(byte: u8, frame: Option<u32>, quality: u8) -> VariantHash {
        let mut bytes = [0u8; 32];
        bytes[0] = byte;
        VariantHash {
            variant: Variant::Rendering(Rendering {
                frame,
                background: None,
            }),
            pdq: PdqHash(bytes),
            quality,
        }
    }

    #[test]
    fn drops_duplicates_and_flat_views() {
        let mut set = ViewHashes::new(hash(1, None, 100).pdq);
        set.add_hash(hash(1, Some(1), 100)); // the image's own hash
        set.add_hash(hash(2, Some(2), 100));
        set.add_hash(hash(2, Some(3), 100)); // same as frame 2
        set.add_hash(hash(3, Some(4), 10)); // flat
        let kept = set.finish();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].variant.to_string(), "frame-2");
    }

    #[test]
    fn caps_frames_sampling_evenly_after_stills() {
        let mut set = ViewHashes::new(hash(0, None, 100).pdq);
        set.add_hash(hash(200, None, 100));
        for n in 1..=50u8 {
            set.add_hash(hash(n, Some(u32::from(n)), 100));
        }
        let kept = set.finish();
        assert_eq!(kept.len(), MAX_VIEW_HASHES);
        assert_eq!(kept[0].pdq, hash(200, None, 100).pdq);
        let frames: Vec<String> = kept[1..].iter().map(|v| v.variant.to_string()).collect();
        assert_eq!(frames.first().map(String::as_str), Some("frame-1"));
        assert_eq!(frames.last().map(String::as_str), Some("frame-50"));
    }

    #[test]
    fn sampling() {
        assert_eq!(sample_evenly((0..10).collect(), 4), vec![0, 3, 6, 9]);
        assert_eq!(sample_evenly((0..3).collect(), 4), vec![0, 1, 2]);
    }
}
