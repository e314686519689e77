//! NCMEC hash-sharing XML: the `queryResult` document of the `/v2/entries`
//! API, in namespace `https://hashsharing.ncmec.org/hashsharing/v2`.
//!
//! ```text
//! <queryResult>
//!   <images count maxTimestamp>
//!     <image> <member id/> <timestamp/> <id>ID</id> <classification/>
//!             <fingerprints> <md5/> <sha1/> <pdq/> <pdna/> ... </fingerprints>
//!     </image>
//!     <deletedImage> <member/> <id>ID</id> <timestamp/> </deletedImage>
//!   </images>
//!   <videos> <video>...</video> <deletedVideo>...</deletedVideo> </videos>
//!   <paging> <next/> </paging>
//! </queryResult>
//! ```
//!
//! MD5, SHA-1 and PDQ fingerprints become entries with the entry's `<id>`;
//! every other fingerprint (PhotoDNA `pdna`, video `tmk-pdqf`,
//! `videntifier`, ...) is counted as skipped by its element name. A deleted
//! entry deletes every fingerprint carrying its id. The document is read
//! with `quick-xml` as a stream of events (a page holds thousands of
//! entries; nothing but the current entry is kept).

use quick_xml::events::Event;
use quick_xml::Reader;

use super::{line_of, parse_hash, parse_id, ListFile, RecordError, Target};
use crate::hashes::HashKind;

struct Entry {
    deleted: bool,
    line: usize,
    id: Option<String>,
    /// (element name, text, line)
    fingerprints: Vec<(String, String, usize)>,
}

fn kind_of(element: &str) -> Option<HashKind> {
    match element {
        "md5" => Some(HashKind::Md5),
        "sha1" => Some(HashKind::Sha1),
        "pdq" => Some(HashKind::Pdq),
        _ => None,
    }
}

pub(super) fn read(text: &str, file: &mut ListFile) -> Result<(), RecordError> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let mut entry: Option<Entry> = None;
    let mut saw_root = false;
    loop {
        let event = reader.read_event().map_err(|e| {
            RecordError::new(
                line_of(text, reader.error_position() as usize),
                "well-formed XML",
                e.to_string(),
            )
        })?;
        // Where the event ends: the line of a tag or of a text (the
        // position before the event is that of the whitespace before it).
        let at = (reader.buffer_position() as usize).saturating_sub(1);
        match event {
            Event::Start(start) => {
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                if path.is_empty() {
                    if name != "queryResult" {
                        return Err(RecordError::new(
                            line_of(text, at),
                            "a <queryResult> document",
                            format!("<{name}>"),
                        ));
                    }
                    saw_root = true;
                }
                let parent = path.last().map(String::as_str);
                if matches!(parent, Some("images" | "videos")) {
                    let deleted = matches!(name.as_str(), "deletedImage" | "deletedVideo");
                    if deleted || matches!(name.as_str(), "image" | "video") {
                        entry = Some(Entry {
                            deleted,
                            line: line_of(text, at),
                            id: None,
                            fingerprints: Vec::new(),
                        });
                    }
                }
                path.push(name);
            }
            // A fingerprint given by reference (large video hashes).
            Event::Empty(empty) if path.last().map(String::as_str) == Some("fingerprints") => {
                let name = String::from_utf8_lossy(empty.local_name().as_ref()).into_owned();
                file.skip(&name);
            }
            Event::Text(content) => {
                let value = content
                    .unescape()
                    .map_err(|e| RecordError::new(line_of(text, at), "XML text", e.to_string()))?
                    .into_owned();
                let depth = path.len();
                let (Some(current), Some(element)) = (entry.as_mut(), path.last()) else {
                    continue;
                };
                let parent = depth.checked_sub(2).and_then(|i| path.get(i));
                match parent.map(String::as_str) {
                    Some("fingerprints") => {
                        current
                            .fingerprints
                            .push((element.clone(), value, line_of(text, at)));
                    }
                    Some("image" | "video" | "deletedImage" | "deletedVideo")
                        if element == "id" =>
                    {
                        current.id = Some(value);
                    }
                    _ => {}
                }
            }
            Event::End(end) => {
                path.pop();
                let name = end.local_name();
                let closes_entry =
                    matches!(
                        name.as_ref(),
                        b"image" | b"video" | b"deletedImage" | b"deletedVideo"
                    ) && matches!(path.last().map(String::as_str), Some("images" | "videos"));
                if closes_entry {
                    if let Some(done) = entry.take() {
                        if let Err(error) = finish(done, file) {
                            file.errors.push(error);
                        }
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        return Err(RecordError::new(
            1,
            "a <queryResult> document",
            "no root element",
        ));
    }
    Ok(())
}

fn finish(entry: Entry, file: &mut ListFile) -> Result<(), RecordError> {
    let id = match &entry.id {
        Some(id) => parse_id(id, entry.line)?,
        None => None,
    };
    if entry.deleted {
        let id =
            id.ok_or_else(|| RecordError::new(entry.line, "an <id> in a deleted entry", "none"))?;
        file.delete(Target::Id(id), entry.line);
        return Ok(());
    }
    for (element, value, line) in entry.fingerprints {
        match kind_of(&element) {
            Some(kind) => match parse_hash(kind, &value, line) {
                Ok(hash) => file.add(hash, id.clone(), line),
                Err(error) => file.errors.push(error),
            },
            None => file.skip(&element),
        }
    }
    Ok(())
}
