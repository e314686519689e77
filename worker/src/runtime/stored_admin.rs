//! The operator's endpoints for stored content, under `/_hashgate/stored/`
//! on any host the worker serves, answered only with
//! `Authorization: Bearer <ADMIN_TOKEN>` (a secret: `npx wrangler secret
//! put ADMIN_TOKEN`). Without the secret set the paths are not special
//! (they go to the origin like any other).
//!
//! ```text
//! POST /_hashgate/stored/backfills        {"bucket": "b", "prefix": "p/"}  start or resume
//! GET  /_hashgate/stored/backfills/<id>   progress: listed, scanned, matched, failed, other
//! POST /_hashgate/stored/retro            start a retroactive pass if the generation changed
//! GET  /_hashgate/stored/retro/<id>       a pass: added, checked, candidates, done
//! ```

use serde::Deserialize;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, Response, ResponseInit};
use worker::Env;

use crate::config;
use crate::runtime::header;
use crate::stored;

/// The path prefix of these endpoints.
pub const PREFIX: &str = "/_hashgate/stored/";
/// The secret holding the bearer token.
pub const ADMIN_TOKEN: &str = "ADMIN_TOKEN";

fn json(status: u16, value: &serde_json::Value) -> Result<Response, JsValue> {
    let init = ResponseInit::new();
    init.set_status(status);
    let headers = web_sys::Headers::new()?;
    headers.set("Content-Type", "application/json")?;
    headers.set("Cache-Control", "no-store")?;
    init.set_headers(&headers);
    Response::new_with_opt_str_and_init(Some(&value.to_string()), &init)
}

fn error(status: u16, message: &str) -> Result<Response, JsValue> {
    json(status, &serde_json::json!({ "error": message }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackfillRequest {
    bucket: String,
    #[serde(default)]
    prefix: String,
}

/// Answers a request to these endpoints, or `None` for any other request.
pub async fn handle(request: &Request, env: &Env) -> Result<Option<Response>, JsValue> {
    let url = match url::Url::parse(&request.url()) {
        Ok(url) => url,
        Err(_) => return Ok(None),
    };
    let Some(rest) = url.path().strip_prefix(PREFIX) else {
        return Ok(None);
    };
    let Some(token) = env
        .secret(ADMIN_TOKEN)
        .map(|s| s.to_string())
        .or_else(|_| env.var(ADMIN_TOKEN).map(|s| s.to_string()))
        .ok()
        .filter(|t| !t.is_empty())
    else {
        return Ok(None);
    };
    let given = header(&request.headers(), "authorization").unwrap_or_default();
    let given = given.strip_prefix("Bearer ").unwrap_or_default();
    if !crate::reporting::token_matches(given, &token) {
        return error(401, "missing or wrong bearer token").map(Some);
    }
    let method = request.method().to_ascii_uppercase();
    let config = match config::load(env).await {
        Ok(config) => config,
        Err(e) => return error(500, &e.to_string()).map(Some),
    };
    let db = || async { stored::database(env).await };
    let response = match (method.as_str(), rest.split_once('/')) {
        ("POST", None) if rest == "backfills" => {
            let text = JsFuture::from(request.text()?).await?;
            let body: BackfillRequest =
                match serde_json::from_str(&text.as_string().unwrap_or_default()) {
                    Ok(body) => body,
                    Err(e) => {
                        return error(400, &format!("expected {{\"bucket\", \"prefix\"}}: {e}"))
                            .map(Some)
                    }
                };
            match stored::start_backfill(env, &config, &body.bucket, &body.prefix).await {
                Ok((b, p)) => json(202, &serde_json::json!({"backfill": b, "progress": p}))?,
                Err(e) => error(409, &e)?,
            }
        }
        ("GET", Some(("backfills", id))) => {
            let db = match db().await {
                Ok(db) => db,
                Err(e) => return error(500, &e).map(Some),
            };
            match stored::backfill(&db, id).await {
                Ok(Some(b)) => match stored::progress(&db, &b).await {
                    Ok(p) => {
                        let complete = b.listing_done == 1 && p.scanned >= p.listed;
                        json(
                            200,
                            &serde_json::json!({"backfill": b, "progress": p, "complete": complete}),
                        )?
                    }
                    Err(e) => error(500, &e)?,
                },
                Ok(None) => error(404, "no such backfill")?,
                Err(e) => error(500, &e)?,
            }
        }
        ("POST", None) if rest == "retro" => match stored::check_generation(env).await {
            Ok(pass) => json(200, &serde_json::json!({ "pass": pass }))?,
            Err(e) => error(500, &e)?,
        },
        ("GET", Some(("retro", id))) => {
            let db = match db().await {
                Ok(db) => db,
                Err(e) => return error(500, &e).map(Some),
            };
            let row: Result<Option<serde_json::Value>, _> = async {
                db.prepare(
                    "SELECT id, from_generation, to_generation, added, checked, candidates, done FROM retro_passes WHERE id = ?1",
                )
                .bind(&[id.into()])?
                .first(None)
                .await
            }
            .await;
            match row {
                Ok(Some(row)) => json(200, &row)?,
                Ok(None) => error(404, "no such pass")?,
                Err(e) => error(500, &e.to_string())?,
            }
        }
        _ => error(404, "unknown stored-content endpoint")?,
    };
    Ok(Some(response))
}
