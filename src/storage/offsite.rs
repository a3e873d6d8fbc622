//! Off-site copies: each verified archive and its manifest, copied to an
//! object store, then read back and checked against the manifest's SHA-256
//! before the copy counts as verified.
//!
//! A target is one variant of [`TargetConfig`]; S3-compatible storage
//! (AWS S3, MinIO, R2, B2, Ceph) through `object_store` is the one built.
//! Another kind (GCS, Azure) is one more variant and one more arm in
//! [`Offsite::open`]: everything past that speaks `ObjectStore`.
//!
//! Objects mirror the backup directory: `<prefix>/<archive>` and
//! `<prefix>/metadata/<archive>.json`, the manifest readable on its own, so
//! the catalog can be rebuilt from the bucket.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload,
    RetryConfig,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::MANIFEST_DIR;
use crate::{Error, Result};

/// A secret (a key, a password): never printed, logged or shown back.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Where off-site copies go: one variant per kind of target.
#[derive(Debug, Clone)]
pub enum TargetConfig {
    /// S3-compatible storage (`S3_*`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`).
    S3(S3Config),
}

/// An S3-compatible bucket.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// `S3_ENDPOINT` (none: AWS itself, from the region).
    pub endpoint: Option<String>,
    /// `S3_BUCKET`.
    pub bucket: String,
    /// `S3_PREFIX`: the "folder" in the bucket (may be empty).
    pub prefix: String,
    /// `S3_REGION`.
    pub region: String,
    /// `S3_FORCE_PATH_STYLE`: `https://endpoint/bucket/key` rather than
    /// `https://bucket.endpoint/key` (MinIO, Ceph and most self-hosted ones).
    pub force_path_style: bool,
    pub access_key_id: Option<Secret>,
    pub secret_access_key: Option<Secret>,
}

/// The off-site target and how copies to it are made.
#[derive(Debug, Clone)]
pub struct OffsiteConfig {
    pub target: TargetConfig,
    /// The smallest part of a multipart upload but the last (S3: 5 MiB).
    pub min_part_size: u64,
    /// The most parts one upload may have (S3: 10,000).
    pub max_parts: u64,
    /// How long one request is retried on transient errors (timeouts,
    /// 5xx, throttling) before the copy fails.
    pub request_retry_timeout: Duration,
}

impl OffsiteConfig {
    pub fn new(target: TargetConfig) -> Self {
        Self {
            target,
            min_part_size: 5 << 20,
            max_parts: 10_000,
            request_retry_timeout: Duration::from_secs(60),
        }
    }
}

/// What the console shows of the target: where it is, never its secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetDescription {
    pub kind: String,
    pub endpoint: String,
    pub bucket: String,
    pub prefix: String,
}

impl std::fmt::Display for TargetDescription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bucket {} at {}",
            self.kind, self.bucket, self.endpoint
        )?;
        if !self.prefix.is_empty() {
            write!(f, " (prefix {})", self.prefix)?;
        }
        Ok(())
    }
}

/// How an archive was sent: in how many parts of what size, and the size
/// and SHA-256 of the bytes sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub parts: u64,
    pub part_size: u64,
    pub size: u64,
    pub sha256: String,
    /// From the upload's start to its completion.
    pub took: Duration,
}

/// Parts sent at once at most: each is held in memory until the target
/// has it.
const PARTS_IN_FLIGHT: usize = 4;

/// Bytes of parts in flight at most (four parts of the smallest size):
/// parts grow past 5 MiB for archives over 50 GB (10,000 parts at most),
/// and then fewer go at once, so memory grows with such an archive twice
/// (a part in flight and the next one read) rather than five times over.
const BYTES_IN_FLIGHT: u64 = PARTS_IN_FLIGHT as u64 * (5 << 20);

/// How many parts of `part_size` bytes are sent at once: as many as fit
/// in [`BYTES_IN_FLIGHT`], between one and [`PARTS_IN_FLIGHT`].
pub fn parts_in_flight(part_size: u64) -> usize {
    (BYTES_IN_FLIGHT / part_size.max(1)).clamp(1, PARTS_IN_FLIGHT as u64) as usize
}

/// The part size for an archive of `size` bytes: the target's smallest,
/// or larger when that many parts would pass its limit. So an upload
/// never needs more than `max_parts` parts, whatever the size.
pub fn part_size(size: u64, min_part_size: u64, max_parts: u64) -> u64 {
    size.div_ceil(max_parts.max(1)).max(min_part_size).max(1)
}

/// An opened off-site target.
pub struct Offsite {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    config: OffsiteConfig,
    description: TargetDescription,
    /// Failed uploads the target could not be told to abort (it was
    /// away): aborted at the next chance, so no incomplete upload is left
    /// taking space in the bucket. (A process that dies mid-upload leaves
    /// its upload to the bucket's lifecycle rule; see the guide.)
    stranded: std::sync::Mutex<Vec<(ObjectPath, Box<dyn MultipartUpload>)>>,
}

impl std::fmt::Debug for Offsite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Offsite")
            .field("target", &self.description)
            .finish()
    }
}

impl Offsite {
    /// Builds the client (nothing is sent yet: [`Offsite::check`] does).
    pub fn open(config: OffsiteConfig) -> Result<Self> {
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 10,
            retry_timeout: config.request_retry_timeout,
        };
        let (store, prefix, description): (Arc<dyn ObjectStore>, String, TargetDescription) =
            match &config.target {
                TargetConfig::S3(s3) => {
                    // No additional checksum (x-amz-checksum-*) is declared:
                    // some S3-compatible servers refuse those headers. Each
                    // part's SHA-256 is in its signed request, and the copy
                    // is read back in full against the manifest.
                    let mut builder = AmazonS3Builder::new()
                        .with_bucket_name(&s3.bucket)
                        .with_region(&s3.region)
                        .with_virtual_hosted_style_request(!s3.force_path_style)
                        .with_retry(retry)
                        .with_client_options(
                            ClientOptions::new()
                                .with_connect_timeout(Duration::from_secs(10))
                                .with_allow_http(true),
                        );
                    if let Some(endpoint) = &s3.endpoint {
                        builder = builder.with_endpoint(endpoint);
                    }
                    if let Some(key) = &s3.access_key_id {
                        builder = builder.with_access_key_id(key.expose());
                    }
                    if let Some(secret) = &s3.secret_access_key {
                        builder = builder.with_secret_access_key(secret.expose());
                    }
                    let store = builder.build().map_err(|e| {
                        tracing::debug!(error = %e, "the S3 client could not be built");
                        Error::Config(
                            "The off-site target's settings are incomplete or invalid: check \
                             S3_ENDPOINT, S3_BUCKET and S3_REGION."
                                .into(),
                        )
                    })?;
                    let description = TargetDescription {
                        kind: "S3-compatible".into(),
                        endpoint: s3
                            .endpoint
                            .clone()
                            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", s3.region)),
                        bucket: s3.bucket.clone(),
                        prefix: s3.prefix.clone(),
                    };
                    (
                        Arc::new(store),
                        s3.prefix.trim_matches('/').to_owned(),
                        description,
                    )
                }
            };
        Ok(Self {
            store,
            prefix,
            config,
            description,
            stranded: Default::default(),
        })
    }

    pub fn description(&self) -> &TargetDescription {
        &self.description
    }

    fn path(&self, relative: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(relative)
        } else {
            ObjectPath::from(format!("{}/{relative}", self.prefix))
        }
    }

    fn archive_path(&self, name: &str) -> ObjectPath {
        self.path(name)
    }

    fn manifest_path(&self, name: &str) -> ObjectPath {
        self.path(&format!("{MANIFEST_DIR}/{name}.json"))
    }

    /// The target answers, the bucket is there and the credentials may
    /// list it; an error says which of these is wrong.
    pub async fn check(&self) -> Result<()> {
        let prefix = (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()));
        // The first page of a listing is enough (and all that is fetched).
        match self.store.list(prefix.as_ref()).next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(self.failure("The off-site target cannot be used", e)),
        }
    }

    /// Sends an archive (multipart, [`parts_in_flight`] parts in flight
    /// and the one being read in memory at most), then its manifest. A failed upload is aborted, so no
    /// incomplete upload is left behind when the target can still be
    /// told. `sent` counts the archive's bytes as they go;
    /// `before_complete` is given the size and SHA-256 of what was sent and
    /// may still refuse it (the upload is then aborted).
    pub async fn send(
        &self,
        mut source: impl tokio::io::AsyncRead + Unpin + Send,
        name: &str,
        size_bound: u64,
        sent: &AtomicU64,
        before_complete: impl FnOnce(u64, &str) -> Result<()>,
    ) -> Result<Sent> {
        let started = std::time::Instant::now();
        let part_size = part_size(size_bound, self.config.min_part_size, self.config.max_parts);
        let at_once = parts_in_flight(part_size);
        let mut hasher = Sha256::new();
        let mut total = 0u64;
        let path = self.archive_path(name);
        let mut upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| self.failure("The off-site copy could not be started", e))?;
        // Each part is sent on its own task, so parts in flight go on while
        // the next one is read and hashed.
        let mut in_flight = FuturesUnordered::new();
        let result = async {
            let mut parts = 0u64;
            loop {
                let mut part = BytesMut::with_capacity(part_size as usize);
                while (part.len() as u64) < part_size {
                    let read = (&mut source)
                        .take(part_size - part.len() as u64)
                        .read_buf(&mut part)
                        .await?;
                    if read == 0 {
                        break;
                    }
                }
                if part.is_empty() && parts > 0 {
                    break;
                }
                let last = (part.len() as u64) < part_size;
                let len = part.len() as u64;
                hasher.update(&part);
                total += len;
                parts += 1;
                if parts > self.config.max_parts {
                    return Err(Error::Offsite(format!(
                        "The archive grew past the {} parts the off-site upload was planned for; \
                         it changed while it was copied.",
                        self.config.max_parts
                    )));
                }
                in_flight.push(tokio::spawn(
                    upload.put_part(PutPayload::from(part.freeze())),
                ));
                while in_flight.len() >= at_once {
                    let done = in_flight.next().await.expect("a part is in flight");
                    self.part_sent(done)?;
                }
                sent.fetch_add(len, Ordering::Relaxed);
                if last {
                    break;
                }
            }
            while let Some(done) = in_flight.next().await {
                self.part_sent(done)?;
            }
            // What was sent is what was meant to be: else it is never
            // completed, so never seen.
            before_complete(total, &hex::encode(hasher.clone().finalize()))?;
            upload
                .complete()
                .await
                .map_err(|e| self.failure("The off-site copy could not be completed", e))?;
            Ok(parts)
        }
        .await;
        let parts = match result {
            Ok(parts) => parts,
            Err(err) => {
                for part in &in_flight {
                    part.abort();
                }
                if let Err(e) = upload.abort().await {
                    tracing::warn!(error = %e, object = %path, "could not abort the incomplete off-site upload; will try again");
                    self.stranded.lock().unwrap().push((path, upload));
                }
                return Err(err);
            }
        };
        Ok(Sent {
            parts,
            part_size,
            size: total,
            sha256: hex::encode(hasher.finalize()),
            took: started.elapsed(),
        })
    }

    /// A part's upload, ended.
    fn part_sent(
        &self,
        done: std::result::Result<object_store::Result<()>, tokio::task::JoinError>,
    ) -> Result<()> {
        done.map_err(|e| Error::Io(std::io::Error::other(e)))?
            .map_err(|e| self.failure("The off-site copy could not be sent", e))
    }

    /// Writes an archive's manifest beside it (after the archive: a
    /// manifest on the target always has its archive).
    pub async fn put_manifest(&self, manifest: &super::Manifest) -> Result<()> {
        let json =
            serde_json::to_vec_pretty(manifest).map_err(|e| Error::Io(std::io::Error::other(e)))?;
        self.store
            .put(
                &self.manifest_path(&manifest.filename),
                PutPayload::from(json),
            )
            .await
            .map_err(|e| {
                self.failure("The manifest of the off-site copy could not be written", e)
            })?;
        Ok(())
    }

    /// Aborts the failed uploads the target could not be told about when
    /// they failed. Returns how many are still left.
    pub async fn abort_stranded(&self) -> usize {
        let stranded = std::mem::take(&mut *self.stranded.lock().unwrap());
        let mut left = Vec::new();
        for (path, mut upload) in stranded {
            match upload.abort().await {
                Ok(()) => tracing::info!(object = %path, "aborted an incomplete off-site upload"),
                Err(e) => {
                    tracing::warn!(error = %e, object = %path, "could not abort the incomplete off-site upload yet");
                    left.push((path, upload));
                }
            }
        }
        let mut stranded = self.stranded.lock().unwrap();
        stranded.extend(left);
        stranded.len()
    }

    /// Reads an archive back in full: its size and SHA-256 (hex). `read`
    /// counts the bytes as they come.
    pub async fn read_back(&self, name: &str, read: &AtomicU64) -> Result<(u64, String)> {
        let got = self
            .store
            .get(&self.archive_path(name))
            .await
            .map_err(|e| self.failure("The off-site copy could not be read back", e))?;
        let mut stream = got.into_stream();
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| self.failure("The off-site copy could not be read back", e))?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            read.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        Ok((size, hex::encode(hasher.finalize())))
    }

    /// An archive's object, to be read as it streams in.
    pub async fn reader(&self, name: &str) -> Result<impl tokio::io::AsyncRead + Unpin + Send> {
        let got = self
            .store
            .get(&self.archive_path(name))
            .await
            .map_err(|e| self.failure("The off-site copy could not be read", e))?;
        Ok(tokio_util::io::StreamReader::new(
            got.into_stream()
                .map(|chunk| chunk.map_err(std::io::Error::other)),
        ))
    }

    /// The size of every archive object on the target, by name: one
    /// listing (a request per thousand objects), not one request each.
    pub async fn archive_sizes(&self) -> Result<std::collections::HashMap<String, u64>> {
        let prefix = (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()));
        let listed = self
            .store
            .list_with_delimiter(prefix.as_ref())
            .await
            .map_err(|e| self.failure("The off-site target could not be listed", e))?;
        Ok(listed
            .objects
            .into_iter()
            .filter_map(|meta| {
                let name = meta.location.filename()?.to_owned();
                super::is_archive_name(&name).then_some((name, meta.size))
            })
            .collect())
    }

    /// The archive names whose manifest is on the target (sorted).
    pub async fn manifest_names(&self) -> Result<Vec<String>> {
        let dir = self.path(MANIFEST_DIR);
        let mut listing = self.store.list(Some(&dir));
        let mut names = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta =
                meta.map_err(|e| self.failure("The off-site target could not be listed", e))?;
            if let Some(name) = meta
                .location
                .filename()
                .and_then(|f| f.strip_suffix(".json"))
                .filter(|n| super::is_archive_name(n))
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// An archive's manifest, as stored beside it.
    pub async fn read_manifest(&self, name: &str) -> Result<super::Manifest> {
        let bytes = self
            .store
            .get(&self.manifest_path(name))
            .await
            .map_err(|e| self.failure("The off-site manifest could not be read", e))?
            .bytes()
            .await
            .map_err(|e| self.failure("The off-site manifest could not be read", e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::Offsite(format!(
                "The off-site manifest of {name} is not a manifest this server can read: {e}."
            ))
        })
    }

    /// The size of an archive's object, or `None` when it is not there.
    pub async fn archive_size(&self, name: &str) -> Result<Option<u64>> {
        match self.store.head(&self.archive_path(name)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failure("The off-site copy could not be looked up", e)),
        }
    }

    /// Deletes an archive's objects (archive and manifest); objects already
    /// gone are fine.
    pub async fn delete(&self, name: &str) -> Result<()> {
        for path in [self.archive_path(name), self.manifest_path(name)] {
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.failure("The off-site copy could not be deleted", e)),
            }
        }
        Ok(())
    }

    /// An error in words an administrator can act on; the target's own
    /// answer goes to the log (it names the bucket and key, never the
    /// credentials).
    fn failure(&self, lead: &str, err: object_store::Error) -> Error {
        tracing::warn!(error = %err, target = %self.description, "off-site request failed");
        let text = err.to_string();
        let d = &self.description;
        let credentials = "the target refused the credentials: check AWS_ACCESS_KEY_ID and \
                           AWS_SECRET_ACCESS_KEY (or their _FILE variants) and the bucket's policy";
        let reason = match &err {
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => credentials.to_owned(),
            _ if text.contains("NoSuchBucket") => format!(
                "bucket {} does not exist at {}: create it, or check S3_BUCKET and S3_ENDPOINT",
                d.bucket, d.endpoint
            ),
            _ if [
                "InvalidAccessKeyId",
                "SignatureDoesNotMatch",
                "AccessDenied",
            ]
            .iter()
            .any(|sign| text.contains(sign)) =>
            {
                credentials.to_owned()
            }
            object_store::Error::NotFound { .. } => "the object is not there".to_owned(),
            _ if ["error sending request", "connect", "dns error", "timed out"]
                .iter()
                .any(|sign| text.contains(sign)) =>
            {
                format!(
                    "{} cannot be reached: check S3_ENDPOINT and that the target is up",
                    d.endpoint
                )
            }
            _ => "the target answered with an error; the server log has its answer".to_owned(),
        };
        Error::Offsite(format!("{lead}: {reason}."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_never_need_more_parts_than_allowed() {
        let min = 5 << 20;
        assert_eq!(part_size(0, min, 10_000), min);
        assert_eq!(part_size(1 << 30, min, 10_000), min);
        // 5 TiB, the largest S3 object: 10,000 parts of 525 MiB or so.
        for size in [
            49 << 30,
            50 << 30,
            (5u64 << 40) - 1,
            5 << 40,
            min * 10_000 + 1,
        ] {
            let part = part_size(size, min, 10_000);
            assert!(part >= min);
            assert!(size.div_ceil(part) <= 10_000, "{size}: {part}");
        }
        assert_eq!(part_size(100, 1, 10), 10);
        assert_eq!(part_size(101, 1, 10), 11);
    }

    #[test]
    fn larger_parts_go_fewer_at_once() {
        let min = 5 << 20;
        assert_eq!(parts_in_flight(min), 4);
        assert_eq!(parts_in_flight(64 << 10), 4);
        // 100 GiB: parts of 10.24 MiB, one at once (and the next read).
        assert_eq!(parts_in_flight(part_size(100 << 30, min, 10_000)), 1);
        assert_eq!(parts_in_flight(10 << 20), 2);
        assert_eq!(parts_in_flight(7 << 20), 2);
        // 5 TiB: parts of 525 MiB, one at once.
        assert_eq!(parts_in_flight(part_size(5 << 40, min, 10_000)), 1);
        assert_eq!(parts_in_flight(0), 4);
        for part in [min, 6 << 20, 10 << 20, 21 << 20, 525 << 20] {
            let bytes = parts_in_flight(part) as u64 * part;
            assert!(
                bytes <= BYTES_IN_FLIGHT || parts_in_flight(part) == 1,
                "{part}"
            );
        }
    }

    #[test]
    fn secrets_are_not_printed() {
        let config = S3Config {
            endpoint: Some("http://127.0.0.1:9000".into()),
            bucket: "b".into(),
            prefix: "p".into(),
            region: "us-east-1".into(),
            force_path_style: true,
            access_key_id: Some(Secret::new("AKIDEXAMPLE")),
            secret_access_key: Some(Secret::new("wJalrXUtnFEMI")),
        };
        let printed = format!("{config:?}");
        assert!(!printed.contains("AKIDEXAMPLE") && !printed.contains("wJalrXUtnFEMI"));
        let offsite = Offsite::open(OffsiteConfig::new(TargetConfig::S3(config))).unwrap();
        let printed = format!("{offsite:?} {}", offsite.description());
        assert!(!printed.contains("AKIDEXAMPLE") && !printed.contains("wJalrXUtnFEMI"));
    }
}
