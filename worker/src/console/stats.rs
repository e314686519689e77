//! What the overview and the list health page show, computed from the
//! report records read for the page (pure, tested natively).
//!
//! Report records are per image and route with a count, a first and a
//! last sighting: per-day figures here count a record's sightings on the
//! day of its last sighting. Exact per-day counters are in Workers
//! Analytics Engine ([`crate::telemetry`]), queried with its SQL API.

use std::collections::{BTreeMap, BTreeSet};

use crate::events::EventKind;
use crate::report::ReportRecord;

use super::audit::{Review, ReviewState};

/// A record with its review.
#[derive(Debug, Clone)]
pub struct Sighting {
    pub record: ReportRecord,
    pub review: Review,
}

impl Sighting {
    /// `blocked`, `flagged` or `unscanned`.
    pub fn outcome(&self) -> &'static str {
        match self.record.kind {
            EventKind::Unscanned => "unscanned",
            EventKind::Match if self.record.actions.blocked > 0 => "blocked",
            EventKind::Match => "flagged",
        }
    }

    /// The closest match's list ("" for unscanned).
    pub fn list(&self) -> &str {
        self.record.matches.first().map_or("", |m| m.list.as_str())
    }

    /// `YYYY-MM-DD` of the last sighting.
    pub fn day(&self) -> &str {
        self.record.last_seen.get(..10).unwrap_or("")
    }
}

/// Sightings filter (from the page's query string).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub route: String,
    pub list: String,
    /// An outcome or a review state; empty: any.
    pub status: String,
    /// Only sightings last seen within this many days (0: any).
    pub days: u32,
}

impl Filter {
    pub fn keeps(&self, s: &Sighting, now_ms: u64) -> bool {
        (self.route.is_empty() || s.record.route == self.route)
            && (self.list.is_empty() || s.record.matches.iter().any(|m| m.list == self.list))
            && (self.status.is_empty()
                || s.outcome() == self.status
                || s.review.state.name() == self.status)
            && (self.days == 0
                || s.record
                    .last_seen_ms
                    .saturating_add(u64::from(self.days) * 86_400_000)
                    >= now_ms)
    }
}

/// Sightings per outcome on one day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayCounts {
    pub blocked: u64,
    pub flagged: u64,
    pub unscanned: u64,
}

impl DayCounts {
    pub fn total(&self) -> u64 {
        self.blocked + self.flagged + self.unscanned
    }
}

/// The overview's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overview {
    /// Per day (ascending), per outcome.
    pub days: BTreeMap<String, DayCounts>,
    /// (day, route, list, outcome) -> sightings.
    pub by_route_list: BTreeMap<(String, String, String, String), u64>,
    /// Why images were not checked -> sightings.
    pub unscanned_reasons: BTreeMap<String, u64>,
    /// Sightings not reviewed yet.
    pub open: u64,
    /// Match records the webhook has not acknowledged.
    pub not_notified: u64,
}

fn sightings_of(s: &Sighting) -> u64 {
    s.record.count.max(1)
}

/// The overview of `sightings`.
pub fn overview(sightings: &[Sighting]) -> Overview {
    let mut o = Overview::default();
    for s in sightings {
        let n = sightings_of(s);
        let day = o.days.entry(s.day().to_owned()).or_default();
        match s.outcome() {
            "blocked" => day.blocked += n,
            "flagged" => day.flagged += n,
            _ => day.unscanned += n,
        }
        *o.by_route_list
            .entry((
                s.day().to_owned(),
                s.record.route.clone(),
                s.list().to_owned(),
                s.outcome().to_owned(),
            ))
            .or_default() += n;
        if let Some(reason) = &s.record.reason {
            *o.unscanned_reasons.entry(reason.clone()).or_default() += n;
        }
        if s.review.state == ReviewState::Open && s.record.kind == EventKind::Match {
            o.open += 1;
        }
        if s.record.kind == EventKind::Match && s.record.notified_at.is_none() {
            o.not_notified += 1;
        }
    }
    o
}

/// A list entry worth a look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryHealth {
    pub list: String,
    pub entry: String,
    /// The hash type (`pdq`, `md5`, ...), `MatchRecord::kind`.
    pub kind: String,
    pub hash: String,
    /// Distinct images (SHA-256) it matched.
    pub distinct_images: usize,
    /// Set bits of a PDQ hash (a real image's has about half of 256).
    pub bits: Option<u32>,
    /// Why it is shown.
    pub why: Vec<&'static str>,
}

/// PDQ hashes from the reference algorithm have about half of their 256
/// bits set (each bit says "above the median"); far from that, the source
/// was flat or synthetic and the hash matches unrelated images.
pub const PDQ_BALANCED_BITS: std::ops::RangeInclusive<u32> = 112..=144;

fn pdq_bits(hex: &str) -> Option<u32> {
    let bytes = hex::decode(hex).ok()?;
    (bytes.len() == 32).then(|| bytes.iter().map(|b| b.count_ones()).sum())
}

/// Entries that matched at least `distinct_threshold` distinct images, or
/// whose PDQ hash is unbalanced, most images first.
pub fn list_health(sightings: &[Sighting], distinct_threshold: usize) -> Vec<EntryHealth> {
    let mut images: BTreeMap<(String, String, String, String), BTreeSet<String>> = BTreeMap::new();
    for s in sightings {
        let image = s
            .record
            .sha256
            .clone()
            .unwrap_or_else(|| s.record.key.clone());
        for m in &s.record.matches {
            images
                .entry((
                    m.list.clone(),
                    m.id.clone().unwrap_or_default(),
                    m.kind.clone(),
                    m.hash.clone(),
                ))
                .or_default()
                .insert(image.clone());
        }
    }
    let mut out: Vec<EntryHealth> = images
        .into_iter()
        .filter_map(|((list, entry, kind, hash), imgs)| {
            let bits = (kind == "pdq").then(|| pdq_bits(&hash)).flatten();
            let mut why = Vec::new();
            if imgs.len() >= distinct_threshold {
                why.push("matches many distinct images");
            }
            if bits.is_some_and(|b| !PDQ_BALANCED_BITS.contains(&b)) {
                why.push("low-quality hash (unbalanced PDQ bits)");
            }
            (!why.is_empty()).then_some(EntryHealth {
                list,
                entry,
                kind,
                hash,
                distinct_images: imgs.len(),
                bits,
                why,
            })
        })
        .collect();
    out.sort_by_key(|e| std::cmp::Reverse(e.distinct_images));
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::ActionCounts;
    use hashgate::matching::MatchRecord;

    pub(crate) fn record(
        sha: &str,
        list: &str,
        hash: &str,
        blocked: bool,
        day: &str,
    ) -> ReportRecord {
        ReportRecord {
            v: 1,
            kind: EventKind::Match,
            key: format!("report/v1/{sha}/r"),
            route: "*/*".into(),
            sha256: Some(sha.into()),
            pdq: None,
            first_seen: format!("{day}T00:00:00.000Z"),
            last_seen: format!("{day}T01:00:00.000Z"),
            last_seen_ms: 0,
            count: 2,
            actions: ActionCounts {
                blocked: u64::from(blocked) * 2,
                flagged: u64::from(!blocked) * 2,
                ..ActionCounts::default()
            },
            directions: vec![],
            matches: vec![MatchRecord {
                list: list.into(),
                id: Some(format!("{list}-1")),
                kind: "pdq".into(),
                hash: hash.into(),
                distance: 2,
                variant: None,
            }],
            reason: None,
            urls: vec!["https://x/a.jpg".into()],
            request_ids: vec![],
            event_ids: vec![],
            notified_at: None,
            retain_until: String::new(),
        }
    }

    fn s(record: ReportRecord) -> Sighting {
        Sighting {
            record,
            review: Review::default(),
        }
    }

    // 128 bits set: balanced.
    const BALANCED: &str = "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0";
    const FLAT: &str = "0000000000000000000000000000000000000000000000000000000000000001";

    #[test]
    fn counts_per_day_route_list_and_outcome() {
        let mut unscanned = record("c", "", BALANCED, false, "2026-01-02");
        unscanned.kind = EventKind::Unscanned;
        unscanned.matches.clear();
        unscanned.reason = Some("over-cap".into());
        let o = overview(&[
            s(record("a", "demo", BALANCED, true, "2026-01-01")),
            s(record("b", "ncii", BALANCED, false, "2026-01-01")),
            s(unscanned),
        ]);
        assert_eq!(
            o.days["2026-01-01"],
            DayCounts {
                blocked: 2,
                flagged: 2,
                unscanned: 0
            }
        );
        assert_eq!(o.days["2026-01-02"].unscanned, 2);
        assert_eq!(
            o.by_route_list[&(
                "2026-01-01".into(),
                "*/*".into(),
                "ncii".into(),
                "flagged".into()
            )],
            2
        );
        assert_eq!(o.unscanned_reasons["over-cap"], 2);
        assert_eq!(o.open, 2);
        assert_eq!(o.not_notified, 2);
    }

    #[test]
    fn filters() {
        let a = s(record("a", "demo", BALANCED, true, "2026-01-01"));
        let f = |route: &str, list: &str, status: &str| Filter {
            route: route.into(),
            list: list.into(),
            status: status.into(),
            days: 0,
        };
        assert!(f("", "", "").keeps(&a, 0));
        assert!(f("*/*", "demo", "blocked").keeps(&a, 0));
        assert!(f("", "", "open").keeps(&a, 0));
        assert!(!f("x/*", "", "").keeps(&a, 0));
        assert!(!f("", "ncii", "").keeps(&a, 0));
        assert!(!f("", "", "flagged").keeps(&a, 0));
        let recent = Filter {
            days: 1,
            ..Filter::default()
        };
        assert!(!recent.keeps(&a, 2 * 86_400_000));
        assert!(recent.keeps(&a, 86_400_000));
    }

    #[test]
    fn health_finds_greedy_and_flat_entries() {
        let mut all: Vec<Sighting> = (0..5)
            .map(|i| {
                s(record(
                    &format!("img{i}"),
                    "demo",
                    BALANCED,
                    true,
                    "2026-01-01",
                ))
            })
            .collect();
        all.push(s(record("z", "ncii", FLAT, true, "2026-01-01")));
        all.push(s(record("y", "ok", BALANCED, true, "2026-01-01")));
        let h = list_health(&all, 5);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].list, "demo");
        assert_eq!(h[0].distinct_images, 5);
        assert_eq!(h[1].list, "ncii");
        assert_eq!(h[1].bits, Some(1));
        assert_eq!(h[1].why, vec!["low-quality hash (unbalanced PDQ bits)"]);
    }
}
