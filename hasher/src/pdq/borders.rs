//! Finding added borders: uniform bands along the edges of an image.
//!
//! A border (any colour, any width, any side; letterboxing; padding) moves
//! and shrinks the picture inside PDQ's fixed 64x64 grid, which defeats the
//! hash entirely (a 5% white border: median distance 94 with the reference).
//! Hashing the content inside the borders as well recovers the original's
//! hash. A band counts as border only while every row (or column) in it is
//! nearly flat and close to the edge's level, and the content left must keep
//! most of the image: a photo of a white wall has texture, and is not cut.

use super::LumaImage;

/// A region of a luma image, in its samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

/// How flat a line must be to be border: standard deviation in luma levels.
const MAX_LINE_SPREAD: f32 = 6.0;
/// How far a line's mean may sit from the edge's level.
const MAX_LEVEL_SHIFT: f32 = 10.0;
/// The content must keep at least this share of each side.
const MIN_CONTENT_SHARE: f32 = 0.4;

fn line_stats(values: impl Iterator<Item = f32>) -> (f32, f32) {
    let (mut n, mut sum, mut sum_sq) = (0f32, 0f32, 0f32);
    for v in values {
        n += 1.0;
        sum += v;
        sum_sq += v * v;
    }
    let mean = sum / n;
    (mean, (sum_sq / n - mean * mean).max(0.0).sqrt())
}

/// How many lines from one edge are border, given each line's statistics
/// from the edge inward.
fn border_depth(lines: usize, stats: impl Fn(usize) -> (f32, f32)) -> usize {
    let (edge_level, edge_spread) = stats(0);
    if edge_spread > MAX_LINE_SPREAD {
        return 0;
    }
    (0..lines)
        .take_while(|&i| {
            let (mean, spread) = stats(i);
            spread <= MAX_LINE_SPREAD && (mean - edge_level).abs() <= MAX_LEVEL_SHIFT
        })
        .count()
}

/// Candidate content regions, best first: inside every uniform band found
/// (cutting one more line for the blend at the edge, and not), and, where
/// that differs, inside bands of equal width on all sides (in
/// pixels, and as a share of each side). The last two handle pictures whose
/// own edges are flat and of the border's level (a dark sky in a black
/// frame), where the first cuts into the picture.
pub fn content_rects(image: &LumaImage) -> Vec<Rect> {
    let Some([top, bottom, left, right]) = border_depths(image) else {
        return Vec::new();
    };
    let (w, h) = (image.width, image.height);
    let least_px = top.min(bottom).min(left).min(right);
    let least_share = (top.min(bottom) as f32 / h as f32).min(left.min(right) as f32 / w as f32);
    let candidates = [
        ([top, bottom, left, right], 1),
        // A sharp edge: the first line inside is already picture.
        ([top, bottom, left, right], 0),
        ([least_px; 4], 1),
        {
            let (v, hz) = (
                (least_share * h as f32) as usize,
                (least_share * w as f32) as usize,
            );
            ([v, v, hz, hz], 1)
        },
    ];
    let mut rects: Vec<Rect> = Vec::new();
    for (depths, blend) in candidates {
        if let Some(rect) = rect_inside(w, h, depths, blend) {
            if !rects.contains(&rect) {
                rects.push(rect);
            }
        }
    }
    rects
}

/// Depth of the uniform band on each side (top, bottom, left, right), or
/// `None` when there is none.
fn border_depths(image: &LumaImage) -> Option<[usize; 4]> {
    let (w, h) = (image.width, image.height);
    if w < 8 || h < 8 {
        return None;
    }
    let px = |x: usize, y: usize| image.pixels[y * w + x];
    let row = |y: usize| line_stats((0..w).map(move |x| px(x, y)));
    let col = |x: usize| line_stats((0..h).map(move |y| px(x, y)));
    let top = border_depth(h, row);
    if top == h {
        return None; // flat all over: nothing to find
    }
    let bottom = border_depth(h - top, |i| row(h - 1 - i));
    let left = border_depth(w, col);
    let right = border_depth(w - left, |i| col(w - 1 - i));
    (top + bottom + left + right > 0).then_some([top, bottom, left, right])
}

/// The region inside bands of the given depths, if it keeps enough.
fn rect_inside(
    w: usize,
    h: usize,
    [top, bottom, left, right]: [usize; 4],
    blend: usize,
) -> Option<Rect> {
    // The line where border meets picture is often a blend of both (JPEG
    // ringing, scaled decoding): `blend` more lines are cut where there is
    // a border.
    let extra = |depth: usize| if depth > 0 { depth + blend } else { 0 };
    let (top, bottom, left, right) = (extra(top), extra(bottom), extra(left), extra(right));
    let width = w.checked_sub(left + right)?;
    let height = h.checked_sub(top + bottom)?;
    let keeps_enough = |kept: usize, all: usize| kept as f32 >= MIN_CONTENT_SHARE * all as f32;
    (keeps_enough(width, w) && keeps_enough(height, h) && (width, height) != (w, h)).then_some(
        Rect {
            x: left,
            y: top,
            width,
            height,
        },
    )
}

impl LumaImage {
    /// The pixels inside `rect`.
    pub fn crop(&self, rect: Rect) -> LumaImage {
        let mut pixels = Vec::with_capacity(rect.width * rect.height);
        for y in rect.y..rect.y + rect.height {
            let start = y * self.width + rect.x;
            pixels.extend_from_slice(&self.pixels[start..start + rect.width]);
        }
        LumaImage {
            width: rect.width,
            height: rect.height,
            pixels,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first content rectangle, or `None` when there is no border (or
    /// cutting it would leave too little).
    fn content_rect(image: &LumaImage) -> Option<Rect> {
        content_rects(image).into_iter().next()
    }

    fn textured(width: usize, height: usize) -> LumaImage {
        let pixels = (0..width * height)
            .map(|i| {
                let (x, y) = ((i % width) as f32, (i / width) as f32);
                128.0 + 50.0 * (x / 7.0).sin() + 40.0 * (y / 5.0).cos()
            })
            .collect();
        LumaImage {
            width,
            height,
            pixels,
        }
    }

    fn framed(
        inner: &LumaImage,
        left: usize,
        top: usize,
        right: usize,
        bottom: usize,
        level: f32,
    ) -> LumaImage {
        let (w, h) = (inner.width + left + right, inner.height + top + bottom);
        let mut pixels = vec![level; w * h];
        for y in 0..inner.height {
            for x in 0..inner.width {
                pixels[(y + top) * w + x + left] = inner.pixels[y * inner.width + x];
            }
        }
        LumaImage {
            width: w,
            height: h,
            pixels,
        }
    }

    #[test]
    fn finds_borders_of_any_level_and_side() {
        let inner = textured(200, 150);
        for (l, t, r, b, level) in [
            (10, 10, 10, 10, 255.0),
            (0, 30, 0, 30, 0.0),
            (25, 0, 0, 0, 90.0),
        ] {
            let rect = content_rect(&framed(&inner, l, t, r, b, level)).expect("border found");
            // Everything inside is content; at most one extra line is cut.
            assert!(rect.x >= l && rect.x <= l + 1, "{rect:?}");
            assert!(rect.y >= t && rect.y <= t + 1, "{rect:?}");
            assert!(
                rect.width + 2 >= inner.width && rect.height + 2 >= inner.height,
                "{rect:?}"
            );
        }
    }

    #[test]
    fn leaves_images_without_borders_alone() {
        assert_eq!(content_rect(&textured(200, 150)), None);
        // Flat everywhere (a wall): nothing to trim.
        let flat = LumaImage {
            width: 100,
            height: 100,
            pixels: vec![240.0; 10_000],
        };
        assert_eq!(content_rect(&flat), None);
    }

    #[test]
    fn refuses_to_cut_most_of_the_image() {
        let inner = textured(20, 20);
        assert_eq!(
            content_rect(&framed(&inner, 100, 100, 100, 100, 255.0)),
            None
        );
    }
}
