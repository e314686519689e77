//! The readers against the synthetic samples in `fixtures/lists/formats/`
//! (made by its `make_samples.py`) and against broken input.

use super::*;

const SAMPLES: &[(&str, &str)] = &[
    (
        "te-descriptors.csv",
        include_str!("../../../fixtures/lists/formats/te-descriptors.csv"),
    ),
    (
        "tx-dataset.csv",
        include_str!("../../../fixtures/lists/formats/tx-dataset.csv"),
    ),
    (
        "tx-signals.txt",
        include_str!("../../../fixtures/lists/formats/tx-signals.txt"),
    ),
    (
        "te-updates.json",
        include_str!("../../../fixtures/lists/formats/te-updates.json"),
    ),
    (
        "ncmec.xml",
        include_str!("../../../fixtures/lists/formats/ncmec.xml"),
    ),
    (
        "stopncii.json",
        include_str!("../../../fixtures/lists/formats/stopncii.json"),
    ),
    (
        "pdq-photo-hasher.csv",
        include_str!("../../../fixtures/lists/formats/pdq-photo-hasher.csv"),
    ),
];
const EXPECTED: &str = include_str!("../../../fixtures/lists/formats/expected.json");

fn adds(file: &ListFile) -> Vec<(String, Option<String>)> {
    file.changes
        .iter()
        .filter_map(|c| match c {
            Change::Add(e) => Some((e.hash.to_string(), e.id.clone())),
            Change::Delete { .. } => None,
        })
        .collect()
}

#[test]
fn every_sample_is_recognised_and_read_as_documented() {
    let expected: serde_json::Value = serde_json::from_str(EXPECTED).unwrap();
    for (name, text) in SAMPLES {
        let want = &expected[name];
        let file = read(text, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(file.format.name(), want["format"], "{name}");
        assert_eq!(file.errors, vec![], "{name}");
        let added = adds(&file);
        assert_eq!(
            added.len() as u64,
            want["entries"].as_u64().unwrap(),
            "{name}: {added:?}"
        );
        let id = want["id"].as_str().map(str::to_owned);
        assert!(
            added.contains(&(want["pdq"].as_str().unwrap().to_owned(), id)),
            "{name}: {added:?}"
        );
        if let Some(md5) = want["md5"].as_str() {
            assert!(added.iter().any(|(h, _)| h == md5), "{name}");
        }
        let skipped: BTreeMap<String, usize> =
            serde_json::from_value(want["skipped"].clone()).unwrap();
        assert_eq!(file.skipped, skipped, "{name}");
        // Naming the format gives the same reading.
        assert_eq!(read(text, Some(file.format)).unwrap(), file, "{name}");
    }
}

#[test]
fn deletions_are_read_and_applied_in_order() {
    let text = include_str!("../../../fixtures/lists/formats/te-updates.json");
    let file = read(text, None).unwrap();
    assert!(
        file.changes.contains(&Change::Delete {
            target: Target::Id("2004".into()),
            line: 35
        }),
        "{:?}",
        file.changes
    );
    let mut state = ListState::new();
    let summary = state.apply(file.changes);
    assert_eq!(summary.removed, 1);
    assert_eq!(summary.missed, 0);
    let ids: Vec<Option<String>> = state
        .clone()
        .into_entries()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, vec![Some("2001".into()), Some("2002".into())]);

    // The later fetch deletes 2002 and adds 2005.
    let feed = read(
        include_str!("../../../fixtures/lists/formats/te-updates-feed.jsonl"),
        None,
    )
    .unwrap();
    assert_eq!(feed.format, Format::TeUpdates);
    let summary = state.apply(feed.changes);
    assert_eq!((summary.added, summary.removed, summary.missed), (1, 1, 0));
    let ids: Vec<Option<String>> = state.into_entries().into_iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![Some("2001".into()), Some("2005".into())]);

    // NCMEC: a deleted entry removes every fingerprint of its id.
    let mut state = ListState::new();
    state.apply(
        read(
            include_str!("../../../fixtures/lists/formats/ncmec.xml"),
            None,
        )
        .unwrap()
        .changes,
    );
    let feed = read(
        include_str!("../../../fixtures/lists/formats/ncmec-feed.xml"),
        None,
    )
    .unwrap();
    let summary = state.apply(feed.changes);
    assert_eq!((summary.removed, summary.missed), (1, 0));
    assert!(state
        .into_entries()
        .iter()
        .all(|e| e.id.as_deref() != Some("img-3002")));

    // StopNCII: a withdrawn hash is a deletion by hash; a hash re-added after
    // it is back.
    let stop = read(
        include_str!("../../../fixtures/lists/formats/stopncii.json"),
        None,
    )
    .unwrap();
    assert!(stop.changes.iter().any(|c| matches!(
        c,
        Change::Delete {
            target: Target::Hash(_),
            ..
        }
    )));
}

#[test]
fn unknown_content_names_the_line_and_the_formats_expected() {
    let error = read("# comment\n\nhello world, this is not a list\n", None).unwrap_err();
    assert_eq!(
        error,
        ReadError::Unrecognised {
            line: 3,
            found: "hello world, this is not a list".into()
        }
    );
    let message = error.to_string();
    assert!(
        message.starts_with("line 3: cannot tell the list format"),
        "{message}"
    );
    for format in Format::ALL {
        assert!(message.contains(format.name()), "{message}");
    }
    assert!(matches!(
        read("<html></html>", None),
        Err(ReadError::Unrecognised { line: 1, .. })
    ));
    assert!(matches!(
        read("{\"a\": 1}", None),
        Err(ReadError::Unrecognised { line: 1, .. })
    ));
    // Nothing to read is an empty list, not an error (the build refuses it).
    assert!(read("# nothing\n", None).unwrap().changes.is_empty());
}

#[test]
fn bad_records_name_their_line_and_what_was_expected() {
    let pdq = "ab".repeat(32);
    let csv = format!(
        "collab,signal_type,signal_str,category,tags\nc,pdq,{pdq},x,\nc,pdq,{},x,\nc,weird,{pdq},x,\n",
        &pdq[..60]
    );
    let file = read(&csv, None).unwrap();
    assert_eq!(file.format, Format::TxDatasetCsv);
    let lines: Vec<usize> = file.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![3, 4]);
    assert!(
        file.errors[0]
            .problem
            .starts_with("expected a pdq hash, found"),
        "{}",
        file.errors[0]
    );

    let xml = format!(
        "<queryResult xmlns=\"x\"><images>\n<image><id>a</id><fingerprints>\n<pdq>{}</pdq>\n</fingerprints></image>\n<deletedImage><timestamp/></deletedImage>\n</images></queryResult>",
        &pdq[..10]
    );
    let file = read(&xml, None).unwrap();
    assert_eq!(file.format, Format::Ncmec);
    let lines: Vec<usize> = file.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![3, 5], "{:?}", file.errors);

    // Broken structure fails the file at its line.
    let error = read(
        "<queryResult>\n<images>\n<image></images>\n",
        Some(Format::Ncmec),
    )
    .unwrap_err();
    assert!(
        matches!(&error, ReadError::Malformed { format: Format::Ncmec, error } if error.line == 3),
        "{error:?}"
    );
    let error = read(
        "{\"hashRecords\": [\n{\"hashValue\": 1,\n \"signalType\": \"ImagePDQ\"}\n]}",
        None,
    )
    .unwrap();
    assert_eq!(error.errors.len(), 1);
    assert_eq!(error.errors[0].line, 2);
    let error = read(
        "{\"data\": [\n{\"id\": \"1\",,}\n]}",
        Some(Format::TeUpdates),
    )
    .unwrap_err();
    assert!(
        matches!(&error, ReadError::Malformed { error, .. } if error.line == 2),
        "{error:?}"
    );

    let photo = format!("{pdq},101,a.jpg\n{pdq},50\nzz,50,b\n");
    let file = read(&photo, Some(Format::PdqPhotoHasher)).unwrap();
    let lines: Vec<usize> = file.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![1, 3]);
    assert_eq!(adds(&file), vec![(pdq.clone(), None)]);
}

#[test]
fn the_format_flag_overrides_recognition() {
    // 64 hex digits alone read as python-threatexchange PDQ signals...
    let line = format!("{}\n", "cd".repeat(32));
    assert_eq!(read(&line, None).unwrap().format, Format::TxSignals);
    // ...and named as another format, are read (and refused) as that one.
    let file = read(&line, Some(Format::Hashgate)).unwrap();
    assert_eq!(file.errors.len(), 1);
    assert_eq!(file.errors[0].line, 1);
    assert!("NCMEC".parse::<Format>().is_ok());
    assert!("csv"
        .parse::<Format>()
        .unwrap_err()
        .contains("pdq-photo-hasher"));
}

#[test]
fn quoted_fields_lose_their_quotes_and_unquoted_ids_keep_their_commas() {
    let pdq = "ab".repeat(32);
    let sha = "cd".repeat(32);
    let text = format!(
        "pdq,\"{pdq}\",\"case, 1 \"\"a\"\"\"\nsha256,{sha},case, 2\n\"HASH_MD5\",\"{}\"\npdq,\"{pdq}\n",
        "ef".repeat(16)
    );
    let file = read(&text, None).unwrap();
    assert_eq!(file.format, Format::Hashgate);
    assert_eq!(
        adds(&file),
        vec![
            (pdq.clone(), Some("case, 1 \"a\"".to_owned())),
            (sha, Some("case, 2".to_owned())),
            ("ef".repeat(16), None),
        ]
    );
    // An unclosed quote is the line's error, not a lost entry elsewhere.
    assert_eq!(file.errors.len(), 1, "{:?}", file.errors);
    assert_eq!(file.errors[0].line, 4);
}
