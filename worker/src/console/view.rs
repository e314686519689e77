//! The console's pages, as small server-rendered HTML.
//!
//! Everything that came from a request or a record (URLs, file names,
//! list entries, notes, emails) is attacker-controlled and goes through
//! [`esc`] (the `html-escape` crate: `& < > " ' /`), in text and in
//! double-quoted attributes alike; query parameters are percent-encoded.
//! The pages hold no script at all, and style only from the console's own
//! stylesheet, so the Content-Security-Policy can be
//! `default-src 'none'; style-src 'self'; img-src 'none'; form-action 'self'`
//! (`img-src data:` on the one page that carries a blurred rendering,
//! [`Revealed`]).
//! The chart is inline SVG (presentation attributes, no style).
//!
//! Accessibility: one `<main>` and `<h1>` per page, a skip link, labelled
//! navigation, every form control with a `<label>`, tables with captions
//! and header cells, actions as real buttons (reachable by Tab, used with
//! Enter or Space).

use std::fmt::Write;

use super::audit::{AuditEntry, Review};
use super::settings::Role;
use super::stats::{DayCounts, EntryHealth, Filter, Overview, Sighting};

/// The stylesheet (served at `<path>console.css`).
pub const STYLESHEET: &str = "\
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}\
header{background:#1f2d3d;color:#fff;padding:.5rem 1rem;display:flex;gap:1rem;flex-wrap:wrap;align-items:center}\
header a{color:#fff}nav ul{list-style:none;display:flex;gap:1rem;margin:0;padding:0}\
nav a[aria-current]{font-weight:700;text-decoration:underline}\
main{padding:1rem;max-width:75rem}table{border-collapse:collapse;margin:.5rem 0 1.5rem}\
caption{text-align:left;font-weight:600;padding:.25rem 0}\
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}\
td.url,code{word-break:break-all;font-family:ui-monospace,monospace;font-size:13px}\
form.act{display:inline-block;margin:0 1rem 1rem 0;padding:.5rem;border:1px solid #ccc;background:#fff}\
label{display:block;font-weight:600}textarea{width:22rem;height:3.5rem}\
button{padding:.3rem .8rem;margin-top:.3rem}a:focus,button:focus,input:focus,select:focus,textarea:focus{outline:3px solid #2563eb;outline-offset:2px}\
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;color:#000;padding:.5rem}\
.note{background:#fff8e0;border:1px solid #e0c060;padding:.5rem}.err{background:#fde8e8;border:1px solid #d04040;padding:.5rem}\
.filters{display:flex;gap:1rem;flex-wrap:wrap;align-items:end}\
img.reveal{border:1px solid #999}\
";

/// HTML-escapes text for element content and double-quoted attributes.
pub fn esc(text: &str) -> std::borrow::Cow<'_, str> {
    html_escape::encode_safe(text)
}

/// Percent-encodes a query parameter value.
pub fn q(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Who is looking, for the page header and the forms.
pub struct Viewer<'a> {
    pub email: &'a str,
    pub role: Role,
    pub csrf: &'a str,
    /// The console's base path (ends with `/`).
    pub base: &'a str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Overview,
    Sightings,
    Audit,
    Health,
    Other,
}

/// A whole page around `body`.
pub fn layout(title: &str, viewer: Option<&Viewer>, current: Page, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 1500);
    let base = viewer.map_or("", |v| v.base);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"referrer\" content=\"same-origin\">\
         <title>{} - hashgate console</title><link rel=\"stylesheet\" href=\"{}console.css\"></head><body>\
         <a class=\"skip\" href=\"#main\">Skip to content</a><header><strong>hashgate console</strong>",
        esc(title),
        esc(base)
    );
    if let Some(v) = viewer {
        let link = |page: Page, href: &str, label: &str| {
            let current = if page == current {
                " aria-current=\"page\""
            } else {
                ""
            };
            format!(
                "<li><a href=\"{}{}\"{current}>{label}</a></li>",
                esc(v.base),
                href
            )
        };
        let _ = write!(
            out,
            "<nav aria-label=\"Console\"><ul>{}{}{}{}</ul></nav><span>{} ({})</span>",
            link(Page::Overview, "", "Overview"),
            link(Page::Sightings, "sightings", "Sightings"),
            link(Page::Audit, "audit", "Audit log"),
            link(Page::Health, "health", "List health"),
            esc(v.email),
            v.role.name()
        );
    }
    let _ = write!(
        out,
        "</header><main id=\"main\"><h1>{}</h1>{body}</main></body></html>",
        esc(title)
    );
    out
}

/// The development sign-in page.
pub fn sign_in(base: &str, problem: Option<&str>) -> String {
    let mut body = String::new();
    if let Some(p) = problem {
        let _ = write!(body, "<p class=\"err\" role=\"alert\">{}</p>", esc(p));
    }
    let _ = write!(
        body,
        "<p>Development sign-in. In production the console is behind Cloudflare Access.</p>\
         <form method=\"post\" action=\"{}login\">\
         <label for=\"email\">Email</label><input id=\"email\" name=\"email\" type=\"email\" required autocomplete=\"username\">\
         <label for=\"token\">Development token</label><input id=\"token\" name=\"token\" type=\"password\" required autocomplete=\"current-password\">\
         <button type=\"submit\">Sign in</button></form>",
        esc(base)
    );
    layout("Sign in", None, Page::Other, &body)
}

/// A short page with a message (after an action, or a refusal).
pub fn message(
    viewer: Option<&Viewer>,
    title: &str,
    text: &str,
    back: Option<(&str, &str)>,
) -> String {
    let mut body = format!("<p role=\"status\">{}</p>", esc(text));
    if let Some((href, label)) = back {
        let _ = write!(body, "<p><a href=\"{}\">{}</a></p>", esc(href), esc(label));
    }
    layout(title, viewer, Page::Other, &body)
}

/// The stacked bar chart of sightings per day, as inline SVG.
pub fn chart(days: &[(&String, &DayCounts)]) -> String {
    const W: u32 = 640;
    const H: u32 = 180;
    const PAD: u32 = 24;
    let max = days
        .iter()
        .map(|(_, c)| c.total())
        .max()
        .unwrap_or(0)
        .max(1);
    let n = days.len().max(1) as u32;
    let slot = (W - 2 * PAD) / n;
    let bar = (slot * 7 / 10).clamp(2, 40);
    let mut svg = format!(
        "<svg role=\"img\" aria-labelledby=\"chart-title\" width=\"{W}\" height=\"{}\" viewBox=\"0 0 {W} {}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"chart-title\">Sightings per day by outcome: blocked (red), flagged (amber), unscanned (grey)</title>",
        H + 40,
        H + 40
    );
    for (i, (day, c)) in days.iter().enumerate() {
        let x = PAD + i as u32 * slot;
        let mut y = H;
        for (value, colour) in [
            (c.blocked, "#b00020"),
            (c.flagged, "#d08a00"),
            (c.unscanned, "#607080"),
        ] {
            let h = (value * u64::from(H - PAD) / max) as u32;
            if h > 0 {
                y -= h;
                let _ = write!(
                    svg,
                    "<rect x=\"{x}\" y=\"{y}\" width=\"{bar}\" height=\"{h}\" fill=\"{colour}\"></rect>"
                );
            }
        }
        let _ = write!(
            svg,
            "<text x=\"{x}\" y=\"{}\" font-size=\"11\" fill=\"#333\">{}</text><text x=\"{x}\" y=\"{}\" font-size=\"11\" fill=\"#333\">{}</text>",
            H + 14,
            esc(day.get(5..).unwrap_or(day)),
            y.saturating_sub(3).max(10),
            c.total()
        );
    }
    let _ = write!(
        svg,
        "<line x1=\"{PAD}\" y1=\"{H}\" x2=\"{}\" y2=\"{H}\" stroke=\"#333\"></line>\
         <rect x=\"{PAD}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"#b00020\"></rect><text x=\"{}\" y=\"{}\" font-size=\"12\">blocked</text>\
         <rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"#d08a00\"></rect><text x=\"{}\" y=\"{}\" font-size=\"12\">flagged</text>\
         <rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"#607080\"></rect><text x=\"{}\" y=\"{}\" font-size=\"12\">unscanned</text></svg>",
        W - PAD,
        H + 24,
        PAD + 14,
        H + 33,
        PAD + 90,
        H + 24,
        PAD + 104,
        H + 33,
        PAD + 180,
        H + 24,
        PAD + 194,
        H + 33
    );
    svg
}

/// What the overview shows besides the records.
pub struct IndexInfo {
    pub generation: String,
    pub built: String,
    pub layout: String,
    pub bytes: u64,
    /// (list, "pdq 12, sha256 3")
    pub lists: Vec<(String, String)>,
    pub overrides: String,
}

/// Backlog figures.
pub struct Backlog {
    pub outbox: usize,
    pub dead: usize,
    pub records_read: usize,
    pub truncated: bool,
}

pub fn overview(
    viewer: &Viewer,
    o: &Overview,
    index: Result<IndexInfo, String>,
    backlog: &Backlog,
) -> String {
    let mut b = String::new();
    let days: Vec<(&String, &DayCounts)> = o.days.iter().rev().take(14).rev().collect();
    let _ = write!(
        b,
        "<section aria-labelledby=\"h-days\"><h2 id=\"h-days\">Sightings per day</h2>{}",
        chart(&days)
    );
    b.push_str("<table><caption>Sightings per day by outcome</caption><thead><tr><th scope=\"col\">Day</th><th scope=\"col\">Blocked</th><th scope=\"col\">Flagged</th><th scope=\"col\">Unscanned</th></tr></thead><tbody>");
    for (day, c) in &days {
        let _ = write!(
            b,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(day),
            c.blocked,
            c.flagged,
            c.unscanned
        );
    }
    b.push_str("</tbody></table><table><caption>By route and list</caption><thead><tr><th scope=\"col\">Day</th><th scope=\"col\">Route</th><th scope=\"col\">List</th><th scope=\"col\">Outcome</th><th scope=\"col\">Sightings</th></tr></thead><tbody>");
    for ((day, route, list, outcome), n) in o.by_route_list.iter().rev().take(100) {
        let _ = write!(
            b,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{n}</td></tr>",
            esc(day),
            esc(route),
            esc(list),
            esc(outcome)
        );
    }
    b.push_str("</tbody></table></section><section aria-labelledby=\"h-why\"><h2 id=\"h-why\">Why images were not checked</h2><table><caption>Unscanned by reason</caption><thead><tr><th scope=\"col\">Reason</th><th scope=\"col\">Sightings</th></tr></thead><tbody>");
    for (reason, n) in &o.unscanned_reasons {
        let _ = write!(b, "<tr><td>{}</td><td>{n}</td></tr>", esc(reason));
    }
    b.push_str("</tbody></table></section><section aria-labelledby=\"h-index\"><h2 id=\"h-index\">Index</h2>");
    match index {
        Ok(i) => {
            let _ = write!(
                b,
                "<p>Generation <code>{}</code>, {} layout, {} bytes, uploaded (built) {}.</p><p>Overrides: {}</p>\
                 <table><caption>Lists in this generation</caption><thead><tr><th scope=\"col\">List</th><th scope=\"col\">Entries</th></tr></thead><tbody>",
                esc(&i.generation),
                esc(&i.layout),
                i.bytes,
                esc(&i.built),
                esc(&i.overrides)
            );
            for (list, counts) in &i.lists {
                let _ = write!(b, "<tr><td>{}</td><td>{}</td></tr>", esc(list), esc(counts));
            }
            b.push_str("</tbody></table>");
        }
        Err(problem) => {
            let _ = write!(b, "<p class=\"err\">{}</p>", esc(&problem));
        }
    }
    let _ = write!(
        b,
        "</section><section aria-labelledby=\"h-backlog\"><h2 id=\"h-backlog\">Backlog</h2><ul>\
         <li>Events waiting in the outbox (the queue refused them): {}</li>\
         <li>Dead letters (the consumer gave up): {}</li>\
         <li>Match records the webhook has not acknowledged: {}</li>\
         <li>Sightings not reviewed yet: {}</li></ul>\
         <p>From {} records{}. Messages still in the queue itself are not visible to a worker; see the queue's metrics in the dashboard.</p></section>",
        backlog.outbox,
        backlog.dead,
        o.not_notified,
        o.open,
        backlog.records_read,
        if backlog.truncated {
            " (the most recent page only)"
        } else {
            ""
        }
    );
    layout("Overview", Some(viewer), Page::Overview, &b)
}

fn select(id: &str, label: &str, current: &str, options: &[String]) -> String {
    let mut s = format!(
        "<div><label for=\"{id}\">{label}</label><select id=\"{id}\" name=\"{id}\"><option value=\"\">any</option>"
    );
    for o in options {
        let selected = if o == current { " selected" } else { "" };
        let _ = write!(s, "<option value=\"{0}\"{selected}>{0}</option>", esc(o));
    }
    s.push_str("</select></div>");
    s
}

pub fn sightings(
    viewer: &Viewer,
    shown: &[&Sighting],
    filter: &Filter,
    routes: &[String],
    lists: &[String],
) -> String {
    let mut b = String::new();
    let statuses: Vec<String> = [
        "blocked",
        "flagged",
        "unscanned",
        "open",
        "confirmed",
        "false-positive",
        "released",
    ]
    .map(String::from)
    .to_vec();
    let _ = write!(
        b,
        "<form method=\"get\" action=\"{}sightings\" class=\"filters\" aria-label=\"Filter sightings\">{}{}{}\
         <div><label for=\"days\">Last seen within (days, 0 = any)</label><input id=\"days\" name=\"days\" type=\"number\" min=\"0\" max=\"366\" value=\"{}\"></div>\
         <div><button type=\"submit\">Filter</button></div></form>",
        esc(viewer.base),
        select("route", "Route", &filter.route, routes),
        select("list", "List", &filter.list, lists),
        select("status", "Status", &filter.status, &statuses),
        filter.days
    );
    let _ = write!(
        b,
        "<table><caption>{} sightings (images are never shown here)</caption><thead><tr>\
         <th scope=\"col\">Last seen</th><th scope=\"col\">URL</th><th scope=\"col\">Route</th><th scope=\"col\">List and entry</th>\
         <th scope=\"col\">Distance</th><th scope=\"col\">Variant</th><th scope=\"col\">Count</th><th scope=\"col\">Status</th>\
         <th scope=\"col\">Evidence</th><th scope=\"col\">Report</th><th scope=\"col\">Review</th></tr></thead><tbody>",
        shown.len()
    );
    for s in shown {
        let r = &s.record;
        let best = r.matches.first();
        let list_entry = best.map_or_else(
            || {
                r.reason
                    .clone()
                    .map(|x| format!("not checked: {x}"))
                    .unwrap_or_default()
            },
            |m| format!("{} / {}", m.list, m.id.as_deref().unwrap_or("-")),
        );
        let _ = write!(
            b,
            "<tr><td>{}</td><td class=\"url\">{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>not preserved yet</td><td>{}</td><td><a href=\"{}sighting?key={}\">{} <span class=\"skip\">for {}</span></a></td></tr>",
            esc(&r.last_seen),
            esc(r.urls.first().map_or("", String::as_str)),
            esc(&r.route),
            esc(&list_entry),
            best.map_or(String::new(), |m| m.distance.to_string()),
            esc(best.and_then(|m| m.variant.as_deref()).unwrap_or("")),
            r.count,
            s.outcome(),
            if r.notified_at.is_some() { "notified" } else { "not notified" },
            esc(viewer.base),
            q(&r.key),
            s.review.state.name(),
            esc(r.urls.first().map_or("", String::as_str)),
        );
    }
    b.push_str("</tbody></table>");
    layout("Sightings", Some(viewer), Page::Sightings, &b)
}

fn action_form(
    viewer: &Viewer,
    key: &str,
    action: &str,
    label: &str,
    why_label: Option<&str>,
) -> String {
    action_form_why(viewer, key, action, label, why_label, true)
}

fn action_form_why(
    viewer: &Viewer,
    key: &str,
    action: &str,
    label: &str,
    why_label: Option<&str>,
    why_required: bool,
) -> String {
    let id = format!("why-{action}");
    let required = if why_required { " required" } else { "" };
    let why = why_label.map_or(String::new(), |l| {
        format!("<label for=\"{id}\">{l}</label><textarea id=\"{id}\" name=\"why\"{required} maxlength=\"2000\"></textarea>")
    });
    format!(
        "<form method=\"post\" action=\"{}action\" class=\"act\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"key\" value=\"{}\"><input type=\"hidden\" name=\"action\" value=\"{action}\">{why}\
         <button type=\"submit\">{label}</button></form>",
        esc(viewer.base),
        esc(viewer.csrf),
        esc(key)
    )
}

/// What a reveal gives the sighting page.
#[derive(Debug, Clone, Copy)]
pub enum Revealed<'a> {
    /// The blurred rendering (a `data:` URL) and its size in pixels.
    Image {
        src: &'a str,
        width: usize,
        height: usize,
    },
    /// Why there is none (no evidence, not an image, ...).
    Unavailable(&'a str),
}

pub fn sighting(viewer: &Viewer, s: &Sighting, reveal: Option<Revealed>) -> String {
    let r = &s.record;
    let mut b = String::new();
    let _ = write!(
        b,
        "<table><caption>Sighting</caption><tbody>\
         <tr><th scope=\"row\">Status</th><td>{} / review: {}</td></tr>\
         <tr><th scope=\"row\">Route</th><td><code>{}</code></td></tr>\
         <tr><th scope=\"row\">First seen</th><td>{}</td></tr><tr><th scope=\"row\">Last seen</th><td>{}</td></tr>\
         <tr><th scope=\"row\">Count</th><td>{}</td></tr>\
         <tr><th scope=\"row\">Image SHA-256</th><td><code>{}</code></td></tr><tr><th scope=\"row\">Image PDQ</th><td><code>{}</code></td></tr>\
         <tr><th scope=\"row\">Evidence</th><td>in the EVIDENCE bucket under evidence/v1/&lt;SHA-256&gt;/ (read with <code>hashgate evidence get</code>)</td></tr>\
         <tr><th scope=\"row\">Report</th><td>{}</td></tr><tr><th scope=\"row\">Kept until</th><td>{}</td></tr></tbody></table>",
        s.outcome(),
        s.review.state.name(),
        esc(&r.route),
        esc(&r.first_seen),
        esc(&r.last_seen),
        r.count,
        esc(r.sha256.as_deref().unwrap_or("-")),
        esc(r.pdq.as_deref().unwrap_or("-")),
        esc(r.notified_at.as_deref().map_or("not notified", |t| t)),
        esc(&r.retain_until)
    );
    b.push_str("<table><caption>URLs (as requested; shown as text)</caption><tbody>");
    for u in &r.urls {
        let _ = write!(b, "<tr><td class=\"url\">{}</td></tr>", esc(u));
    }
    b.push_str("</tbody></table><table><caption>Matches</caption><thead><tr><th scope=\"col\">List</th><th scope=\"col\">Entry</th><th scope=\"col\">Type</th><th scope=\"col\">Hash</th><th scope=\"col\">Distance</th><th scope=\"col\">Variant</th></tr></thead><tbody>");
    for m in &r.matches {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(&m.list),
            esc(m.id.as_deref().unwrap_or("-")),
            esc(&m.kind),
            esc(&m.hash),
            m.distance,
            esc(m.variant.as_deref().unwrap_or("-"))
        );
    }
    b.push_str("</tbody></table>");
    notes(&mut b, &s.review);
    match reveal {
        Some(Revealed::Image { src, width, height }) => {
            let _ = write!(
                b,
                "<h2 id=\"revealed\">Blurred rendering</h2><p><img class=\"reveal\" alt=\"Blurred greyscale rendering of the image\" width=\"{width}\" height=\"{height}\" src=\"{}\"></p>\
                 <p class=\"note\">From the preserved evidence, greyscale and blurred. This view is in the audit log; it is not kept (reloading would ask again).</p>",
                esc(src)
            );
        }
        Some(Revealed::Unavailable(problem)) => {
            let _ = write!(
                b,
                "<h2 id=\"revealed\">Blurred rendering</h2><p class=\"err\" role=\"status\">{} The request is in the audit log.</p>",
                esc(problem)
            );
        }
        None => {}
    }
    b.push_str("<h2>Actions</h2>");
    if viewer.role >= Role::Reviewer {
        b.push_str(&action_form(
            viewer,
            &r.key,
            "note",
            "Add note",
            Some("Note"),
        ));
        if !r.matches.is_empty() {
            b.push_str(&action_form(
                viewer,
                &r.key,
                "confirm",
                "Confirm (report)",
                Some("Why confirm"),
            ));
            b.push_str(&action_form(
                viewer,
                &r.key,
                "false-positive",
                "Mark false positive",
                Some("Why is it a false positive"),
            ));
        }
        b.push_str(&action_form_why(
            viewer,
            &r.key,
            "reveal",
            "Reveal blurred image",
            Some("Why reveal (optional)"),
            false,
        ));
    }
    if viewer.role >= Role::Admin && !r.matches.is_empty() {
        b.push_str(&action_form(
            viewer,
            &r.key,
            "release",
            "Release (every list)",
            Some("Why release"),
        ));
    }
    if viewer.role < Role::Reviewer {
        b.push_str("<p>Your role can look, not act.</p>");
    }
    layout("Sighting", Some(viewer), Page::Sightings, &b)
}

fn notes(b: &mut String, review: &Review) {
    b.push_str("<table><caption>Notes</caption><thead><tr><th scope=\"col\">When</th><th scope=\"col\">Who</th><th scope=\"col\">Note</th></tr></thead><tbody>");
    for n in &review.notes {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&n.at),
            esc(&n.by),
            esc(&n.text)
        );
    }
    b.push_str("</tbody></table>");
}

pub fn audit(viewer: &Viewer, entries: &[AuditEntry]) -> String {
    let mut b = String::from("<table><caption>Every action, newest first (kept one year)</caption><thead><tr><th scope=\"col\">When</th><th scope=\"col\">Who</th><th scope=\"col\">Role</th><th scope=\"col\">What</th><th scope=\"col\">Sighting</th><th scope=\"col\">Why</th></tr></thead><tbody>");
    for e in entries {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"url\">{}</td><td>{}</td></tr>",
            esc(&e.at),
            esc(&e.who),
            esc(&e.role),
            e.action.name(),
            esc(&e.url),
            esc(&e.why)
        );
    }
    b.push_str("</tbody></table>");
    layout("Audit log", Some(viewer), Page::Audit, &b)
}

pub fn health(
    viewer: &Viewer,
    entries: &[EntryHealth],
    threshold: usize,
    records: usize,
    turned_off: Option<&[hashgate::overrides::EntryOverride]>,
) -> String {
    let mut b = format!(
        "<p>Entries that matched at least {threshold} distinct images, or whose PDQ hash is unbalanced (a flat or synthetic source), among {records} records read.</p>\
         <table><caption>List entries worth a look</caption><thead><tr><th scope=\"col\">List</th><th scope=\"col\">Entry</th><th scope=\"col\">Type</th><th scope=\"col\">Hash</th><th scope=\"col\">Distinct images</th><th scope=\"col\">PDQ bits set</th><th scope=\"col\">Why</th></tr></thead><tbody>"
    );
    for e in entries {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&e.list),
            esc(&e.entry),
            esc(&e.kind),
            esc(&e.hash),
            e.distinct_images,
            e.bits.map_or("-".to_owned(), |b| b.to_string()),
            e.why.join("; ")
        );
    }
    b.push_str("</tbody></table>");
    b.push_str(&turned_off_table(turned_off));
    layout("List health", Some(viewer), Page::Health, &b)
}

/// The entries of `hg2/overrides`: disabled by a person, suspended by the
/// flood guard (flagged, not blocked, until someone decides), or reviewed.
fn turned_off_table(entries: Option<&[hashgate::overrides::EntryOverride]>) -> String {
    let Some(entries) = entries else {
        return "<p>The overrides (hg2/overrides) could not be read.</p>".to_owned();
    };
    let mut b = String::from(
        "<table><caption>Entries turned off or suspended (hg2/overrides; turn one on with <code>hashgate index enable</code>)</caption><thead><tr><th scope=\"col\">List</th><th scope=\"col\">Type</th><th scope=\"col\">Hash</th><th scope=\"col\">State</th><th scope=\"col\">By</th><th scope=\"col\">When</th><th scope=\"col\">Why</th></tr></thead><tbody>",
    );
    for e in entries {
        let state = match e.state {
            hashgate::overrides::EntryState::Disabled => "disabled",
            hashgate::overrides::EntryState::Suspended => "suspended (flagged, not blocked)",
            hashgate::overrides::EntryState::Reviewed => "reviewed (on)",
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{state}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&e.list),
            esc(&e.kind),
            esc(&e.hash),
            esc(&e.by),
            esc(&e.at),
            esc(&e.reason)
        );
    }
    if entries.is_empty() {
        b.push_str("<tr><td colspan=\"7\">None.</td></tr>");
    }
    b.push_str("</tbody></table>");
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::stats::tests::record;

    fn viewer() -> Viewer<'static> {
        Viewer {
            email: "a@example.com",
            role: Role::Reviewer,
            csrf: "tok",
            base: "/_hashgate/console/",
        }
    }

    #[test]
    fn request_text_is_escaped_everywhere() {
        let mut r = record("a", "demo", "00", true, "2026-01-01");
        let evil = "https://x/<script>alert(1)</script>\"'><img src=x onerror=alert(2)>";
        r.urls = vec![evil.into()];
        r.route = "<b>route</b>".into();
        r.matches[0].id = Some("<i>e</i>".into());
        let s = Sighting {
            record: r,
            review: Review::default().after(
                super::super::audit::Action::Note,
                "<u>x</u>",
                "t",
                "<script>n</script>",
            ),
        };
        let v = viewer();
        for page in [
            sightings(
                &v,
                &[&s],
                &Filter::default(),
                &["<r>".into()],
                &["<l>".into()],
            ),
            super::sighting(&v, &s, None),
        ] {
            assert!(!page.contains("<script>"), "{page}");
            assert!(!page.contains("<img src=x"), "{page}");
            assert!(!page.contains("<b>route"), "{page}");
            assert!(!page.contains("<i>e</i>"), "{page}");
            assert!(!page.contains("<u>x"), "{page}");
            assert!(page.contains("&lt;script&gt;"), "{page}");
        }
    }

    #[test]
    fn every_control_has_a_label() {
        let mut r = record("a", "demo", "00", true, "2026-01-01");
        r.urls = vec!["https://x/a.jpg".into()];
        let s = Sighting {
            record: r,
            review: Review::default(),
        };
        let admin = Viewer {
            role: Role::Admin,
            ..viewer()
        };
        for page in [
            super::sighting(&admin, &s, None),
            sightings(&admin, &[&s], &Filter::default(), &[], &[]),
            sign_in("/c/", Some("bad")),
        ] {
            for tag in ["<textarea id=\"", "<select id=\"", "<input id=\""] {
                for part in page.split(tag).skip(1) {
                    let id = part.split('"').next().unwrap();
                    assert!(
                        page.contains(&format!("<label for=\"{id}\">")),
                        "no label for {id}"
                    );
                }
            }
        }
    }

    #[test]
    fn viewers_get_no_action_forms() {
        let s = Sighting {
            record: record("a", "demo", "00", true, "2026-01-01"),
            review: Review::default(),
        };
        let page = super::sighting(
            &Viewer {
                role: Role::Viewer,
                ..viewer()
            },
            &s,
            None,
        );
        assert!(!page.contains("method=\"post\""));
        let page = super::sighting(&viewer(), &s, None);
        assert!(page.contains("value=\"false-positive\""));
        assert!(!page.contains("value=\"release\""), "release is for admins");
    }

    #[test]
    fn a_reveal_shows_the_rendering_or_says_why_not() {
        let s = Sighting {
            record: record("a", "demo", "00", true, "2026-01-01"),
            review: Review::default(),
        };
        let plain = super::sighting(&viewer(), &s, None);
        assert!(!plain.contains("<img"), "no image by default");
        // The reveal form: a button, and a reason that is optional.
        assert!(plain.contains("value=\"reveal\""));
        assert!(plain.contains("<textarea id=\"why-reveal\" name=\"why\" maxlength"));
        let page = super::sighting(
            &viewer(),
            &s,
            Some(Revealed::Image {
                src: "data:image/png;base64,iVBORw0KGgo=",
                width: 160,
                height: 107,
            }),
        );
        assert!(page.contains(
            "<img class=\"reveal\" alt=\"Blurred greyscale rendering of the image\" width=\"160\" height=\"107\" src=\"data:image&#x2F;png;base64,iVBORw0KGgo=\">"
        ), "{page}");
        let page = super::sighting(
            &viewer(),
            &s,
            Some(Revealed::Unavailable("No evidence <b>here</b>.")),
        );
        assert!(!page.contains("<img"));
        assert!(
            page.contains("No evidence &lt;b&gt;here&lt;&#x2F;b&gt;."),
            "{page}"
        );
    }

    #[test]
    fn turned_off_entries_show_their_state_escaped() {
        use hashgate::overrides::{EntryOverride, EntryState};
        let entry = |state| EntryOverride {
            list: "demo".into(),
            kind: "pdq".into(),
            hash: "ab".repeat(32),
            state,
            at: "2026-01-01T00:00:00Z".into(),
            by: "flood-guard".into(),
            reason: "<script>x</script>".into(),
        };
        let html = turned_off_table(Some(&[
            entry(EntryState::Suspended),
            entry(EntryState::Disabled),
            entry(EntryState::Reviewed),
        ]));
        assert!(html.contains("suspended (flagged, not blocked)"));
        assert!(html.contains("<td>disabled</td>"));
        assert!(html.contains("reviewed (on)"));
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
        assert!(turned_off_table(Some(&[])).contains("None."));
        assert!(turned_off_table(None).contains("could not be read"));
    }
}
