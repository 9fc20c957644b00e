//! Files: `getFile`, and downloads from `/file/bot<token>/<path>` of the files users sent.
use actix_web::HttpResponse;
use serde_json::{Map, Value};

use super::{Shared, error, ok, text_param};

pub(super) fn download(shared: &Shared, rest: &str) -> HttpResponse {
    let Some((token, path)) = rest.split_once('/') else {
        return error(404, "Not Found");
    };
    if token != shared.token {
        return error(401, "Unauthorized");
    }
    let known = shared
        .lock()
        .files
        .values()
        .any(|f| f.file_path.as_deref() == Some(path));
    if !known {
        return error(404, "Not Found");
    }
    HttpResponse::Ok()
        .content_type("application/octet-stream")
        .body(format!("emulated content of {path}"))
}

pub(super) fn get_file(shared: &Shared, params: &Map<String, Value>) -> HttpResponse {
    let id = text_param(params, "file_id").unwrap_or_default();
    match shared.lock().files.get(&id) {
        Some(file) => ok(file),
        None => error(400, "Bad Request: invalid file_id"),
    }
}
