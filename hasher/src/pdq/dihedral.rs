//! The 8 dihedral variants (rotations and mirrors) from one DCT.
//!
//! Mirroring the image along an axis multiplies the DCT basis function of
//! frequency `k` by `(-1)^k`; our coefficient index `i` holds frequency
//! `i + 1`, so even indices change sign. Rotations by 90 degrees are a
//! transpose plus a mirror. This is how ThreatExchange derives them
//! (`dct16OriginalToRotate90` and friends); the hashes are then thresholded
//! each at its own median. They are close to, but not always identical to,
//! hashing the transformed pixels.

use serde::{Deserialize, Serialize};

/// The eight orientations, in ThreatExchange's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dihedral {
    Orig,
    Rot90,
    Rot180,
    Rot270,
    FlipX,
    FlipY,
    /// Mirror across the main diagonal (transpose).
    FlipP,
    /// Mirror across the anti-diagonal.
    FlipM,
}

impl Dihedral {
    pub const ALL: [Dihedral; 8] = [
        Dihedral::Orig,
        Dihedral::Rot90,
        Dihedral::Rot180,
        Dihedral::Rot270,
        Dihedral::FlipX,
        Dihedral::FlipY,
        Dihedral::FlipP,
        Dihedral::FlipM,
    ];

    /// Name as printed in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Dihedral::Orig => "orig",
            Dihedral::Rot90 => "rot90",
            Dihedral::Rot180 => "rot180",
            Dihedral::Rot270 => "rot270",
            Dihedral::FlipX => "flipx",
            Dihedral::FlipY => "flipy",
            Dihedral::FlipP => "flipp",
            Dihedral::FlipM => "flipm",
        }
    }

    /// The DCT of the transformed image, derived from the original's.
    pub fn apply(self, a: &[[f32; 16]; 16]) -> [[f32; 16]; 16] {
        let even = |k: usize| k.is_multiple_of(2);
        let mut b = [[0f32; 16]; 16];
        for i in 0..16 {
            for j in 0..16 {
                let v = a[i][j];
                match self {
                    Dihedral::Orig => b[i][j] = v,
                    Dihedral::Rot90 => b[j][i] = if even(j) { -v } else { v },
                    Dihedral::Rot180 => b[i][j] = if even(i + j) { v } else { -v },
                    Dihedral::Rot270 => b[j][i] = if even(i) { -v } else { v },
                    Dihedral::FlipX => b[i][j] = if even(i) { -v } else { v },
                    Dihedral::FlipY => b[i][j] = if even(j) { -v } else { v },
                    Dihedral::FlipP => b[j][i] = v,
                    Dihedral::FlipM => b[j][i] = if even(i + j) { v } else { -v },
                }
            }
        }
        b
    }
}
