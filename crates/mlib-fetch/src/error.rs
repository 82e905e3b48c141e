//! Fetch errors. Each one names the model, repo, version or URL involved and says what to do;
//! URLs in them are always redacted (see [`crate::secret`]).

use crate::secret::{Secret, redact_text};

/// Resolving or downloading a remote model failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("HuggingFace repo {repo} is gated and {}.\nAccept its licence at {endpoint}/{repo} while logged in, then set HF_TOKEN to a token of that account (or save it in $HF_HOME/token).", if *.has_token { "the token sent (HF_TOKEN) has not been granted access" } else { "no token was sent" })]
    GatedRepo {
        repo: String,
        endpoint: String,
        has_token: bool,
    },
    #[error("HuggingFace repo {repo} was not found{}.\nCheck the repo name in `source:`{}.", if *.has_token { "" } else { " (or it is private)" }, if *.has_token { "" } else { "; for a private repo set HF_TOKEN" })]
    RepoNotFound { repo: String, has_token: bool },
    #[error(
        "{path} was not found in HuggingFace repo {repo} at revision {revision}.\nCheck the path in `source:` (file names are case-sensitive) and that it exists at that revision."
    )]
    EntryNotFound {
        repo: String,
        path: String,
        revision: String,
    },
    #[error(
        "revision {revision} was not found in HuggingFace repo {repo}.\nCheck `revision:`: it must be a branch, a tag or a full 40-character commit sha."
    )]
    RevisionNotFound { repo: String, revision: String },
    #[error("Civitai refused model version {version_id}: {}.\nCreate an API key at {endpoint}/user/account and set CIVITAI_TOKEN{}.", if *.has_token { "the token in CIVITAI_TOKEN was rejected" } else { "this download needs an API token" }, if *.has_token { " to a valid one (and accept the model's terms on its page if it asks)" } else { "" })]
    CivitaiUnauthorized {
        version_id: u64,
        endpoint: String,
        has_token: bool,
    },
    #[error(
        "Civitai model version {version_id} was not found.\nCheck the version after `@` in `source:` (the `modelVersionId` in the model page URL)."
    )]
    CivitaiNotFound { version_id: u64 },
    #[error(
        "Civitai model version {version_id} is in early access{}: only its creator's supporters may download it before then.\nPin an earlier version, or apply again after that date.",
        deadline.as_deref().map(|d| format!(" until {d}")).unwrap_or_default()
    )]
    CivitaiEarlyAccess {
        version_id: u64,
        deadline: Option<String>,
    },
    #[error(
        "Civitai model version {version_id} is archived: Civitai no longer serves its files (410 Gone).\nKeep the copy you have (the store, a mirror, a local source), or pin another version."
    )]
    CivitaiArchived { version_id: u64 },
    #[error(
        "Civitai refused model version {version_id}: too many requests (429) and no Retry-After, which is a download quota, not a moment's load.\nApply again later (with CIVITAI_TOKEN set, your account's quota applies)."
    )]
    CivitaiQuota { version_id: u64 },
    #[error("Civitai model version {version_id} has no file named {wanted}.\nIts files are: {}. Set `file:` to one of them, or remove it to take the primary file.", .available.join(", "))]
    CivitaiFileNotFound {
        version_id: u64,
        wanted: String,
        available: Vec<String>,
    },
    #[error(
        "Civitai model version {version_id} belongs to model {actual}, not {expected}.\nFix `source:` (civitai:{{model}}@{{version}})."
    )]
    CivitaiModelMismatch {
        version_id: u64,
        expected: u64,
        actual: u64,
    },
    #[error(
        "no file of {source_name} matches the include/exclude globs of model {name}.\nCheck `include:` and `exclude:` (globs match paths relative to the source folder; `*` also matches `/`)."
    )]
    NoFiles { name: String, source_name: String },
    #[error("model {name} has an invalid glob {glob:?}: {reason}")]
    BadGlob {
        name: String,
        glob: String,
        reason: String,
    },
    #[error(
        "model {name} has no sha256, and {url} does not publish one.\nAdd `sha256:` to the model in models.yaml, or pass --allow-unpinned to trust whatever the server sends."
    )]
    Unpinned { name: String, url: String },
    #[error(
        "model {name} pins {algo} {manifest} in models.yaml, but {source_name} has {upstream}.\nIf the upstream file changed on purpose, update `{algo}:`; otherwise pin a `revision:` that has the expected file."
    )]
    PinMismatch {
        name: String,
        source_name: String,
        algo: &'static str,
        manifest: String,
        upstream: String,
    },
    #[error(
        "refusing plain http for {url}: the bytes could be tampered with on the way.\nUse https, or pass --allow-http to allow it."
    )]
    InsecureUrl { url: String },
    #[error("{url} is not a usable URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(
        "the server listed an unsafe file path {path:?} for model {name}; refusing to write it"
    )]
    UnsafePath { name: String, path: String },
    #[error("HTTP {status} from {url}{}", if .detail.is_empty() { String::new() } else { format!(": {}", .detail) })]
    Http {
        url: String,
        status: u16,
        detail: String,
    },
    #[error(
        "could not download {url} after {attempts} attempt(s): {reason}\nCheck the network (and any proxy); running the same command again resumes where it stopped."
    )]
    Network {
        url: String,
        attempts: u32,
        reason: String,
    },
    #[error(
        "{url} returned {kind} instead of a model file, which usually means the download needs a token.\n{hint}"
    )]
    NotAModelFile {
        url: String,
        kind: &'static str,
        hint: String,
    },
    #[error(
        "{algo} mismatch for {name} ({path}) downloaded from {url}:\n  expected {expected}\n  actual   {actual}\nThe download was deleted and nothing was stored. If the file changed upstream, update the hash in models.yaml or run `mlib update {name}`."
    )]
    HashMismatch {
        name: String,
        path: String,
        url: String,
        algo: &'static str,
        expected: String,
        actual: String,
    },
    #[error(
        "size mismatch for {name} ({path}) downloaded from {url}: expected {expected} bytes, got {actual}.\nThe download was deleted. If the file changed upstream, run `mlib update {name}`."
    )]
    SizeMismatch {
        name: String,
        path: String,
        url: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "offline (HF_HUB_OFFLINE or --offline): {what} for model {name}.\nRun once with network access (or `mlib lock`) so the lock, store or HuggingFace cache has it."
    )]
    Offline { name: String, what: String },
    #[error("model {name} has a local source: it is copied by the store, not fetched")]
    NotRemote { name: String },
    #[error("unexpected answer from {url}: {message}")]
    Protocol { url: String, message: String },
    #[error("download of {url} cancelled because another file of the same model failed")]
    Cancelled { url: String },
    #[error(
        "environment variable {variable} is not set, and the source URL of model {name} needs it.\nSet {variable} to the credential the URL needs: mlib reads it only to make the request, and never writes or prints it."
    )]
    UnsetVariable { name: String, variable: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl FetchError {
    /// This error with every occurrence of `secrets` in its text replaced by `***` (see
    /// [`crate::redact_text`]): for errors about a URL whose `${VAR}` values are credentials,
    /// which may show up in a URL or in what a server said.
    pub(crate) fn redacted(self, secrets: &[Secret]) -> FetchError {
        if secrets.is_empty() {
            return self;
        }
        let secrets: Vec<&Secret> = secrets.iter().collect();
        let r = |text: String| redact_text(&text, &secrets);
        use FetchError as E;
        match self {
            E::GatedRepo {
                repo,
                endpoint,
                has_token,
            } => E::GatedRepo {
                repo: r(repo),
                endpoint: r(endpoint),
                has_token,
            },
            E::RepoNotFound { repo, has_token } => E::RepoNotFound {
                repo: r(repo),
                has_token,
            },
            E::EntryNotFound {
                repo,
                path,
                revision,
            } => E::EntryNotFound {
                repo: r(repo),
                path: r(path),
                revision: r(revision),
            },
            E::RevisionNotFound { repo, revision } => E::RevisionNotFound {
                repo: r(repo),
                revision: r(revision),
            },
            E::CivitaiUnauthorized {
                version_id,
                endpoint,
                has_token,
            } => E::CivitaiUnauthorized {
                version_id,
                endpoint: r(endpoint),
                has_token,
            },
            E::CivitaiFileNotFound {
                version_id,
                wanted,
                available,
            } => E::CivitaiFileNotFound {
                version_id,
                wanted: r(wanted),
                available: available.into_iter().map(r).collect(),
            },
            E::NoFiles { name, source_name } => E::NoFiles {
                name,
                source_name: r(source_name),
            },
            E::BadGlob { name, glob, reason } => E::BadGlob {
                name,
                glob,
                reason: r(reason),
            },
            E::Unpinned { name, url } => E::Unpinned { name, url: r(url) },
            E::PinMismatch {
                name,
                source_name,
                algo,
                manifest,
                upstream,
            } => E::PinMismatch {
                name,
                source_name: r(source_name),
                algo,
                manifest,
                upstream,
            },
            E::InsecureUrl { url } => E::InsecureUrl { url: r(url) },
            E::BadUrl { url, reason } => E::BadUrl {
                url: r(url),
                reason: r(reason),
            },
            E::UnsafePath { name, path } => E::UnsafePath {
                name,
                path: r(path),
            },
            E::Http {
                url,
                status,
                detail,
            } => E::Http {
                url: r(url),
                status,
                detail: r(detail),
            },
            E::Network {
                url,
                attempts,
                reason,
            } => E::Network {
                url: r(url),
                attempts,
                reason: r(reason),
            },
            E::NotAModelFile { url, kind, hint } => E::NotAModelFile {
                url: r(url),
                kind,
                hint,
            },
            E::HashMismatch {
                name,
                path,
                url,
                algo,
                expected,
                actual,
            } => E::HashMismatch {
                name,
                path,
                url: r(url),
                algo,
                expected,
                actual,
            },
            E::SizeMismatch {
                name,
                path,
                url,
                expected,
                actual,
            } => E::SizeMismatch {
                name,
                path,
                url: r(url),
                expected,
                actual,
            },
            E::Offline { name, what } => E::Offline {
                name,
                what: r(what),
            },
            E::Protocol { url, message } => E::Protocol {
                url: r(url),
                message: r(message),
            },
            E::Cancelled { url } => E::Cancelled { url: r(url) },
            E::Io(error) => {
                let text = error.to_string();
                let clean = r(text.clone());
                if clean == text {
                    E::Io(error)
                } else {
                    E::Io(std::io::Error::new(error.kind(), clean))
                }
            }
            E::CivitaiEarlyAccess {
                version_id,
                deadline,
            } => E::CivitaiEarlyAccess {
                version_id,
                deadline: deadline.map(r),
            },
            other @ (E::CivitaiNotFound { .. }
            | E::CivitaiArchived { .. }
            | E::CivitaiQuota { .. }
            | E::CivitaiModelMismatch { .. }
            | E::NotRemote { .. }
            | E::UnsetVariable { .. }) => other,
        }
    }
}
