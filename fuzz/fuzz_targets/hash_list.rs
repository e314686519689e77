//! Hash-list and allowlist parsing, then a build of the parsed entries and
//! a lookup of each listed PDQ hash in the built records.
//!
//! List files come from outside (NCMEC, IWF exports, operators' own lists).
//! Besides "no panic", two properties are checked: records the builder
//! writes always decode, and a listed PDQ hash that is not allowlisted is
//! found at distance 0 (an index that silently loses an entry would let
//! listed content through).

#![no_main]

use hashgate::index::{
    parse_allowlist, parse_hash_list, AllowScope, IndexBuilder, ListFilter, Query, QueryPlan, TypedHash,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = text.lines().count();

    let list = parse_hash_list(&text);
    let allow = parse_allowlist(&text);
    for error in list.errors.iter().chain(&allow.errors) {
        assert!(error.line >= 1 && error.line <= lines, "line number out of range");
        let _ = error.to_string();
    }
    assert!(list.entries.windows(2).all(|w| w[0].line < w[1].line));

    // Lists and allowlists are separate files; here the same text feeds the
    // list and (every other line) the allowlist, so allowances apply to
    // some entries and not to others.
    let allowed: Vec<_> = allow.entries.into_iter().filter(|e| e.line % 2 == 0).collect();
    let pdq: Vec<_> = list
        .entries
        .iter()
        .filter_map(|e| match e.hash {
            TypedHash::Pdq(h) => Some(h),
            _ => None,
        })
        .take(8)
        .collect();
    let mut builder = IndexBuilder::new();
    if builder.add_list("fuzz", list.entries).is_err() {
        return;
    }
    // Allowed for list "fuzz" (or every list): must not match; else must.
    let suppressed: Vec<TypedHash> = allowed
        .iter()
        .filter(|e| matches!(&e.scope, AllowScope::AllLists) || e.scope == AllowScope::List("fuzz".into()))
        .map(|e| e.hash)
        .collect();
    builder.add_allowlist(allowed);
    let Ok(built) = builder.build() else { return };

    for hash in pdq {
        let query = Query {
            pdq: vec![hash],
            pdq_threshold: 0,
            lists: ListFilter::All,
            ..Query::default()
        };
        let plan = QueryPlan::new(&query).expect("threshold 0 is valid");
        let matches = plan
            .resolve(|key| built.records.get(key).map(|v| v.as_bytes()))
            .expect("records written by the builder decode");
        let found = matches.iter().any(|m| m.hash == TypedHash::Pdq(hash) && m.distance == 0);
        let allowed = suppressed.contains(&TypedHash::Pdq(hash));
        assert_eq!(found, !allowed, "listed hash {hash}: found {found}, allowlisted {allowed}");
    }
});
