//! `/console`: a web console over the same API and keys as every other client, its three files
//! embedded in the binary (no build step: plain HTML, CSS and JavaScript). The pages themselves
//! hold no data, so they need no key; every call they make does.

use axum::http::header;
use axum::response::IntoResponse;

const INDEX: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/app.js");
const STYLE: &str = include_str!("console/app.css");

/// `GET /console`: the page.
pub async fn index() -> impl IntoResponse {
    page("text/html; charset=utf-8", INDEX)
}

/// `GET /console/app.js`.
pub async fn script() -> impl IntoResponse {
    page("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /console/app.css`.
pub async fn style() -> impl IntoResponse {
    page("text/css; charset=utf-8", STYLE)
}

fn page(media: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, media),
            // The files change with the binary: a browser asks again after an upgrade.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // Only its own files and its own API: no inline script or style, nothing elsewhere.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; frame-ancestors 'none'",
            ),
        ],
        body,
    )
}
