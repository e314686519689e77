//! Index value decoding: the three record kinds read back from KV (PDQ
//! bucket, vec72 table, exact/allow record), from the binary form and from
//! base64 text.
//!
//! KV values are written by `hashgate index build`, but a worker must not
//! trust storage it does not control to be well-formed: a corrupt value is
//! a `RecordError` (the route's fail mode then applies), never a panic.
//! Whatever decodes must also survive re-encoding unchanged.

#![no_main]

use hashgate::index::record::{self, TableRow, TableView};
use hashgate::index::Membership;
use libfuzzer_sys::fuzz_target;

/// Which table a view is: PDQ bucket or vec72.
#[derive(Clone, Copy)]
enum Kind {
    Bucket,
    Vec72,
}

fn check_table(view: &TableView<'_>, kind: Kind) {
    let rows: Vec<&[u8]> = view.rows().collect();
    assert_eq!(rows.len(), view.len());
    let memberships: Vec<Vec<Membership>> = (0..view.len())
        .map(|i| {
            view.memberships(i)
                .into_iter()
                .map(|(list, id)| Membership {
                    list: list.to_owned(),
                    id: id.map(str::to_owned),
                })
                .collect()
        })
        .collect();
    // Out of range: empty, not a panic.
    assert!(view.memberships(view.len()).is_empty());

    let table: Vec<TableRow<'_>> = rows
        .iter()
        .zip(&memberships)
        .map(|(row, memberships)| TableRow { row, memberships })
        .collect();
    let text = match kind {
        Kind::Bucket => record::encode_bucket(&table),
        Kind::Vec72 => record::encode_vec72_table(&table),
    };
    let bytes = record::decode_text(text.as_bytes()).expect("own encoding is base64");
    let again = match kind {
        Kind::Bucket => TableView::bucket(&bytes),
        Kind::Vec72 => TableView::vec72(&bytes),
    }
    .expect("own encoding decodes");
    assert_eq!(again.rows().collect::<Vec<_>>(), rows);
    for (i, expected) in memberships.iter().enumerate() {
        let got: Vec<Membership> = again
            .memberships(i)
            .into_iter()
            .map(|(list, id)| Membership {
                list: list.to_owned(),
                id: id.map(str::to_owned),
            })
            .collect();
        assert_eq!(&got, expected);
    }
}

fn check(bytes: &[u8]) {
    if let Ok(view) = TableView::bucket(bytes) {
        check_table(&view, Kind::Bucket);
        for row in view.rows() {
            for chunk in [0, 7, 15] {
                let hash = record::hash_from_bucket_row(row, chunk, 0xabcd);
                assert_eq!(record::bucket_row(&hash, chunk), row);
            }
        }
    }
    if let Ok(view) = TableView::vec72(bytes) {
        check_table(&view, Kind::Vec72);
    }
    if let Ok(exact) = record::decode_exact(bytes) {
        let text = record::encode_exact(&exact);
        let again = record::decode_exact(&record::decode_text(text.as_bytes()).expect("base64")).expect("own encoding decodes");
        assert_eq!(again, exact);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Ok(bytes) = record::decode_text(data) {
        check(&bytes);
    }
});
