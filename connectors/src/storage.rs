//! Feed's own files on object storage: a models home at `FEED_HOME=s3://bucket/prefix`.
//!
//! The store is built as a `type: file` path's is ([`Bucket`]), from the environment only
//! (`AWS_*`, `GOOGLE_*`, `AZURE_*`; there is no connector block), with the same URL checks and
//! the same secret rules: whatever the store says is cleaned of every secret it was built with.

use std::sync::Arc;

use object_store::path::Path as Key;
use object_store::ObjectStore;

use crate::bucket::{is_url, Bucket};
use crate::ConnectorError;

/// A bucket and a key prefix under it, for the engine's own objects.
#[derive(Debug, Clone)]
pub struct StorageRoot {
    bucket: Bucket,
}

impl StorageRoot {
    /// Whether `location` is a storage URL (`scheme://…`) rather than a local path.
    pub fn is_url(location: &str) -> bool {
        is_url(location)
    }

    /// Parses `url` and builds its client from the environment, without a request. `name` is
    /// what the location is called in messages (`FEED_HOME`).
    pub fn open(name: &str, url: &str) -> Result<Self, ConnectorError> {
        let url = url.trim_end_matches('/');
        Ok(Self {
            bucket: Bucket::new(name, &format!("{url}/"), None)?,
        })
    }

    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.bucket.store()
    }

    /// The prefix under the bucket (no trailing `/`; empty for the whole bucket).
    pub fn prefix(&self) -> &Key {
        self.bucket.key()
    }

    /// The URL as written (no secret: credentials never go in it).
    pub fn url(&self) -> &str {
        self.bucket.url().trim_end_matches('/')
    }

    /// A store's refusal in one line: the service's code and message, what to check (the
    /// environment variables, since a home has no connector block), secrets cleaned out; and
    /// whether the user's set-up is at fault (credentials or permissions), not the service.
    pub fn explain(&self, e: &object_store::Error) -> (String, bool) {
        let refused = matches!(
            e,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        );
        match self.bucket.source_error(e) {
            ConnectorError::Source {
                field,
                message,
                hint,
                ..
            } => {
                let check = match field.as_str() {
                    "s3.secret_access_key" | "s3.access_key_id" => {
                        "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the GOOGLE_* / \
                         AZURE_* credentials)"
                            .to_string()
                    }
                    "s3.endpoint" => "check AWS_ENDPOINT_URL and that the service is running and \
                                      reachable from this machine"
                        .to_string(),
                    _ if hint.contains("grant") => "these credentials may not use this bucket: \
                         grant them s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject \
                         on it"
                        .to_string(),
                    _ => "check the bucket and prefix in the URL".to_string(),
                };
                let user =
                    refused || field.starts_with("s3.access") || field.starts_with("s3.secret");
                (
                    format!("{message} ({check})"),
                    user || hint.contains("grant"),
                )
            }
            other => (self.bucket.clean(&other.to_string()), false),
        }
    }

    /// `text` without any of the secrets the store was built with.
    pub fn clean(&self, text: &str) -> String {
        self.bucket.clean(text)
    }
}
