//! `s3://` mirrors through `object_store` (SigV4 signing, multipart uploads, listing): the only
//! async code in mlib, kept behind blocking calls on a one-worker runtime of its own.
//!
//! Downloads do not go through here: [`S3Mirror::presigned_get`] gives a URL that the ordinary
//! downloader fetches (resume, parallel ranges, direct I/O, hashing as it arrives), so bytes
//! from a bucket are handled and verified exactly as bytes from an origin are.

use std::io::Read;
use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart,
};
use sha2::{Digest, Sha256};

use super::MirrorError;
use super::aws::AwsSettings;
use crate::secret::{Secret, redact_text};

/// How long a presigned download URL stays valid: long enough for a slow 20 GB file, short
/// enough that one found in a log is soon useless (and it is never logged: see `redact_url`).
const PRESIGN_FOR: Duration = Duration::from_secs(6 * 3600);
/// Files at least this large are uploaded in parts of this size, 4 at a time.
pub const PART_SIZE: usize = 32 * 1024 * 1024;
const PARTS_AT_ONCE: usize = 4;

pub(crate) struct S3Mirror {
    store: Arc<AmazonS3>,
    prefix: String,
    shown: String,
    secrets: Vec<Secret>,
    runtime: tokio::runtime::Runtime,
}

impl S3Mirror {
    pub fn open(
        bucket: &str,
        prefix: &str,
        shown: &str,
        aws: &AwsSettings,
    ) -> Result<S3Mirror, MirrorError> {
        let fail = |message: String, misconfigured: bool| MirrorError::Failed {
            mirror: shown.to_owned(),
            message,
            misconfigured,
        };
        if !aws.has_credentials() {
            return Err(fail(
                "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
                 AWS_PROFILE (a public bucket can be a mirror through its https:// address)"
                    .into(),
                true,
            ));
        }
        // reqwest is built without a TLS provider of its own: use ring, as ureq does. Only
        // the first call installs it; a later one finds it there.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let endpoint_is_http = aws
            .endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        let options = ClientOptions::new()
            // A plain-http endpoint is one the user wrote down (a LAN MinIO, a test server).
            .with_allow_http(endpoint_is_http)
            .with_connect_timeout(Duration::from_secs(10))
            .with_timeout(Duration::from_secs(300));
        // A mirror that fails falls back to the origin: a few quick retries, not object_store's
        // default of ten over three minutes.
        let retry = RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(20),
            ..RetryConfig::default()
        };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(aws.region.as_deref().unwrap_or("us-east-1"))
            .with_virtual_hosted_style_request(aws.virtual_hosted)
            .with_client_options(options)
            .with_retry(retry);
        if let Some(endpoint) = &aws.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let (Some(id), Some(secret)) = (&aws.access_key_id, &aws.secret_access_key) {
            builder = builder
                .with_access_key_id(id.expose())
                .with_secret_access_key(secret.expose());
            if let Some(token) = &aws.session_token {
                builder = builder.with_token(token.expose());
            }
        }
        for (key, value) in &aws.passthrough {
            if let Ok(key) = key.parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(key, value.expose());
            }
        }
        let secrets = aws.secrets();
        let store = builder.build().map_err(|e| {
            fail(
                redact_text(&e.to_string(), &secrets.iter().collect::<Vec<_>>()),
                true,
            )
        })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("mlib-s3")
            .enable_all()
            .build()?;
        Ok(S3Mirror {
            store: Arc::new(store),
            prefix: prefix.to_owned(),
            shown: shown.to_owned(),
            secrets,
            runtime,
        })
    }

    fn path(&self, key: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(key)
        } else {
            Path::from(format!("{}/{key}", self.prefix))
        }
    }

    /// An `object_store` error as a mirror error, with every credential starred (S3 echoes
    /// the access key id in some refusals).
    fn error(&self, e: object_store::Error) -> MirrorError {
        let text = e.to_string();
        let misconfigured = misconfiguration(&text);
        MirrorError::Failed {
            mirror: self.shown.clone(),
            message: redact_text(&concise(&text), &self.secrets.iter().collect::<Vec<_>>()),
            misconfigured,
        }
    }

    /// A URL that GETs `key` for the next hours without any other credential.
    pub fn presigned_get(&self, key: &str) -> Result<url::Url, MirrorError> {
        let path = self.path(key);
        let url = self
            .runtime
            .block_on(self.store.signed_url(http::Method::GET, &path, PRESIGN_FOR))
            .map_err(|e| self.error(e))?;
        Ok(url)
    }

    /// The size of `key`, or `None` when the mirror does not have it.
    pub fn head(&self, key: &str) -> Result<Option<u64>, MirrorError> {
        let path = self.path(key);
        match self.runtime.block_on(self.store.head(&path)) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    /// A small object (an index), or `None` when there is none.
    pub fn get_small(&self, key: &str) -> Result<Option<Vec<u8>>, MirrorError> {
        let path = self.path(key);
        let result = self.runtime.block_on(async {
            let got = self.store.get(&path).await?;
            got.bytes().await
        });
        match result {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    pub fn put_small(&self, key: &str, bytes: Vec<u8>) -> Result<(), MirrorError> {
        let path = self.path(key);
        self.runtime
            .block_on(self.store.put(&path, PutPayload::from(bytes)))
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Every object under `folder` (relative to the prefix): its name relative to the prefix
    /// and its size.
    pub fn list(&self, folder: &str) -> Result<Vec<(String, u64)>, MirrorError> {
        let path = self.path(folder);
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let metas: Vec<object_store::ObjectMeta> = self
            .runtime
            .block_on(self.store.list(Some(&path)).try_collect())
            .map_err(|e| self.error(e))?;
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let name = m.location.as_ref().strip_prefix(&strip)?.to_owned();
                Some((name, m.size))
            })
            .collect())
    }

    /// The first object of a listing of the prefix: an error names a missing bucket or refused
    /// credentials, where a HEAD would only say 404.
    pub fn probe(&self) -> Result<(), MirrorError> {
        let path = self.path(super::layout::BLOBS);
        let first = self
            .runtime
            .block_on(async { self.store.list(Some(&path)).try_next().await });
        first.map(|_| ()).map_err(|e| self.error(e))
    }

    /// Uploads the file at `src` as `key`, in parts when it is large, hashing what it sends:
    /// when the bytes are not `sha256` the upload is aborted, so a store file changed behind
    /// mlib's back never becomes a mirror object. `progress` gets each chunk's length.
    pub fn put_file(
        &self,
        key: &str,
        src: &FsPath,
        sha256: &str,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), MirrorError> {
        let path = self.path(key);
        let mut file = fs_err::File::open(src)?;
        let size = file.metadata()?.len();
        let mut hasher = Sha256::new();
        if size < PART_SIZE as u64 {
            let mut bytes = Vec::with_capacity(size as usize);
            file.read_to_end(&mut bytes)?;
            hasher.update(&bytes);
            check_hash(src, sha256, hasher)?;
            progress(bytes.len() as u64);
            return self.put_small(key, bytes);
        }
        let result: Result<(), MirrorError> = self.runtime.block_on(async {
            let upload = self
                .store
                .put_multipart(&path)
                .await
                .map_err(|e| self.error(e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            loop {
                let mut chunk = vec![0u8; PART_SIZE];
                let n = read_full(&mut file, &mut chunk)?;
                if n == 0 {
                    break;
                }
                chunk.truncate(n);
                hasher.update(&chunk);
                writer
                    .wait_for_capacity(PARTS_AT_ONCE)
                    .await
                    .map_err(|e| self.error(e))?;
                writer.put(chunk.into());
                progress(n as u64);
            }
            if let Err(e) = check_hash(src, sha256, hasher) {
                let _ = writer.abort().await;
                return Err(e);
            }
            writer.finish().await.map_err(|e| self.error(e))?;
            Ok(())
        });
        result
    }
}

fn check_hash(src: &FsPath, expected: &str, hasher: Sha256) -> Result<(), MirrorError> {
    let actual = hex::encode(hasher.finalize());
    if actual == expected {
        return Ok(());
    }
    Err(MirrorError::StoreChanged {
        path: src.display().to_string(),
        expected: expected.to_owned(),
        actual,
    })
}

/// Reads until `buf` is full or the file ends.
fn read_full(file: &mut fs_err::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// An `object_store` error in one line: S3's own `<Code>` and `<Message>` when the answer has
/// them (`NoSuchBucket: The specified bucket does not exist`), with the request it answered;
/// else the error's first line. The XML body with its request ids says nothing more.
fn concise(text: &str) -> String {
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find("</")? + start;
        Some(text[start..end].trim().to_owned())
    };
    let request = text
        .rfind("Error performing ")
        .map(|at| &text[at + "Error performing ".len()..])
        .and_then(|rest| rest.split(" in ").next())
        .map(|r| format!("{r} answered "))
        .unwrap_or_default();
    // The URL first, followed by a space: text glued to a URL would be read as part of it
    // when messages are redacted.
    match (tag("Code"), tag("Message")) {
        (Some(code), Some(message)) => format!("{request}{code}: {message}"),
        (Some(code), None) => format!("{request}{code}"),
        _ => {
            let first = text.lines().next().unwrap_or_default();
            first.chars().take(300).collect()
        }
    }
}

/// S3 error codes that mean the mirror is set up wrong (not "this object is missing"): said
/// once, and the mirror is not asked again in this run.
pub(crate) fn misconfiguration(text: &str) -> bool {
    const CODES: &[&str] = &[
        "NoSuchBucket",
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AuthorizationHeaderMalformed",
        "PermanentRedirect",
        "InvalidBucketName",
        "ExpiredToken",
        "InvalidToken",
        "403 Forbidden",
        "401 Unauthorized",
        "error sending request",
        "Connection refused",
        "dns error",
    ];
    CODES.iter().any(|c| text.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_one_line_with_s3_code_and_request() {
        let text = "Generic S3 error: Error performing list request: Error performing GET \
                    http://127.0.0.1:5599/no-such-bucket?list-type=2 in 35ms - Server returned \
                    non-2xx status code: 404 Not Found: <?xml version=\"1.0\"?>\n<Error><Code>\
                    NoSuchBucket</Code><Message>The specified bucket does not exist</Message>\
                    <RequestId>X</RequestId></Error>";
        let shown = concise(text);
        assert_eq!(
            shown,
            "GET http://127.0.0.1:5599/no-such-bucket?list-type=2 answered NoSuchBucket: The \
             specified bucket does not exist"
        );
        assert!(misconfiguration(text));
        assert_eq!(concise("one\ntwo"), "one");
        assert!(!misconfiguration("Object at location x not found"));
    }
}
