//! Decode + hash of arbitrary bytes with every query-side variant
//! (`VariantOptions::ALL`: pixel rotations and mirrors, border trimming)
//! and the EXIF orientation applied: the paths `hash_image` alone does not
//! reach (cropping to content rectangles, rotating odd-sized luma).

#![no_main]

use hashgate::variants::VariantOptions;
use hashgate::{hash_image, DecodeOptions, HashOptions, Limits, Reduction};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let options = HashOptions {
        decode: DecodeOptions {
            limits: Limits::edge(),
            reduction: Reduction::DEFAULT,
            apply_exif: true,
        },
        dihedral: true,
        variants: VariantOptions::ALL,
    };
    if let Ok(hashes) = hash_image(data, &options) {
        let query = hashes.query_pdq();
        assert_eq!(query[0].1, hashes.pdq, "the image's own hash comes first");
        for (i, (_, hash)) in query.iter().enumerate() {
            assert!(!query[..i].iter().any(|(_, h)| h == hash), "duplicate query hash");
        }
        for variant in &hashes.variants {
            assert!(variant.quality <= 100);
        }
    }
});
