//! Mirror addresses: `s3://bucket/prefix` (any S3-compatible store) and `https://host/prefix`
//! (any static server or CDN), from the manifest's `mirrors:` or `MLIB_MIRRORS`.
//!
//! Only the address is checked here; how objects are laid out under it is `mlib-fetch`'s
//! (`mirror::layout`). An address never holds a credential: S3 credentials come from the
//! usual `AWS_*` variables and profiles, and a literal user, password or query in an HTTP
//! mirror's URL is refused so it never reaches the lock, the registry or the output.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a mirror is. `Display` gives it back in the form it was written (without a trailing
/// slash), the form messages and `mlib mirror ls` show.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MirrorUrl {
    /// An S3-compatible bucket; `prefix` has no leading or trailing `/` (empty: the bucket's
    /// root).
    S3 { bucket: String, prefix: String },
    /// A static HTTP(S) server: objects are GET from `{base}/{key}`. `base` has no trailing
    /// `/`.
    Http { base: String },
}

impl MirrorUrl {
    /// Parses one address; the error says what is wrong and how to write it.
    pub fn parse(text: &str) -> Result<MirrorUrl, String> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            check_bucket(bucket)?;
            let prefix = prefix.trim_matches('/');
            check_prefix(prefix)?;
            return Ok(MirrorUrl::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
            });
        }
        if text.starts_with("https://") || text.starts_with("http://") {
            let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
            if !url.username().is_empty() || url.password().is_some() {
                return Err(
                    "a mirror's URL may not hold a user or password: mlib would have to write \
                     it into the lock and its output"
                        .into(),
                );
            }
            if url.query().is_some() || url.fragment().is_some() {
                return Err(
                    "a mirror's URL may not have a query or fragment (`?...`, `#...`): object \
                     names are appended to its path"
                        .into(),
                );
            }
            if url.host_str().is_none_or(str::is_empty) {
                return Err(format!("`{text}` has no host"));
            }
            check_prefix(url.path().trim_matches('/'))?;
            let base = url.as_str().trim_end_matches('/').to_owned();
            return Ok(MirrorUrl::Http { base });
        }
        Err(format!(
            "`{text}` is not a mirror address: write `s3://BUCKET/PREFIX` (S3, R2, MinIO, ...) \
             or `https://HOST/PREFIX` (a static server or CDN)"
        ))
    }

    /// Parses `MLIB_MIRRORS`: addresses separated by commas or whitespace, in order.
    pub fn parse_list(text: &str) -> Result<Vec<MirrorUrl>, String> {
        text.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(MirrorUrl::parse)
            .collect()
    }

    pub fn is_s3(&self) -> bool {
        matches!(self, MirrorUrl::S3 { .. })
    }
}

impl fmt::Display for MirrorUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MirrorUrl::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            MirrorUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            MirrorUrl::Http { base } => f.write_str(base),
        }
    }
}

/// S3's bucket naming rules (the strict ones every S3-compatible store accepts): 3-63
/// characters, lower-case letters, digits, `.` and `-`, starting and ending with a letter or
/// digit. A bad name is caught here rather than as a confusing signature or DNS error later.
fn check_bucket(bucket: &str) -> Result<(), String> {
    let why = if bucket.is_empty() {
        Some("has no bucket name".to_owned())
    } else if !(3..=63).contains(&bucket.len()) {
        Some(format!(
            "has a bucket name of {} characters; S3 allows 3 to 63",
            bucket.len()
        ))
    } else if let Some(c) = bucket
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        Some(format!(
            "has `{c}` in its bucket name `{bucket}`; S3 bucket names use lower-case letters, \
             digits, `.` and `-`"
        ))
    } else if !bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        Some(format!(
            "has a bucket name `{bucket}` that does not start and end with a letter or digit"
        ))
    } else if bucket.contains("..") {
        Some(format!("has `..` in its bucket name `{bucket}`"))
    } else {
        None
    };
    match why {
        Some(why) => Err(format!("`s3://{bucket}` {why}")),
        None => Ok(()),
    }
}

/// A prefix is joined with object names: no empty, `.` or `..` segments, no backslashes.
fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() {
        return Ok(());
    }
    if let Some(seg) = prefix
        .split('/')
        .find(|s| s.is_empty() || *s == "." || *s == ".." || s.contains('\\'))
    {
        return Err(format!(
            "the mirror's prefix `{prefix}` has a segment `{seg}`: write it as `team/models`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_addresses() {
        let m = MirrorUrl::parse("s3://team-models/shared/v1/").unwrap();
        assert_eq!(
            m,
            MirrorUrl::S3 {
                bucket: "team-models".into(),
                prefix: "shared/v1".into()
            }
        );
        assert_eq!(m.to_string(), "s3://team-models/shared/v1");
        assert_eq!(
            MirrorUrl::parse("s3://bucket").unwrap().to_string(),
            "s3://bucket"
        );
    }

    #[test]
    fn http_addresses() {
        let m = MirrorUrl::parse("https://cdn.example.com/models/").unwrap();
        assert_eq!(m.to_string(), "https://cdn.example.com/models");
        assert!(!m.is_s3());
        assert!(MirrorUrl::parse("http://127.0.0.1:8080").is_ok());
    }

    #[test]
    fn bad_addresses_say_why() {
        for (bad, says) in [
            ("s3://Team_Models/x", "lower-case"),
            ("s3://ab", "3 to 63"),
            ("s3://", "no bucket"),
            ("s3://-team/x", "start and end"),
            ("s3://team/a//b", "segment"),
            ("s3://team/a/../b", "segment"),
            ("https://user:pw@host/x", "user or password"),
            ("https://host/x?sig=1", "query"),
            ("ftp://host/x", "s3://BUCKET/PREFIX"),
            ("/srv/models", "s3://BUCKET/PREFIX"),
        ] {
            let err = MirrorUrl::parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn lists_keep_their_order() {
        let list = MirrorUrl::parse_list("s3://bkt1/p, https://h/x  s3://bkt2").unwrap();
        let shown: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["s3://bkt1/p", "https://h/x", "s3://bkt2"]);
        assert!(MirrorUrl::parse_list("s3://okay,s3://NOPE").is_err());
        assert!(MirrorUrl::parse_list("").unwrap().is_empty());
    }
}
