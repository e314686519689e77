//! Decode + hash of arbitrary bytes, with the options the edge uses
//! (`Limits::edge()`, reduced-scale decoding, the 8 dihedral hashes).
//!
//! Anything an origin or an uploader sends reaches this path, so it must
//! give a typed error or a hash: no panic, no hang, no allocation beyond
//! the limits (`scripts/fuzz.sh` runs it with `-malloc_limit_mb` and
//! `-timeout`).

#![no_main]

use hashgate::{hash_image, DecodeOptions, HashOptions, Limits, Reduction};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::edge();
    let options = HashOptions {
        decode: DecodeOptions {
            limits,
            reduction: Reduction::DEFAULT,
            apply_exif: false,
        },
        dihedral: true,
        ..HashOptions::default()
    };
    if let Ok(hashes) = hash_image(data, &options) {
        // A hash is only given for an image the limits admit.
        assert!(hashes.width >= 1 && hashes.width <= limits.max_width);
        assert!(hashes.height >= 1 && hashes.height <= limits.max_height);
        assert!(hashes.quality <= 100);
        let dihedral = hashes.dihedral.expect("dihedral was asked for");
        assert_eq!(dihedral[0], hashes.pdq, "the first dihedral hash is the image's own");
    }
});
