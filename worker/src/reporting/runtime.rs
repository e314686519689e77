//! The reporting job's I/O: filings in `REPORTS`, the evidence in R2, and
//! NCMEC's API over `fetch` (see the parent module for the design).

use base64::Engine as _;
use hashgate::cybertip::{self, FileDetails, Incident, ReportingConfig};
use hashgate::evidence::Manifest;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use worker::{Env, KvStore};

use super::*;
use crate::config::REPORTS;
use crate::evidence;
use crate::report::REPORT_RETENTION_SECONDS;
use crate::runtime::{header, js_error_text, log_error, log_warn, now_ms, uuid};

/// Sightings read into a report.
const MAX_SIGHTINGS: usize = 50;

fn var(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|s| s.to_string()))
        .ok()
        .filter(|s| !s.trim().is_empty())
}

fn reports(env: &Env) -> Result<KvStore, String> {
    env.kv(REPORTS)
        .map_err(|e| format!("{REPORTS} is not bound: {e}"))
}

async fn read_json<T: serde::de::DeserializeOwned>(
    kv: &KvStore,
    key: &str,
) -> Result<Option<T>, String> {
    match kv.get(key).text().await {
        Ok(Some(text)) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{key} is unreadable: {e}")),
        Ok(None) => Ok(None),
        Err(e) => Err(format!("reading {key}: {e}")),
    }
}

async fn save(kv: &KvStore, filing: &Filing) -> Result<(), String> {
    let key = filing_key(&filing.incident).map_err(|e| e.to_string())?;
    let json = serde_json::to_string(filing).map_err(|e| e.to_string())?;
    kv.put(&key, json)
        .map_err(|e| e.to_string())?
        .expiration_ttl(REPORT_RETENTION_SECONDS)
        .execute()
        .await
        .map_err(|e| format!("writing {key}: {e}"))
}

async fn mark(kv: &KvStore) -> Result<(), String> {
    kv.put(FILING_MARKER, "1")
        .map_err(|e| e.to_string())?
        .execute()
        .await
        .map_err(|e| e.to_string())
}

/// Confirms an incident for reporting (contract: the console calls this).
pub async fn confirm(
    env: &Env,
    incident_key: &str,
    reviewer: &str,
    note: &str,
) -> Result<Filing, String> {
    confirm_with(env, incident_key, reviewer, note, false).await
}

/// [`confirm`], saying whether the reviewer viewed the image.
pub async fn confirm_with(
    env: &Env,
    incident_key: &str,
    reviewer: &str,
    note: &str,
    viewed: bool,
) -> Result<Filing, String> {
    let kv = reports(env)?;
    let key = filing_key(incident_key).map_err(|e| e.to_string())?;
    if kv
        .get(incident_key)
        .text()
        .await
        .map_err(|e| e.to_string())?
        .is_none()
    {
        return Err(format!("no incident {incident_key}"));
    }
    let existing: Option<Filing> = read_json(&kv, &key).await?;
    let (filing, created) = confirm_transition(
        existing,
        incident_key,
        reviewer,
        note,
        viewed,
        now_ms() as u64,
    )
    .map_err(|e| e.to_string())?;
    if created {
        save(&kv, &filing).await?;
        mark(&kv).await?;
    }
    Ok(filing)
}

/// The cron's part: runs the steps of every due filing.
pub async fn run_due(env: &Env) -> Result<usize, String> {
    let kv = reports(env)?;
    if kv
        .get(FILING_MARKER)
        .text()
        .await
        .map_err(|e| e.to_string())?
        .is_none()
    {
        return Ok(0);
    }
    let started = now_ms();
    let list = kv
        .list()
        .prefix(FILING_PREFIX.to_owned())
        .limit(100)
        .execute()
        .await
        .map_err(|e| e.to_string())?;
    let mut active = !list.list_complete;
    let mut steps = 0;
    for name in list.keys.into_iter().map(|k| k.name) {
        let Some(mut filing) = read_json::<Filing>(&kv, &name).await? else {
            continue;
        };
        while let Some(step) = next_step(&filing) {
            if filing.next_attempt_ms > now_ms() as u64 || now_ms() - started > TICK_BUDGET_MS {
                break;
            }
            let outcome = perform(env, &filing, step).await;
            if let Outcome::Transient(e) | Outcome::Permanent(e) = &outcome {
                log_warn(&format!(
                    "hashgate: filing {}: {} failed: {e}",
                    filing.incident,
                    step.path()
                ));
            }
            apply(&mut filing, step, outcome, now_ms() as u64, retry_base(env));
            save(&kv, &filing).await?;
            steps += 1;
        }
        active |= !is_done(&filing);
        if filing.stage == Stage::Failed {
            log_error(&format!(
                "hashgate: filing {} FAILED: {}",
                filing.incident,
                filing.last_error.as_deref().unwrap_or("?")
            ));
        }
    }
    if !active {
        let _ = kv.delete(FILING_MARKER).await;
    }
    Ok(steps)
}

/// Logs what a tick did.
pub async fn run_due_and_log(env: &Env) {
    if let Err(e) = run_due(env).await {
        log_warn(&format!("hashgate: reporting job: {e}"));
    }
}

fn retry_base(env: &Env) -> u64 {
    var(env, RETRY_BASE_VAR)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_RETRY_BASE_MS)
}

fn config(env: &Env) -> Result<ReportingConfig, String> {
    let text = var(env, CONFIG_VAR).ok_or_else(|| format!("{CONFIG_VAR} is not set"))?;
    let config: ReportingConfig =
        serde_json::from_str(&text).map_err(|e| format!("{CONFIG_VAR}: {e}"))?;
    config
        .validate()
        .map_err(|e| format!("{CONFIG_VAR}: {e}"))?;
    Ok(config)
}

/// One step; every failure is an [`Outcome`].
async fn perform(env: &Env, filing: &Filing, step: Step) -> Outcome {
    match perform_inner(env, filing, step).await {
        Ok(outcome) => outcome,
        Err(e) => Outcome::Transient(e),
    }
}

struct Material {
    incident: Incident,
    sightings: Vec<Manifest>,
}

async fn material(env: &Env, filing: &Filing) -> Result<Material, String> {
    let kv = reports(env)?;
    let incident: Incident = read_json(&kv, &filing.incident)
        .await?
        .ok_or_else(|| format!("the incident {} is gone", filing.incident))?;
    let sha = incident
        .sha256
        .clone()
        .ok_or("the incident has no SHA-256")?;
    let sightings = evidence::sightings(env, &sha, MAX_SIGHTINGS).await?;
    Ok(Material {
        incident,
        sightings,
    })
}

async fn perform_inner(env: &Env, filing: &Filing, step: Step) -> Result<Outcome, String> {
    let config = config(env)?;
    let base = config.api_url().map_err(|e| e.to_string())?;
    let url = format!("{base}{}", step.path());
    let report_id = filing.report_id.clone().unwrap_or_default();
    let boundary = format!("hashgate-{}", uuid());
    let (content_type, body) = match step {
        Step::Submit => {
            let m = material(env, filing).await?;
            let xml = cybertip::report_xml(&m.incident, &m.sightings, &config);
            match xml {
                Ok(xml) => ("text/xml; charset=utf-8".to_owned(), xml.into_bytes()),
                // The document cannot be built: retrying will not help.
                Err(e) => return Ok(Outcome::Permanent(format!("report document: {e}"))),
            }
        }
        Step::Upload => {
            let m = material(env, filing).await?;
            let sha = m.incident.sha256.clone().unwrap_or_default();
            let bucket = env
                .bucket(evidence::EVIDENCE)
                .map_err(|e| format!("{}: {e}", evidence::EVIDENCE))?;
            let object = evidence::read(&bucket, &hashgate::evidence::object_key(&sha))
                .await?
                .ok_or_else(|| format!("no evidence object for {sha} (yet)"))?;
            let (header, image) = evidence::open(env, &object).await?;
            let ext = header.content_type.rsplit('/').next().unwrap_or("bin");
            let filename = format!("{sha}.{ext}");
            let body = multipart(
                &boundary,
                &[("id", &report_id)],
                Some(("file", &filename, &header.content_type, &image)),
            );
            (format!("multipart/form-data; boundary={boundary}"), body)
        }
        Step::FileInfo => {
            let m = material(env, filing).await?;
            let sha = m.incident.sha256.clone().unwrap_or_default();
            let file_id = filing.file_id.clone().unwrap_or_default();
            let upload = m
                .sightings
                .iter()
                .filter(|s| s.direction == "upload")
                .find_map(|s| Some((s.uploader.as_ref()?.ip.as_deref()?, s.time.as_str())));
            let location = m.incident.urls.first().map(String::as_str);
            let served =
                m.sightings.iter().any(|s| s.direction == "response") || m.sightings.is_empty();
            let xml = cybertip::file_details_xml(&FileDetails {
                report_id: &report_id,
                file_id: &file_id,
                original_file_name: None,
                location_of_file: location,
                viewed_by_esp: filing.viewed,
                publicly_available: served,
                sha256: &sha,
                upload,
            });
            match xml {
                Ok(xml) => ("text/xml; charset=utf-8".to_owned(), xml.into_bytes()),
                Err(e) => return Ok(Outcome::Permanent(format!("file details: {e}"))),
            }
        }
        Step::Finish | Step::Retract => {
            let body = multipart(&boundary, &[("id", &report_id)], None);
            (format!("multipart/form-data; boundary={boundary}"), body)
        }
    };
    let (status, text) = post(env, &url, &content_type, &body)
        .await
        .map_err(|e| format!("{}: {e}", step.path()))?;
    Ok(classify(step, status, &text))
}

async fn post(
    env: &Env,
    url: &str,
    content_type: &str,
    body: &[u8],
) -> Result<(u16, String), String> {
    let user = var(env, USERNAME_SECRET).ok_or(format!("{USERNAME_SECRET} is not set"))?;
    let password = var(env, PASSWORD_SECRET).ok_or(format!("{PASSWORD_SECRET} is not set"))?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let request = (|| -> Result<web_sys::Request, JsValue> {
        let headers = web_sys::Headers::new()?;
        headers.set("Content-Type", content_type)?;
        headers.set("Authorization", &format!("Basic {auth}"))?;
        let init = web_sys::RequestInit::new();
        init.set_method("POST");
        init.set_headers(&headers);
        init.set_body(&js_sys::Uint8Array::from(body));
        web_sys::Request::new_with_str_and_init(url, &init)
    })()
    .map_err(|e| js_error_text(&e))?;
    let response = crate::origin::fetch(&request)
        .await
        .map_err(|e| js_error_text(&e))?;
    let text = JsFuture::from(response.text().map_err(|e| js_error_text(&e))?)
        .await
        .map_err(|e| js_error_text(&e))?
        .as_string()
        .unwrap_or_default();
    Ok((response.status(), text))
}

fn json_response(status: u16, value: &serde_json::Value) -> Result<web_sys::Response, JsValue> {
    let init = web_sys::ResponseInit::new();
    init.set_status(status);
    let headers = web_sys::Headers::new()?;
    headers.set("Content-Type", "application/json")?;
    headers.set("Cache-Control", "no-store")?;
    init.set_headers(&headers);
    web_sys::Response::new_with_opt_str_and_init(Some(&value.to_string()), &init)
}

#[derive(serde::Deserialize)]
struct ConfirmBody {
    incident: String,
    reviewer: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    viewed: bool,
}

/// The admin endpoint, on the worker's own host, only while `ADMIN_TOKEN`
/// is set (otherwise such paths go to the origin like any other):
///
/// * `POST /.hashgate/admin/confirm` `{"incident", "reviewer", "note", "viewed"}`
///   confirms an incident (202 with the filing);
/// * `GET /.hashgate/admin/filing?incident=<key>` shows its filing.
///
/// Authorization: `Bearer <ADMIN_TOKEN>`; anything else is 401.
pub async fn admin(
    request: &web_sys::Request,
    env: &Env,
) -> Result<Option<web_sys::Response>, JsValue> {
    let Ok(url) = url::Url::parse(&request.url()) else {
        return Ok(None);
    };
    let Some(action) = url.path().strip_prefix(ADMIN_PREFIX) else {
        return Ok(None);
    };
    let Some(token) = var(env, ADMIN_TOKEN) else {
        return Ok(None);
    };
    let given = header(&request.headers(), "authorization").unwrap_or_default();
    let given = given.strip_prefix("Bearer ").unwrap_or_default();
    if !token_matches(given, &token) {
        return json_response(401, &serde_json::json!({"error": "unauthorized"})).map(Some);
    }
    let method = request.method();
    let answer = match (method.as_str(), action) {
        ("POST", "confirm") => {
            let text = JsFuture::from(request.text()?)
                .await?
                .as_string()
                .unwrap_or_default();
            match serde_json::from_str::<ConfirmBody>(&text) {
                Err(e) => (400, serde_json::json!({"error": e.to_string()})),
                Ok(b) => match confirm_with(env, &b.incident, &b.reviewer, &b.note, b.viewed).await
                {
                    Ok(filing) => (202, serde_json::json!({"filing": filing})),
                    Err(e) if e.starts_with("no incident") => {
                        (404, serde_json::json!({"error": e}))
                    }
                    Err(e) => (400, serde_json::json!({"error": e})),
                },
            }
        }
        ("GET", "filing") => {
            let incident = url
                .query_pairs()
                .find(|(k, _)| k == "incident")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            match filing_key(&incident) {
                Err(e) => (400, serde_json::json!({"error": e.to_string()})),
                Ok(key) => {
                    let kv = reports(env).map_err(|e| JsValue::from_str(&e))?;
                    match read_json::<Filing>(&kv, &key).await {
                        Ok(Some(f)) => (200, serde_json::json!({"filing": f})),
                        Ok(None) => (404, serde_json::json!({"error": "not confirmed"})),
                        Err(e) => (500, serde_json::json!({"error": e})),
                    }
                }
            }
        }
        _ => (404, serde_json::json!({"error": "no such admin endpoint"})),
    };
    json_response(answer.0, &answer.1).map(Some)
}
