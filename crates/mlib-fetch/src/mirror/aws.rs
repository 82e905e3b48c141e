//! S3 settings, read the way the AWS CLI and SDKs read them, so a machine that already talks
//! to its bucket needs nothing more: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
//! `AWS_SESSION_TOKEN`, `AWS_REGION` (else `AWS_DEFAULT_REGION`), `AWS_ENDPOINT_URL_S3` (else
//! `AWS_ENDPOINT_URL`) for R2, MinIO, Ceph..., `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`, and a
//! profile (`AWS_PROFILE`, else `default`) of `~/.aws/credentials` and `~/.aws/config`
//! (`AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`) for keys, region and `endpoint_url`.
//! Variables win over the profile. Web-identity and container credentials (EKS, ECS) are
//! passed on to `object_store`, which fetches them.
//!
//! The instance metadata service is never asked: without credentials an `s3://` mirror is a
//! configuration error, said once, rather than a request to a link-local address on every
//! machine that is not an EC2 instance. A public bucket is a mirror as `https://` anyway.

use std::path::PathBuf;

use crate::secret::Secret;

/// Everything an `s3://` mirror needs from the environment. Credentials are [`Secret`]s:
/// `Debug` shows `***`.
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    pub access_key_id: Option<Secret>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    pub region: Option<String>,
    /// The S3 endpoint, for anything that is not AWS itself.
    pub endpoint: Option<String>,
    /// `bucket.host` instead of `host/bucket` (path style is the default: it is what MinIO,
    /// Ceph and R2 expect, and AWS still serves it).
    pub virtual_hosted: bool,
    /// Other credential sources (`AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ROLE_ARN`,
    /// `AWS_CONTAINER_CREDENTIALS_*`...) handed to `object_store` as they are.
    pub passthrough: Vec<(String, Secret)>,
    /// Which profile was read, and from where, for messages.
    pub profile: Option<String>,
}

/// Variables `object_store` resolves into credentials itself.
const PASSTHROUGH: &[&str] = &[
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ENDPOINT_URL_STS",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

impl AwsSettings {
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> AwsSettings {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let profile_name = get("AWS_PROFILE").unwrap_or_else(|| "default".into());
        let home = get("HOME").map(PathBuf::from);
        let aws_file = |var: &str, name: &str| {
            get(var)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
        };
        let credentials = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials")
            .map(|path| read_profile(&path, &profile_name, false))
            .unwrap_or_default();
        let config = aws_file("AWS_CONFIG_FILE", "config")
            .map(|path| read_profile(&path, &profile_name, true))
            .unwrap_or_default();
        let from_profile = |key: &str| {
            credentials
                .iter()
                .chain(config.iter())
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let either = |var: &str, key: &str| get(var).or_else(|| from_profile(key));
        // Keys come as a pair: a key id from the environment is never matched with a
        // profile's secret.
        let (access_key_id, secret_access_key, session_token) =
            match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
                (Some(id), Some(secret)) => (Some(id), Some(secret), get("AWS_SESSION_TOKEN")),
                _ => (
                    from_profile("aws_access_key_id"),
                    from_profile("aws_secret_access_key"),
                    from_profile("aws_session_token"),
                ),
            };
        let used_profile = !credentials.is_empty() || !config.is_empty();
        AwsSettings {
            access_key_id: access_key_id.map(Secret::new),
            secret_access_key: secret_access_key.map(Secret::new),
            session_token: session_token.map(Secret::new),
            region: get("AWS_REGION").or_else(|| either("AWS_DEFAULT_REGION", "region")),
            endpoint: get("AWS_ENDPOINT_URL_S3")
                .or_else(|| get("AWS_ENDPOINT_URL"))
                .or_else(|| get("AWS_ENDPOINT"))
                .or_else(|| from_profile("endpoint_url")),
            virtual_hosted: get("AWS_VIRTUAL_HOSTED_STYLE_REQUEST")
                .is_some_and(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "True")),
            passthrough: PASSTHROUGH
                .iter()
                .filter_map(|name| get(name).map(|v| (name.to_ascii_lowercase(), Secret::new(v))))
                .collect(),
            profile: used_profile.then_some(profile_name),
        }
    }

    /// Whether any credential source is configured.
    pub fn has_credentials(&self) -> bool {
        (self.access_key_id.is_some() && self.secret_access_key.is_some())
            || !self.passthrough.is_empty()
    }

    /// Every credential value, for redacting messages (a server may echo the key id).
    pub fn secrets(&self) -> Vec<Secret> {
        [
            &self.access_key_id,
            &self.secret_access_key,
            &self.session_token,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
    }
}

/// The `key = value` lines of one profile of an AWS ini file: `[NAME]` in the credentials
/// file; `[profile NAME]` (or `[default]`) in the config file. A missing or unreadable file is
/// an empty profile.
fn read_profile(path: &std::path::Path, profile: &str, config: bool) -> Vec<(String, String)> {
    let Ok(text) = fs_err::read_to_string(path) else {
        return Vec::new();
    };
    let wanted = if config && profile != "default" {
        format!("profile {profile}")
    } else {
        profile.to_owned()
    };
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = section.trim() == wanted;
            continue;
        }
        if inside && let Some((key, value)) = line.split_once('=') {
            out.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> AwsSettings {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AwsSettings::from_env(&|k| map.get(k).cloned())
    }

    #[test]
    fn variables_are_read_as_the_aws_cli_reads_them() {
        let s = settings(&[
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
        ]);
        assert!(s.has_credentials());
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(!s.virtual_hosted);
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("AKIDEXAMPLE") && !shown.contains("s3cr3t"),
            "{shown}"
        );
        let s = settings(&[("AWS_REGION", "a"), ("AWS_DEFAULT_REGION", "b")]);
        assert_eq!(s.region.as_deref(), Some("a"));
        assert!(!s.has_credentials());
        let s = settings(&[
            ("AWS_ENDPOINT_URL", "http://general"),
            ("AWS_ENDPOINT_URL_S3", "http://s3"),
        ]);
        assert_eq!(s.endpoint.as_deref(), Some("http://s3"));
    }

    #[test]
    fn a_profile_gives_keys_region_and_endpoint() {
        let dir = tempfile::tempdir().unwrap();
        let aws = dir.path().join(".aws");
        fs_err::create_dir_all(&aws).unwrap();
        fs_err::write(
            aws.join("credentials"),
            "[default]\naws_access_key_id = D\naws_secret_access_key = DS\n\n[team]\n\
             aws_access_key_id = T\naws_secret_access_key = TS\n",
        )
        .unwrap();
        fs_err::write(
            aws.join("config"),
            "[default]\nregion = us-east-2\n[profile team]\nregion = auto\n\
             endpoint_url = https://acct.r2.cloudflarestorage.com\n",
        )
        .unwrap();
        let home = dir.path().to_str().unwrap();
        let s = settings(&[("HOME", home)]);
        assert_eq!(s.access_key_id.unwrap().expose(), "D");
        assert_eq!(s.region.as_deref(), Some("us-east-2"));
        assert_eq!(s.profile.as_deref(), Some("default"));
        let s = settings(&[("HOME", home), ("AWS_PROFILE", "team")]);
        assert_eq!(s.secret_access_key.unwrap().expose(), "TS");
        assert_eq!(s.region.as_deref(), Some("auto"));
        assert_eq!(
            s.endpoint.as_deref(),
            Some("https://acct.r2.cloudflarestorage.com")
        );
        // Variables win, and keys are never mixed between the two.
        let s = settings(&[
            ("HOME", home),
            ("AWS_ACCESS_KEY_ID", "E"),
            ("AWS_SECRET_ACCESS_KEY", "ES"),
            ("AWS_REGION", "r"),
        ]);
        assert_eq!(s.access_key_id.unwrap().expose(), "E");
        assert_eq!(s.secret_access_key.unwrap().expose(), "ES");
        assert_eq!(s.region.as_deref(), Some("r"));
        let s = settings(&[("HOME", home), ("AWS_ACCESS_KEY_ID", "E")]);
        assert_eq!(s.access_key_id.unwrap().expose(), "D");
    }
}
