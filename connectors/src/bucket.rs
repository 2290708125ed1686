//! `type: file` on object storage: `s3://bucket/key`, `gs://bucket/key`, `az://container/key`.
//!
//! The store is built from the connector's `s3:` block and the environment (the `AWS_*`,
//! `GOOGLE_*` and `AZURE_*` variables the `object_store` crate reads) and registered in the
//! session for its bucket, so that DataFusion lists and reads the objects itself (Parquet by byte
//! ranges, never a whole download first). Building touches no network; [`Bucket::prepare`] lists
//! once, so that a missing key, a refused signature or a bucket without access fails validation,
//! not training.

use std::sync::Arc;
use std::time::Duration;

use datafusion::prelude::SessionContext;
use futures::StreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::path::Path as Key;
use object_store::{ClientConfigKey, ObjectStore, ObjectStoreExt, RetryConfig};
use url::Url;

use crate::env::{self, Secret};
use crate::{ConnectorError, FileFormat, S3Config};

/// Environment variables holding secrets that `object_store` reads: whatever a store says is
/// cleaned of their values too.
const SECRET_VARS: [&str; 8] = [
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_CLIENT_SECRET",
    "AZURE_STORAGE_TOKEN",
];

/// What to check when the store refuses the credentials.
const CREDENTIALS: &str = "check `s3.access_key_id` and the secret that `s3.secret_access_key` \
     names (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY when the block leaves them out)";
/// What to check when the credentials are good but the bucket is not theirs to read.
const NO_ACCESS: &str = "these credentials may not read this bucket: grant them s3:ListBucket \
     and s3:GetObject on it (storage.objects.list/get, or a Storage Blob Data Reader role), or \
     use credentials that have them";
/// What to check when nothing answers.
const UNREACHABLE: &str = "check `s3.endpoint` (or AWS_ENDPOINT_URL) and that the service is \
     running and reachable from this machine";
/// What to check when the key or bucket is not there.
const MISSING: &str = "check the bucket and the key in `path`: a folder is a prefix ending in \
     `/` (`s3://bucket/events/`), whose data objects lie directly under it";

/// Whether a connector path is a URL (`scheme://...`) rather than a local path.
pub(crate) fn is_url(path: &str) -> bool {
    path.split_once("://").is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    })
}

/// What a storage path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// One object, or a prefix written without its `/` (found out by [`Bucket::prepare`]).
    Object,
    /// Every data object under a prefix (written with a trailing `/`, or the whole bucket).
    Prefix,
}

/// A resolved storage location: the store to read it with and what the path names.
#[derive(Clone)]
pub(crate) struct Bucket {
    id: String,
    /// The path as written: it holds no secret (credentials never go in the URL).
    url: String,
    /// `scheme://bucket`: what the store is registered under in the session.
    root: Url,
    /// The key, or the prefix (no trailing `/`), decoded.
    key: Key,
    shape: Shape,
    store: Arc<dyn ObjectStore>,
    /// Secrets to clean from messages (the block's, and the environment's).
    secrets: Vec<Secret>,
}

impl std::fmt::Debug for Bucket {
    // The store's own Debug may show its configuration, credentials included.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket")
            .field("url", &self.url)
            .field("shape", &self.shape)
            .finish_non_exhaustive()
    }
}

/// What [`Bucket::prepare`] found: the URL DataFusion lists, and the extension it keeps.
pub(crate) struct Prepared {
    pub url: String,
    pub extension: String,
}

impl Bucket {
    /// Parses the URL and builds its store from `s3` and the environment, without a request.
    pub(crate) fn new(id: &str, path: &str, s3: Option<&S3Config>) -> Result<Self, ConnectorError> {
        let config_err = |field: &str, message: String| ConnectorError::Config {
            connector: id.to_string(),
            field: field.to_string(),
            message,
        };
        let url = Url::parse(path).map_err(|e| {
            config_err(
                "path",
                format!("`{path}` is not a valid storage URL ({e}); write s3://bucket/key"),
            )
        })?;
        let scheme = url.scheme();
        if !matches!(scheme, "s3" | "gs" | "az") {
            return Err(config_err(
                "path",
                format!(
                    "`{scheme}://` is not a storage Feed reads; use a local path, s3://, gs:// \
                     or az://"
                ),
            ));
        }
        let bucket = url.host_str().unwrap_or_default();
        if bucket.is_empty() {
            return Err(config_err(
                "path",
                format!("`{path}` names no bucket; write {scheme}://bucket/key"),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Not echoed: what stands before the `@` may be a secret.
            return Err(config_err(
                "path",
                format!(
                    "holds credentials before the bucket; a storage path is \
                     {scheme}://bucket/key, and credentials go in `s3:` or the environment"
                ),
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(config_err(
                "path",
                format!(
                    "`{path}` has a query or a fragment; a storage path is {scheme}://bucket/key"
                ),
            ));
        }
        let raw_key = url.path().trim_start_matches('/');
        if raw_key.contains(['*', '?', '[']) {
            // DataFusion expands globs on local paths only: a remote pattern would be read as
            // one literal key.
            return Err(config_err(
                "path",
                format!(
                    "`{path}` is a glob; on object storage give one object, or a prefix ending \
                     in `/` (every object of the format under it is read)"
                ),
            ));
        }
        let shape = if raw_key.is_empty() || raw_key.ends_with('/') {
            Shape::Prefix
        } else {
            Shape::Object
        };
        // Decoded as DataFusion decodes the same URL, so that the check looks where it reads.
        let key = Key::from_url_path(raw_key.trim_end_matches('/'))
            .map_err(|e| config_err("path", format!("`{path}` is not a valid key: {e}")))?;
        if s3.is_some() && scheme != "s3" {
            return Err(config_err(
                "s3",
                format!(
                    "applies only to s3:// paths; {scheme}:// reads its credentials from the \
                     environment ({})",
                    if scheme == "gs" {
                        "GOOGLE_*"
                    } else {
                        "AZURE_*"
                    }
                ),
            ));
        }
        let mut secrets: Vec<Secret> = SECRET_VARS
            .iter()
            .filter_map(|v| std::env::var(v).ok())
            .filter(|v| !v.is_empty())
            .map(Secret::from_environment)
            .collect();
        let root = Url::parse(&format!("{scheme}://{bucket}"))
            .map_err(|e| config_err("path", format!("`{path}` names no valid bucket: {e}")))?;
        // A missing server fails in seconds, not after object_store's default three minutes of
        // retries; reads still retry what a busy store refuses.
        let retry = RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(20),
            ..RetryConfig::default()
        };
        // Only the connect timeout is set: the other client options stay as `from_env` read
        // them (proxies, certificates, `AWS_ALLOW_HTTP`).
        let connect = (ClientConfigKey::ConnectTimeout, "5s");
        let built = match scheme {
            "s3" => {
                let block = s3.cloned().unwrap_or_default();
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
                let endpoint = match &block.endpoint {
                    Some(e) => Some(env::expand(id, "s3.endpoint", e)?),
                    None => std::env::var("AWS_ENDPOINT_URL")
                        .or_else(|_| std::env::var("AWS_ENDPOINT"))
                        .ok(),
                };
                if let Some(endpoint) = &endpoint {
                    Url::parse(endpoint).map_err(|e| {
                        config_err(
                            "s3.endpoint",
                            format!("`{endpoint}` is not a URL ({e}); write http://host:port"),
                        )
                    })?;
                    builder = builder.with_endpoint(endpoint.clone());
                }
                let plain = endpoint
                    .as_deref()
                    .is_some_and(|e| e.starts_with("http://"));
                if let Some(region) = &block.region {
                    builder = builder.with_region(env::expand(id, "s3.region", region)?);
                }
                if let Some(key_id) = &block.access_key_id {
                    builder =
                        builder.with_access_key_id(env::expand(id, "s3.access_key_id", key_id)?);
                }
                if let Some(secret) = &block.secret_access_key {
                    let secret = env::secret(id, "s3.secret_access_key", secret)?;
                    builder = builder.with_secret_access_key(secret.expose());
                    secrets.push(secret);
                }
                if let Some(token) = &block.session_token {
                    let token = env::secret(id, "s3.session_token", token)?;
                    builder = builder.with_token(token.expose());
                    secrets.push(token);
                }
                if plain {
                    builder = builder.with_allow_http(true);
                }
                builder
                    .with_config(AmazonS3ConfigKey::Client(connect.0), connect.1)
                    .with_retry(retry)
                    .build()
                    .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            }
            "gs" => GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(bucket)
                .with_retry(retry)
                .with_config(GoogleConfigKey::Client(connect.0), connect.1)
                .build()
                .map(|s| Arc::new(s) as Arc<dyn ObjectStore>),
            _ => MicrosoftAzureBuilder::from_env()
                .with_container_name(bucket)
                .with_retry(retry)
                .with_config(AzureConfigKey::Client(connect.0), connect.1)
                .build()
                .map(|s| Arc::new(s) as Arc<dyn ObjectStore>),
        };
        let store = built.map_err(|e| {
            let message = clean(&secrets, &e.to_string());
            config_err(
                if scheme == "s3" { "s3" } else { "path" },
                format!("cannot set up the {scheme}:// client: {message}"),
            )
        })?;
        Ok(Self {
            id: id.to_string(),
            url: path.to_string(),
            root,
            key,
            shape,
            store,
            secrets,
        })
    }

    /// `text` without any of the secrets this store was built with.
    pub(crate) fn clean(&self, text: &str) -> String {
        clean(&self.secrets, text)
    }

    pub(crate) fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// The key, or the prefix without its trailing `/`.
    pub(crate) fn key(&self) -> &Key {
        &self.key
    }

    /// The path as written, for messages.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The last segment of the path (`ratings.csv`, `events.parquet`), whose extension may tell the
    /// format.
    pub(crate) fn file_name(&self) -> &str {
        self.url
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
    }

    /// Registers the store in the session and checks, with one listing, that the path names
    /// data of `format` these credentials may read. Returns what DataFusion should list.
    pub(crate) async fn prepare(
        &self,
        ctx: &SessionContext,
        format: FileFormat,
    ) -> Result<Prepared, ConnectorError> {
        ctx.register_object_store(&self.root, self.store.clone());
        // The path as written, as a folder: DataFusion decodes it as `key` was decoded.
        let folder = format!("{}/", self.url.trim_end_matches('/'));
        match self.shape {
            Shape::Object => {
                match self.store.head(&self.key).await {
                    Ok(_) => {
                        return Ok(Prepared {
                            url: self.url.clone(),
                            extension: String::new(),
                        })
                    }
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(
                        e @ (object_store::Error::PermissionDenied { .. }
                        | object_store::Error::Unauthenticated { .. }),
                    ) => {
                        // A HEAD refusal has no body to say why (a bad signature or no access):
                        // a listing's refusal does.
                        let said = self.store.list(Some(&self.key)).next().await;
                        return Err(match said {
                            Some(Err(listed)) => self.source_error(&listed),
                            _ => self.source_error(&e),
                        });
                    }
                    Err(e) => return Err(self.source_error(&e)),
                }
                // A prefix written without its slash.
                match self.first_data_object(format).await? {
                    Some(found) => Ok(Prepared {
                        url: folder,
                        extension: extension_of(&found),
                    }),
                    None => Err(self.missing(format!(
                        "no object `{}` in the bucket, and no {} object under `{}/`",
                        self.key,
                        format_name(format),
                        self.key
                    ))),
                }
            }
            Shape::Prefix => match self.first_data_object(format).await? {
                Some(found) => Ok(Prepared {
                    url: folder,
                    extension: extension_of(&found),
                }),
                None => Err(self.missing(format!(
                    "no {} object directly under this prefix",
                    format_name(format)
                ))),
            },
        }
    }

    /// The first object directly under the prefix `key` (in the store's key order; DataFusion
    /// skips sub-folders too) that is data of `format`, hidden `.x` and `_SUCCESS`-style
    /// markers skipped. Lists until one is found: the whole prefix when none is.
    async fn first_data_object(
        &self,
        format: FileFormat,
    ) -> Result<Option<String>, ConnectorError> {
        let prefix = (!self.key.as_ref().is_empty()).then_some(&self.key);
        let mut listing = self.store.list(prefix);
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.source_error(&e))?;
            let key = meta.location.to_string();
            let rest = key
                .strip_prefix(self.key.as_ref())
                .unwrap_or(&key)
                .trim_start_matches('/');
            if rest.contains('/') || rest.starts_with(['.', '_']) {
                continue;
            }
            if crate::file::format_of(std::path::Path::new(rest)) == Some(format) {
                return Ok(Some(key));
            }
        }
        Ok(None)
    }

    fn missing(&self, message: String) -> ConnectorError {
        ConnectorError::Source {
            connector: self.id.clone(),
            field: "path".into(),
            location: self.url.clone(),
            message,
            hint: MISSING.into(),
        }
    }

    /// A store's refusal, blamed on the field to check, with the service's own code and
    /// message (S3's XML body reduced to them), and every secret cleaned out.
    pub(crate) fn source_error(&self, e: &object_store::Error) -> ConnectorError {
        let text = chain(e);
        let code = between(&text, "<Code>", "</Code>");
        let said = match (code, between(&text, "<Message>", "</Message>")) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.to_string(),
            _ => text.split_whitespace().collect::<Vec<_>>().join(" "),
        };
        let (field, hint) = match (e, code) {
            (_, Some("SignatureDoesNotMatch")) => ("s3.secret_access_key", CREDENTIALS),
            (_, Some("InvalidAccessKeyId" | "InvalidToken" | "ExpiredToken")) => {
                ("s3.access_key_id", CREDENTIALS)
            }
            (_, Some("AccessDenied" | "AllAccessDisabled" | "AccountProblem")) => {
                ("path", NO_ACCESS)
            }
            (object_store::Error::PermissionDenied { .. }, _) => ("path", NO_ACCESS),
            (object_store::Error::Unauthenticated { .. }, _) => ("s3.access_key_id", CREDENTIALS),
            (object_store::Error::NotFound { .. }, _) => ("path", MISSING),
            _ if unreachable(&text) => ("s3.endpoint", UNREACHABLE),
            _ => ("path", MISSING),
        };
        ConnectorError::Source {
            connector: self.id.clone(),
            field: field.into(),
            location: self.url.clone(),
            message: clean(&self.secrets, &said),
            hint: hint.into(),
        }
    }
}

/// An error and its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// Whether an error's text says that no connection was made.
fn unreachable(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    ["connect", "dns error", "timed out", "connection refused"]
        .iter()
        .any(|w| t.contains(w))
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

fn clean(secrets: &[Secret], text: &str) -> String {
    secrets.iter().fold(text.to_string(), |t, s| s.redact(&t))
}

fn extension_of(key: &str) -> String {
    key.rsplit('/')
        .next()
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, ext)| format!(".{ext}"))
        .unwrap_or_default()
}

fn format_name(format: FileFormat) -> &'static str {
    match format {
        FileFormat::Csv => "CSV",
        FileFormat::Tsv => "TSV",
        FileFormat::Parquet => "Parquet",
        FileFormat::Ndjson => "NDJSON",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(path: &str, s3: Option<S3Config>) -> String {
        match Bucket::new("t", path, s3.as_ref()) {
            Ok(b) => panic!("{path} was accepted: {b:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn urls_are_told_from_local_paths() {
        for url in [
            "s3://b/k.csv",
            "gs://b/",
            "az://c/x",
            "ftp://h/x",
            "s3a://b",
        ] {
            assert!(is_url(url), "{url}");
        }
        for path in ["data/x.csv", "/abs/x.csv", "C:/x", "weird:name.csv", "://x"] {
            assert!(!is_url(path), "{path}");
        }
    }

    #[test]
    fn malformed_urls_say_what_to_write() {
        assert!(err("s3:///k.csv", None).contains("names no bucket"));
        assert!(err("ftp://h/x.csv", None).contains("not a storage Feed reads"));
        assert!(err("s3://b/x.csv?versionId=1", None).contains("query"));
        assert!(err("s3://user@b/x.csv", None).contains("credentials go in `s3:`"));
        assert!(err("s3://b/x.csv#frag", None).contains("fragment"));
        assert!(err("gs://b/x.csv", Some(S3Config::default())).contains("applies only to s3://"));
        let literal = S3Config {
            secret_access_key: Some("hunter2".into()),
            ..S3Config::default()
        };
        let e = err("s3://b/x.csv", Some(literal));
        assert!(
            e.contains("s3.secret_access_key") && !e.contains("hunter2"),
            "{e}"
        );
        let endpoint = S3Config {
            endpoint: Some("not a url".into()),
            ..S3Config::default()
        };
        assert!(err("s3://b/x.csv", Some(endpoint)).contains("s3.endpoint"));
    }

    #[test]
    fn shapes_and_decoded_keys() {
        let b = Bucket::new("t", "s3://b/events/", None).unwrap();
        assert_eq!((b.shape, b.key.as_ref()), (Shape::Prefix, "events"));
        let b = Bucket::new("t", "s3://b", None).unwrap();
        assert_eq!((b.shape, b.key.as_ref()), (Shape::Prefix, ""));
        let b = Bucket::new("t", "s3://b/a%20b/~u.csv", None).unwrap();
        assert_eq!((b.shape, b.key.as_ref()), (Shape::Object, "a b/~u.csv"));
        assert_eq!(b.file_name(), "~u.csv");
        let debug = format!("{b:?}");
        assert!(debug.starts_with("Bucket { url:"), "{debug}");
        let e = err("s3://b/events/*.parquet", None);
        assert!(e.contains("is a glob"), "{e}");
        let e = err("s3://AKIA:hunter2@b/x.csv", None);
        assert!(
            e.contains("holds credentials") && !e.contains("hunter2"),
            "{e}"
        );
    }

    #[test]
    fn service_codes_are_read_from_s3_bodies() {
        let body = "Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\"?>\
                    <Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we \
                    calculated does not match</Message></Error>";
        assert_eq!(
            between(body, "<Code>", "</Code>"),
            Some("SignatureDoesNotMatch")
        );
        assert!(unreachable(
            "error sending request: client error (Connect): Connection refused"
        ));
        assert_eq!(extension_of("a/b/part-0.snappy.parquet"), ".parquet");
    }
}
