//! The rules names, relative paths and hashes follow.
//!
//! Names become directory names in the store and file names in app folders, and a store is often
//! shared over SMB or copied to Windows, so the rules are the intersection of what Linux, macOS and
//! NTFS accept, minus anything that could climb out of a folder (`..`, absolute paths).

use crate::diagnostic::DiagnosticKind;

/// The shape of model, app, type, family and tag names (also in the JSON schema).
pub(crate) const NAME_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._-]*$";
/// A sha256 or blake3 digest as written in a manifest.
pub(crate) const HASH_PATTERN: &str = "^[0-9a-fA-F]{64}$";
pub(crate) const MAX_NAME: usize = 128;
/// Longest file name most filesystems take, in bytes.
pub(crate) const MAX_COMPONENT: usize = 255;

/// Why a value breaks a rule. `needle` is the offending part, to put the caret on it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub kind: DiagnosticKind,
    pub message: String,
    pub hint: String,
    pub needle: Option<String>,
}

impl Problem {
    pub(crate) fn new(kind: DiagnosticKind, message: String, hint: String) -> Self {
        Problem {
            kind,
            message,
            hint,
            needle: None,
        }
    }

    pub(crate) fn at(mut self, needle: impl Into<String>) -> Self {
        self.needle = Some(needle.into());
        self
    }
}

/// `s` in backticks with control characters escaped, for messages.
pub(crate) fn show(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('`');
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('`');
    out
}

/// Characters NTFS refuses in file names (besides `/`, `\` and control characters).
const NTFS_INVALID: &[char] = &['<', '>', ':', '"', '|', '?', '*'];

/// Whether `component` is a Windows device name (`CON`, `nul.txt`, `COM1.tar.gz`, ...), which
/// Windows opens as a device instead of a file whatever the extension.
pub(crate) fn is_windows_reserved(component: &str) -> bool {
    let stem = component
        .split_once('.')
        .map_or(component, |(stem, _)| stem);
    // As bytes: a name of other scripts is never one of these, and slicing it as text could
    // cut a character in two. Three letters, or three and a digit: nothing else is looked at.
    match stem.trim_end_matches(' ').as_bytes() {
        [a, b, c] => [b"CON", b"PRN", b"AUX", b"NUL"]
            .iter()
            .any(|reserved| reserved.eq_ignore_ascii_case(&[*a, *b, *c])),
        [a, b, c, digit] => {
            [b"COM", b"LPT"]
                .iter()
                .any(|reserved| reserved.eq_ignore_ascii_case(&[*a, *b, *c]))
                && matches!(digit, b'1'..=b'9')
        }
        _ => false,
    }
}

/// Checks a model, app, type, family or tag name; `what` names it in messages.
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), Problem> {
    // The common case in one pass over the bytes (a manifest has 30,000 names): letters,
    // digits, `.`, `_` and `-`, starting with a letter or a digit. Anything else is looked at
    // rule by rule below, for the message.
    let bytes = name.as_bytes();
    if bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last() != Some(&b'.')
        && bytes.len() <= MAX_NAME
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !is_windows_reserved(name)
    {
        return Ok(());
    }
    let bad = |message: String| Problem::new(DiagnosticKind::BadName, message, name_hint(name));
    if name.is_empty() {
        return Err(bad(format!("the {what} is empty")));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        let message = if c == '\0' {
            format!("the {what} {} contains a NUL character", show(name))
        } else {
            format!(
                "the {what} {} contains a control character (U+{:04X})",
                show(name),
                c as u32
            )
        };
        return Err(bad(message));
    }
    if name == "." || name == ".." {
        return Err(bad(format!(
            "the {what} {} would name a parent or current folder",
            show(name)
        ))
        .at(name));
    }
    if let Some(c) = name.chars().find(|c| matches!(c, '/' | '\\')) {
        return Err(bad(format!(
            "the {what} {} contains `{c}`: a name cannot hold a path separator",
            show(name)
        ))
        .at(c.to_string()));
    }
    if let Some(c) = name.chars().find(|c| NTFS_INVALID.contains(c)) {
        return Err(bad(format!(
            "the {what} {} contains `{c}`, which Windows does not allow in file names",
            show(name)
        ))
        .at(c.to_string()));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(bad(format!(
            "the {what} {} contains {}: names use letters, digits, `.`, `_` and `-`",
            show(name),
            show(&c.to_string())
        ))
        .at(c.to_string()));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(bad(format!(
            "the {what} {} must start with a letter or a digit",
            show(name)
        )));
    }
    if name.ends_with('.') {
        return Err(bad(format!(
            "the {what} {} ends with `.`, which Windows strips from file names",
            show(name)
        )));
    }
    let length = name.chars().count();
    if length > MAX_NAME {
        return Err(bad(format!(
            "the {what} is {length} characters long; the limit is {MAX_NAME}"
        )));
    }
    if is_windows_reserved(name) {
        return Err(bad(format!(
            "the {what} {} is a reserved device name on Windows",
            show(name)
        )));
    }
    Ok(())
}

fn name_hint(name: &str) -> String {
    let suggestion = suggest_name(name);
    let rule = "use letters, digits, `.`, `_` and `-`, starting with a letter or digit, at most 128 \
                characters, and not a Windows device name (CON, NUL, COM1, ...)";
    if suggestion.is_empty() || suggestion == name {
        format!("rename it: {rule}")
    } else {
        format!("rename it, e.g. `{suggestion}`: {rule}")
    }
}

/// A name that follows the rules and resembles `name`.
fn suggest_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    out = out
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .trim_end_matches('.')
        .chars()
        .take(MAX_NAME)
        .collect();
    if is_windows_reserved(&out) {
        out.insert_str(0, "my-");
    }
    out
}

/// Checks `file:`: one file name, portable to Windows.
pub(crate) fn check_file_name(file: &str) -> Result<(), Problem> {
    let unsafe_path = |message: String| {
        Problem::new(
            DiagnosticKind::UnsafePath,
            message,
            "write a plain file name such as `model.safetensors`: no folders, no `..`, none of \
             `<>:\"|?*` and no trailing dot or space"
                .to_owned(),
        )
    };
    if file.contains(['/', '\\']) || file.starts_with('~') {
        let what = if file.starts_with(['/', '\\', '~']) {
            "an absolute path"
        } else {
            "a path"
        };
        return Err(unsafe_path(format!(
            "`file` must be a file name, not {what}: {}",
            show(file)
        )));
    }
    check_component("`file`", file, false).map_err(|p| unsafe_path(p.message).with_needle(p.needle))
}

impl Problem {
    fn with_needle(mut self, needle: Option<String>) -> Self {
        self.needle = needle;
        self
    }
}

/// Checks a `/`-separated path that must stay inside `base` (a folder of an app, the files of a
/// source). `glob` allows `*` and `?`; `what` names the field in messages.
pub(crate) fn check_relative_path(
    what: &str,
    base: &str,
    path: &str,
    glob: bool,
) -> Result<(), Problem> {
    let hint = format!(
        "write a path relative to {base} with `/` between folders, e.g. `models/loras`: no \
         leading `/` or `~`, no `..`, none of `<>:\"|` and no trailing dot or space"
    );
    let unsafe_path =
        |message: String| Problem::new(DiagnosticKind::UnsafePath, message, hint.clone());
    if path.is_empty() {
        return Err(unsafe_path(format!("{what} is empty")));
    }
    let drive =
        path.len() >= 2 && path.as_bytes()[1] == b':' && path.as_bytes()[0].is_ascii_alphabetic();
    if path.starts_with(['/', '\\', '~']) || drive {
        return Err(unsafe_path(format!(
            "{what} {} is absolute; it must be relative to {base}",
            show(path)
        )));
    }
    if path.contains('\\') {
        return Err(unsafe_path(format!(
            "{what} {} uses `\\`; separate folders with `/`",
            show(path)
        ))
        .at("\\"));
    }
    for component in path.split('/') {
        if component == ".." {
            return Err(unsafe_path(format!(
                "{what} {} contains `..`, which would leave {base}",
                show(path)
            ))
            .at(".."));
        }
        if component.is_empty() || component == "." {
            continue;
        }
        check_component(what, component, glob)
            .map_err(|p| unsafe_path(p.message).with_needle(p.needle))?;
    }
    Ok(())
}

/// One file or folder name inside a path.
fn check_component(what: &str, component: &str, glob: bool) -> Result<(), Problem> {
    let fail = |message: String| Problem::new(DiagnosticKind::UnsafePath, message, String::new());
    if let Some(c) = component.chars().find(|c| c.is_control()) {
        let message = if c == '\0' {
            format!("{what} {} contains a NUL character", show(component))
        } else {
            format!(
                "{what} {} contains a control character (U+{:04X})",
                show(component),
                c as u32
            )
        };
        return Err(fail(message));
    }
    let invalid = |c: &char| NTFS_INVALID.contains(c) && !(glob && matches!(c, '*' | '?'));
    if let Some(c) = component.chars().find(invalid) {
        return Err(fail(format!(
            "{what} {} contains `{c}`, which Windows does not allow in file names",
            show(component)
        ))
        .at(c.to_string()));
    }
    if component == "." || component == ".." {
        return Err(fail(format!("{what} cannot be {}", show(component))));
    }
    if component.ends_with(['.', ' ']) {
        return Err(fail(format!(
            "{what} {} ends with a dot or a space, which Windows strips from file names",
            show(component)
        )));
    }
    if component.len() > MAX_COMPONENT {
        return Err(fail(format!(
            "{what} has a name of {} bytes; the limit is {MAX_COMPONENT}",
            component.len()
        )));
    }
    if is_windows_reserved(component) {
        return Err(fail(format!(
            "{what} {} is a reserved device name on Windows",
            show(component)
        ))
        .at(component));
    }
    Ok(())
}

/// Checks a hex digest and returns it in lowercase.
pub(crate) fn check_hash(algorithm: &str, value: &str) -> Result<String, Problem> {
    // The common case, 64 lowercase hex digits, in one pass (10,000 pinned models ask).
    if value.len() == 64
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Ok(value.to_owned());
    }
    let tool = if algorithm == "sha256" {
        "sha256sum"
    } else {
        "b3sum"
    };
    // The hint is written only for a bad hash: a manifest of 10,000 pinned models checks
    // 10,000 good ones.
    let bad = |message: String| {
        let hint = format!(
            "write the 64 hex digits `{tool} FILE` prints (Civitai and HuggingFace show them \
             too), or remove `{algorithm}` and let `mlib lock` record it"
        );
        Problem::new(DiagnosticKind::BadHash, message, hint)
    };
    if let Some((prefix, _)) = value.split_once(':') {
        return Err(bad(format!(
            "`{algorithm}` has a `{prefix}:` prefix; write the bare hex digits"
        ))
        .at(format!("{prefix}:")));
    }
    if let Some(c) = value.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(bad(format!(
            "`{algorithm}` contains {}, which is not a hex digit",
            show(&c.to_string())
        ))
        .at(c.to_string()));
    }
    if value.len() != 64 {
        return Err(bad(format!(
            "`{algorithm}` must be 64 hex digits; this one has {}",
            value.len()
        )));
    }
    Ok(value.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_reserved_names() {
        for name in [
            "CON",
            "con",
            "nul.txt",
            "Com1.safetensors",
            "LPT9",
            "aux.tar.gz",
        ] {
            assert!(is_windows_reserved(name), "{name}");
        }
        for name in ["COM0", "COM10", "console", "nullable", "lpt", "CONx.txt"] {
            assert!(!is_windows_reserved(name), "{name}");
        }
        // Names in other scripts, whose characters are several bytes: never reserved, and
        // looked at without cutting a character in two (a folder `модели` was a panic).
        for name in [
            "модели",
            "ab€",
            "€€",
            "日本語",
            "Ñame",
            "COMé",
            "CO€.txt",
            "CÖM1",
        ] {
            assert!(!is_windows_reserved(name), "{name}");
        }
        assert!(
            is_windows_reserved("nul .txt"),
            "trailing spaces are ignored"
        );
    }

    #[test]
    fn names() {
        assert!(check_name("model name", "sdxl-base_1.0").is_ok());
        for bad in [
            "", "-x", ".hidden", "a b", "a/b", "a\\b", "a:b", "x.", "CON", "nul.x", "a\0b", "é",
        ] {
            assert!(check_name("model name", bad).is_err(), "{bad:?}");
        }
        assert!(check_name("model name", &"a".repeat(128)).is_ok());
        assert!(check_name("model name", &"a".repeat(129)).is_err());
    }

    #[test]
    fn suggestions_follow_the_rules() {
        for name in ["my model", "-x", "con", "a.", "ü:x"] {
            let s = suggest_name(name);
            assert!(s.is_empty() || check_name("x", &s).is_ok(), "{name} -> {s}");
        }
        assert_eq!(suggest_name("my model"), "my-model");
    }

    #[test]
    fn relative_paths() {
        let ok = |p| check_relative_path("folder", "the app root", p, false);
        assert!(ok("models/loras").is_ok());
        assert!(ok("./models/x").is_ok());
        assert!(ok("models/../x").is_err());
        assert!(ok("/abs").is_err());
        assert!(ok("C:/x").is_err());
        assert!(ok("~/x").is_err());
        assert!(ok("a\\b").is_err());
        assert!(ok("models/aux").is_err());
        assert!(ok("models/x ").is_err());
        assert!(ok("a*b").is_err());
        assert!(check_relative_path("glob", "the source", "**/*.safetensors", true).is_ok());
    }

    #[test]
    fn file_names() {
        assert!(check_file_name("model v2.safetensors").is_ok());
        assert!(check_file_name("a/b").is_err());
        assert!(check_file_name("/abs").is_err());
        assert!(check_file_name("..").is_err());
        assert!(check_file_name("x.").is_err());
        assert!(check_file_name("PRN.safetensors").is_err());
        assert!(check_file_name("a?b").is_err());
    }

    #[test]
    fn hashes() {
        let h = "AB".repeat(32);
        assert_eq!(check_hash("sha256", &h).unwrap(), "ab".repeat(32));
        assert!(check_hash("sha256", &h[..63]).is_err());
        assert!(check_hash("sha256", &format!("sha256:{h}")).is_err());
        assert!(check_hash("blake3", &"g".repeat(64)).is_err());
    }
}
