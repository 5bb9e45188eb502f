//! The storage of a lake: where it lives, how partitions are written, and the request manifest.
//!
//! A lake is opened from a URL ([`Lake::open`]): a plain path or `file://…` for the local file
//! system, `s3://bucket/prefix` for S3 and S3-compatible servers. Both go through one
//! [`ObjectStore`]; they differ only in how a partition write is guarded against a concurrent
//! writer (see [`mod@write`]).

pub mod example;
pub mod guard;
pub mod layout;
pub mod lease;
pub mod manifest;
pub mod micro;
pub mod parquet_io;
pub mod read;
pub mod repair;
pub mod scope;
pub mod validate;
pub mod write;

use crate::error::{Error, Result};
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use std::path::PathBuf;
use std::sync::Arc;

/// The lake used when none is named: `TWSLAKE_LAKE`, else `./lake`.
pub fn default_url() -> String {
    std::env::var("TWSLAKE_LAKE").unwrap_or_else(|_| "./lake".to_string())
}

/// Where a lake lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A folder on the local file system (absolute).
    Local(PathBuf),
    /// A bucket and key prefix on S3 (no leading or trailing `/` in the prefix).
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix of the lake root, possibly empty.
        prefix: String,
    },
}

impl Location {
    /// Parses a lake URL: a path, `file://PATH` or `s3://BUCKET[/PREFIX]`.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |reason: &str| Error::bad_input("lake URL", url, reason);
        let url = url.trim();
        if url.is_empty() {
            return Err(bad("empty; give a folder, file://PATH or s3://BUCKET/PREFIX"));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket; write s3://BUCKET/PREFIX"));
            }
            let prefix = prefix.trim_matches('/').to_string();
            if prefix.split('/').any(|s| s == ".." || s == ".") {
                return Err(bad("'.' and '..' are not allowed in an S3 prefix"));
            }
            return Ok(Location::S3 { bucket: bucket.to_string(), prefix });
        }
        let path = match url.strip_prefix("file://") {
            // `file://` alone used to mean the current folder, silently.
            Some("") => return Err(bad("file:// names no folder; write file:///ABSOLUTE/PATH or a plain path")),
            Some(p) => p,
            None if url.contains("://") => return Err(bad("unsupported scheme; use a path, file:// or s3://")),
            None => url,
        };
        let path = PathBuf::from(path);
        let abs = if path.is_absolute() {
            path
        } else {
            std::env::current_dir().map_err(|e| Error::Io { path: path.clone(), source: e })?.join(path)
        };
        Ok(Location::Local(normalize(&abs)))
    }

    /// The URL polars and other engines use for an object of the lake.
    pub fn url_of(&self, rel: &str) -> String {
        match self {
            Location::Local(root) => format!("{}/{rel}", root.display()),
            Location::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}/{rel}"),
            Location::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}/{rel}"),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(root) => write!(f, "{}", root.display()),
            Location::S3 { .. } => f.write_str(self.url_of("").trim_end_matches('/')),
        }
    }
}

/// Removes `.` and resolves `..` lexically, so the lake root is one stable absolute path.
fn normalize(p: &std::path::Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// An open lake.
#[derive(Clone, Debug)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    location: Location,
    s3_config: Vec<(String, String)>,
    /// Logs this handle wrote per symbol since its last compaction of that symbol.
    logs_written: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    /// Logs per symbol after which this handle compacts that symbol's manifest.
    compact_after: usize,
    /// Whether `_tmp/` residue was swept through this handle ([`guard`]).
    tmp_swept: Arc<std::sync::atomic::AtomicBool>,
}

/// The standard AWS settings read from the environment, for object_store and polars alike.
fn s3_env_config() -> Vec<(String, String)> {
    let mut cfg = Vec::new();
    let mut set = |key: &str, vars: &[&str]| {
        if let Some(v) = vars.iter().find_map(|v| std::env::var(v).ok()).filter(|v| !v.is_empty()) {
            cfg.push((key.to_string(), v));
        }
    };
    set("aws_region", &["AWS_REGION", "AWS_DEFAULT_REGION"]);
    set("aws_access_key_id", &["AWS_ACCESS_KEY_ID"]);
    set("aws_secret_access_key", &["AWS_SECRET_ACCESS_KEY"]);
    set("aws_session_token", &["AWS_SESSION_TOKEN"]);
    set("aws_endpoint_url", &["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]);
    set("aws_allow_http", &["AWS_ALLOW_HTTP"]);
    cfg
}

/// The manifest compaction threshold: [`manifest::COMPACT_AFTER_LOGS`], or
/// `TWSLAKE_COMPACT_AFTER_LOGS` (a whole number from 1) when set — a setting for tests that
/// must reach compaction quickly (the crash tests), not a tuning knob.
fn compact_after_logs() -> Result<usize> {
    const VAR: &str = "TWSLAKE_COMPACT_AFTER_LOGS";
    match std::env::var(VAR) {
        Err(_) => Ok(manifest::COMPACT_AFTER_LOGS),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(Error::bad_input(VAR, v, "must be a whole number from 1 (logs per symbol between compactions)")),
        },
    }
}

/// Refuses a URL-shaped S3 setting that is not an `http(s)://` URL with a host: object_store
/// accepts `localhost:9000` when building the store and then panics when it signs the first
/// request. The error names the variable (or storage option) the value came from; a value with
/// user info (`user:secret@`) is not echoed.
fn check_s3_url(key: AmazonS3ConfigKey, name: &str, value: &str, options: &[(&str, &str)]) -> Result<()> {
    use AmazonS3ConfigKey as K;
    let vars: &[&'static str] = match key {
        K::Endpoint => &["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"],
        K::S3Endpoint => &["AWS_ENDPOINT_URL_S3"],
        K::MetadataEndpoint => &["AWS_METADATA_ENDPOINT"],
        K::StsEndpoint => &["AWS_ENDPOINT_URL_STS"],
        K::ContainerCredentialsFullUri => &["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
        _ => return Ok(()),
    };
    let ok = url::Url::parse(value.trim())
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()));
    if ok {
        return Ok(());
    }
    let from_option = options.iter().any(|(k, v)| *k == name && *v == value);
    let what: &'static str = match vars.iter().find(|v| std::env::var(v).is_ok_and(|x| x == value)) {
        Some(var) if !from_option => var,
        _ => "S3 storage option (endpoint URL)",
    };
    let shown = if value.contains('@') { "<hidden: it holds user info>".to_string() } else { value.to_string() };
    let why = format!(
        "the S3 setting {name} must be a URL with a scheme and a host: add http:// (a local or LAN server) \
         or https://, e.g. http://localhost:9000"
    );
    Err(Error::bad_input(what, shown, why))
}

/// How a lake is opened: its URL, whether a missing local folder is created, and S3 settings
/// over the environment's ([`Lake::builder`]).
#[derive(Debug, Clone)]
pub struct LakeBuilder {
    url: String,
    create: bool,
    s3: Vec<(String, String)>,
}

impl LakeBuilder {
    /// Refuses a missing local folder instead of creating it (commands that only read).
    pub fn existing(mut self) -> Self {
        self.create = false;
        self
    }

    /// S3 settings that override the environment's (polars' untyped keys: `aws_endpoint_url`,
    /// `aws_region`, …); given for a local lake, they are refused, naming them.
    pub fn s3_options<K: AsRef<str>, V: AsRef<str>>(mut self, options: &[(K, V)]) -> Self {
        self.s3 = options.iter().map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string())).collect();
        self
    }

    /// Opens the lake.
    pub fn open(self) -> Result<Lake> {
        let location = Location::parse(&self.url)?;
        if let (Location::Local(_), Some((key, _))) = (&location, self.s3.first()) {
            let why = format!("storage options (here {key:?}) apply to s3:// lakes only; drop them for a local folder");
            return Err(Error::bad_input("lake URL", &self.url, why));
        }
        let s3: Vec<(&str, &str)> = self.s3.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Lake::open_location_with(location, self.create, &s3)
    }
}

impl Lake {
    /// A builder for the lake at `url` (a folder, `file://PATH` or `s3://BUCKET/PREFIX`: see
    /// [`Location::parse`]); by default a missing local folder is created.
    ///
    /// S3 is configured from the standard AWS environment: `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ENDPOINT_URL` (an `http://` endpoint
    /// implies `AWS_ALLOW_HTTP=true`), overridden by [`LakeBuilder::s3_options`].
    pub fn builder(url: &str) -> LakeBuilder {
        LakeBuilder { url: url.to_string(), create: true, s3: Vec::new() }
    }

    /// Opens (creating if needed) the lake at `url`: `Lake::builder(url).open()`.
    pub fn open(url: &str) -> Result<Self> {
        Self::builder(url).open()
    }

    fn open_location_with(location: Location, create: bool, extra: &[(&str, &str)]) -> Result<Self> {
        let mut s3_config = match &location {
            Location::S3 { .. } => s3_env_config(),
            Location::Local(_) => Vec::new(),
        };
        if let Location::S3 { .. } = &location {
            s3_config.retain(|(k, _)| !extra.iter().any(|(o, _)| o == k));
            s3_config.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            // An http:// endpoint is a deliberate choice (a loopback or LAN server): allow it.
            let http = s3_config.iter().any(|(k, v)| k == "aws_endpoint_url" && v.starts_with("http://"));
            if http && !s3_config.iter().any(|(k, _)| k == "aws_allow_http") {
                s3_config.push(("aws_allow_http".into(), "true".into()));
            }
        }
        let store: Arc<dyn ObjectStore> = match &location {
            Location::Local(root) => {
                if !root.is_dir() {
                    if !create {
                        let msg = "no lake there: check the path, or create one with `twslake demo` or `twslake setup`";
                        return Err(Error::bad_input("lake URL", root.display().to_string(), msg));
                    }
                    std::fs::create_dir_all(root).map_err(|e| Error::Io { path: root.clone(), source: e })?;
                }
                let fs = LocalFileSystem::new_with_prefix(root)
                    .map_err(|e| Error::storage(root.display(), e))?
                    .with_automatic_cleanup(true);
                Arc::new(fs)
            }
            Location::S3 { bucket, prefix } => {
                let mut b = AmazonS3Builder::new().with_bucket_name(bucket);
                for (k, v) in &s3_config {
                    let key: AmazonS3ConfigKey = k.parse().map_err(|e| Error::storage(k, e))?;
                    check_s3_url(key, k, v, extra)?;
                    b = b.with_config(key, v);
                }
                let s3 = b.build().map_err(|e| Error::storage(format!("s3://{bucket}"), e))?;
                if prefix.is_empty() {
                    Arc::new(s3)
                } else {
                    Arc::new(PrefixStore::new(s3, prefix.as_str()))
                }
            }
        };
        let compact_after = compact_after_logs()?;
        Ok(Lake {
            store,
            location,
            s3_config,
            logs_written: Default::default(),
            compact_after,
            tmp_swept: Default::default(),
        })
    }

    /// Where the lake lives.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The object store rooted at the lake root.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The AWS settings (polars' untyped cloud config keys) for S3 lakes; empty for local ones.
    pub fn s3_config(&self) -> &[(String, String)] {
        &self.s3_config
    }

    /// Counts a log written for `symbol`; true when it is time to compact that symbol's manifest.
    pub(crate) fn count_log(&self, symbol: &str) -> bool {
        let mut counts = self.logs_written.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(symbol.to_string()).or_default();
        *n += 1;
        if *n >= self.compact_after {
            *n = 0;
            return true;
        }
        false
    }

    /// Every object under `prefix` (the whole lake when `None`).
    pub async fn list(&self, prefix: Option<&Path>) -> Result<Vec<ObjectMeta>> {
        let at = prefix.map(|p| p.to_string()).unwrap_or_default();
        self.store.list(prefix).try_collect().await.map_err(|e| Error::storage(at, e))
    }
}

impl Lake {
    /// Reads raw bytes of an object, `None` when absent.
    pub(crate) async fn get_opt(&self, path: &Path) -> Result<Option<(Bytes, Option<String>, Option<String>)>> {
        match self.store().get(path).await {
            Ok(r) => {
                let (etag, version) = (r.meta.e_tag.clone(), r.meta.version.clone());
                let bytes = r.bytes().await.map_err(|e| Error::storage(path, e))?;
                Ok(Some((bytes, etag, version)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::storage(path, e)),
        }
    }
}
