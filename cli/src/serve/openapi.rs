//! `GET /openapi.json`: an OpenAPI 3.0 description of every endpoint of
//! `hashgate serve`, so clients can be generated and requests checked.
//! The document is written here by hand next to the code it describes;
//! `tests/serve_openapi.rs` calls every path it lists on a running server
//! and checks each answer against the schema given for its status.

use hyper::StatusCode;
use serde_json::{json, Value};

use super::api::{json as answer_json, Body};
use super::error::ApiError;

/// The document.
pub fn document() -> Value {
    let hex = |digits: u32| json!({"type": "string", "pattern": format!("^[0-9a-f]{{{digits}}}$")});
    let error = json!({
        "type": "object",
        "required": ["error", "kind"],
        "properties": {"error": {"type": "string"}, "kind": {"type": "string"}}
    });
    let match_line = json!({
        "type": "object",
        "required": ["list", "type", "hash", "distance", "id"],
        "properties": {
            "list": {"type": "string"},
            "type": {"type": "string", "enum": ["pdq", "md5", "sha1", "sha256", "vec72"]},
            "hash": {"type": "string"},
            "distance": {"type": "integer", "minimum": 0},
            "id": {"type": "string", "nullable": true},
            "variant": {"type": "string"}
        }
    });
    let match_output = json!({
        "type": "object",
        "required": ["query", "matches"],
        "properties": {"query": {"type": "string"}, "matches": {"type": "array", "items": match_line}}
    });
    let hash_line = json!({
        "type": "object",
        "required": ["file", "width", "height", "pdq", "quality", "md5", "sha1", "sha256"],
        "properties": {
            "file": {"type": "string"}, "width": {"type": "integer"}, "height": {"type": "integer"},
            "pdq": hex(64), "quality": {"type": "integer", "minimum": 0, "maximum": 100},
            "md5": hex(32), "sha1": hex(40), "sha256": hex(64)
        }
    });
    let banks = json!({"type": "array", "items": {"type": "string"}});
    let errors = |codes: &[&str]| -> Value {
        let mut out = serde_json::Map::new();
        for code in codes {
            out.insert(
                (*code).to_owned(),
                json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
            );
        }
        Value::Object(out)
    };
    let ok = |schema: Value, extra: Value| -> Value {
        let mut responses = json!({"200": {"description": "ok", "content": {"application/json": {"schema": schema}}}});
        if let (Some(map), Value::Object(extra)) = (responses.as_object_mut(), extra) {
            map.extend(extra);
        }
        responses
    };
    let image_body = json!({
        "required": true,
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "image/*": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {"schema": {"type": "object", "required": ["photo"],
                "properties": {"photo": {"type": "string", "format": "binary"}}}}
        }
    });
    let raw_image = json!({
        "required": true,
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "image/*": {"schema": {"type": "string", "format": "binary"}}
        }
    });
    let query = |name: &str, required: bool, schema: Value, description: &str| json!({"name": name, "in": "query", "required": required, "schema": schema, "description": description});
    let signal_params = json!([
        query(
            "signal_type",
            true,
            json!({"type": "string", "enum": ["pdq", "md5", "video_md5", "sha1", "sha256"]}),
            "hash type"
        ),
        query("signal", true, json!({"type": "string"}), "the hash, hex"),
        query(
            "banks",
            false,
            json!({"type": "string"}),
            "comma-separated lists to look in"
        )
    ]);
    let match_params = json!([
        query(
            "threshold",
            false,
            json!({"type": "integer", "minimum": 0, "maximum": 31}),
            "largest PDQ distance"
        ),
        query(
            "lists",
            false,
            json!({"type": "string"}),
            "comma-separated lists"
        )
    ]);
    let bearer = json!([{"bearer": []}]);
    let match_get_params: Vec<Value> = std::iter::once(query(
        "pdq",
        false,
        hex(64),
        "a PDQ hash (or md5, sha1, sha256, vec72: exactly one)",
    ))
    .chain(match_params.as_array().cloned().unwrap_or_default())
    .collect();
    let raw_lookup_params: Vec<Value> = signal_params
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .chain(std::iter::once(query(
            "include_distance",
            false,
            json!({"type": "boolean"}),
            "answer content ids with distances",
        )))
        .collect();
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "hashgate serve",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Hash images and match them against hash lists (docs/service.md). /h/ and /m/ answer in the shapes of HMA's REST API."
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": error}
        },
        "paths": {
            "/healthz": {"get": {"summary": "liveness and the index loaded", "responses": ok(json!({
                "type": "object", "required": ["status", "index_records", "index_loaded_at"],
                "properties": {"status": {"type": "string"}, "index_records": {"type": "integer"}, "index_loaded_at": {"type": "number"}}
            }), json!({}))}},
            "/metrics": {"get": {"summary": "Prometheus text", "security": bearer, "responses": {
                "200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
                "401": errors(&["401"])["401"]
            }}},
            "/openapi.json": {"get": {"summary": "this document", "responses": {"200": {"description": "OpenAPI 3", "content": {"application/json": {"schema": {"type": "object", "required": ["openapi", "paths"]}}}}}}},
            "/v1/hash": {"post": {"summary": "hash an image (the `hashgate hash` line)", "security": bearer,
                "parameters": [query("dihedral", false, json!({"type": "boolean"}), "the 8 orientations")],
                "requestBody": raw_image,
                "responses": ok(hash_line, errors(&["400", "401", "413", "415", "422"]))}},
            "/v1/match": {
                "get": {"summary": "match one hash", "security": bearer,
                    "parameters": match_get_params,
                    "responses": ok(match_output.clone(), errors(&["400", "401", "429"]))},
                "post": {"summary": "match an image", "security": bearer,
                    "parameters": match_params,
                    "requestBody": raw_image,
                    "responses": ok(match_output, errors(&["400", "401", "413", "415", "422", "429"]))}
            },
            "/h/hash": {"post": {"summary": "HMA: hash an image", "security": bearer,
                "requestBody": image_body,
                "responses": ok(json!({"type": "object", "required": ["pdq", "md5", "sha1", "sha256"],
                    "properties": {"pdq": hex(64), "md5": hex(32), "sha1": hex(40), "sha256": hex(64)}}),
                    errors(&["400", "401", "413", "415", "422", "429"]))}},
            "/m/raw_lookup": {"get": {"summary": "HMA: the entries a hash matches", "security": bearer,
                "parameters": raw_lookup_params,
                "responses": ok(json!({"type": "object", "required": ["matches"], "properties": {"matches": {"type": "array"}}}), errors(&["400", "401", "429"]))}},
            "/m/lookup": {
                "get": {"summary": "HMA: the banks a hash matches", "security": bearer,
                    "parameters": signal_params,
                    "responses": ok(banks.clone(), errors(&["400", "401", "429"]))},
                "post": {"summary": "HMA: the banks an image matches, per signal type", "security": bearer,
                    "parameters": [query("banks", false, json!({"type": "string"}), "comma-separated lists to look in")],
                    "requestBody": image_body,
                    "responses": ok(json!({"type": "object", "required": ["pdq", "md5", "sha1", "sha256"],
                        "properties": {"pdq": banks, "md5": banks, "sha1": banks, "sha256": banks}}),
                        errors(&["400", "401", "413", "415", "422", "429"]))}
            }
        }
    })
}

/// `GET /openapi.json`.
pub fn answer() -> Result<hyper::Response<Body>, ApiError> {
    answer_json(StatusCode::OK, &document())
}
