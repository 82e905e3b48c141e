//! The test environment: a temp directory, a cleared environment, and the real `mlib`
//! binary run as a user would run it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::Digest;

pub struct TestEnv {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn success(&self) -> &Run {
        assert_eq!(self.code, 0, "expected success\n{self}");
        self
    }

    #[track_caller]
    pub fn code(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "expected exit code {code}\n{self}");
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Run {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{self}"
        );
        self
    }

    /// Asserts that stderr has a line equal to `line` once trimmed, taking an error message
    /// that wraps (its continuation lines start with `│`) as one line: an error's `× ...`.
    #[track_caller]
    pub fn stderr_line(&self, line: &str) -> &Run {
        let mut lines: Vec<String> = Vec::new();
        for l in self.stderr.lines().map(str::trim) {
            match (l.strip_prefix("│ "), lines.last_mut()) {
                (Some(rest), Some(last)) if last.starts_with('×') => {
                    last.push(' ');
                    last.push_str(rest.trim());
                }
                _ => lines.push(l.to_owned()),
            }
        }
        assert!(
            lines.iter().any(|l| l == line) || self.stderr.lines().any(|l| l == line),
            "stderr has no line {line:?}\n{self}"
        );
        self
    }

    /// The JSON events printed on stdout.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

impl Run {
    /// The run as its snapshot shows it (see [`assert_run!`]): exit code, stdout and stderr.
    pub fn snapshot(&self) -> String {
        self.to_string()
    }
}

/// What differs between two runs of the same test, replaced in snapshots: where the test's
/// folder is, times, durations and rates, process ids, ports, random ids.
pub fn filters(env: &TestEnv) -> Vec<(String, String)> {
    let root = regex_escape(&env.root.display().to_string());
    [
        (root.as_str(), "[ROOT]"),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]"),
        (r"\d{8}T\d{6}Z", "[TIME]"),
        (r"\b\d{4}-\d\d-\d\d\b", "[DATE]"),
        (r"in \d+\.\ds \([^)]*\)", "in [DURATION]"),
        (r"\bpid \d+", "pid [PID]"),
        (r"mlib-tmp-\d+-\d+-\d+", "mlib-tmp-[PID]"),
        (r"127\.0\.0\.([12]):\d+", "127.0.0.$1:[PORT]"),
        (r"lock id [0-9a-f]{16}", "lock id [ID]"),
        (r"auto:[0-9a-f]{32}", "auto:[KEY]"),
        (r"stores/([A-Za-z0-9._-]*)-[0-9a-f]{12}", "stores/$1-[HASH]"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect()
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}

/// Asserts a run's snapshot (exit code, stdout, stderr; with [`filters`] applied), stored in
/// `tests/e2e/snapshots/`. Review a change with `cargo insta review`, or accept the new output
/// with `INSTA_UPDATE=always cargo test --test e2e` and read the diff.
#[macro_export]
macro_rules! assert_run {
    ($env:expr, $name:expr, $run:expr) => {{
        let mut settings = insta::Settings::clone_current();
        for (from, to) in $crate::support::filters(&$env) {
            settings.add_filter(&from, to);
        }
        settings.set_prepend_module_to_snapshot(false);
        let name: &str = &$name;
        settings.bind(|| insta::assert_snapshot!(name, $run.snapshot()));
    }};
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code: {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical tempdir");
        std::fs::create_dir_all(root.join("home")).unwrap();
        TestEnv { _dir: dir, root }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Writes a model file with content unique to `seed` and returns its sha256.
    pub fn model_file(&self, rel: &str, seed: &str, size: usize) -> String {
        let contents = model_bytes(seed, size);
        self.write(rel, &contents);
        sha256(&contents)
    }

    pub fn manifest(&self, yaml: &str) -> PathBuf {
        self.write("models.yaml", yaml)
    }

    /// A `mlib` command in this environment: cwd is the root, HOME is inside it, and nothing
    /// from the developer's environment leaks in.
    pub fn command(&self) -> Command {
        self.command_for(env!("CARGO_BIN_EXE_mlib").as_ref())
    }

    /// Another program, run the way [`TestEnv::command`] runs mlib.
    pub fn command_for(&self, program: &std::ffi::OsStr) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.root)
            .env_clear()
            .env("HOME", self.root.join("home"))
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null());
        cmd
    }

    pub fn mlib(&self, args: &[&str]) -> Run {
        Run::from(self.command().args(args).output().expect("run mlib"))
    }
}

pub fn model_bytes(seed: &str, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    let mut block = sha2::Sha256::digest(seed.as_bytes()).to_vec();
    while out.len() < size {
        out.extend_from_slice(&block);
        block = sha2::Sha256::digest(&block).to_vec();
    }
    out.truncate(size);
    out
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Every file and symlink under `dir`, relative, with what it is: for "nothing else changed"
/// assertions.
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in read.flatten() {
        let path = entry.path();
        let rel = path.strip_prefix(base).unwrap().display().to_string();
        let meta = path.symlink_metadata().unwrap();
        if meta.file_type().is_symlink() {
            out.push(format!(
                "{rel} -> {}",
                std::fs::read_link(&path).unwrap().display()
            ));
        } else if meta.is_dir() {
            out.push(format!("{rel}/"));
            walk(base, &path, out);
        } else {
            out.push(rel);
        }
    }
}

/// Every file in a store except mlib's own bookkeeping (registry, apply lock): what a failed
/// fetch must not leave behind, staging files included.
pub fn store_files(store: &Path) -> Vec<String> {
    tree(store)
        .into_iter()
        .filter(|p| {
            !p.ends_with('/') && !p.starts_with(".mlib/registry") && !p.starts_with(".mlib/apply")
        })
        .collect()
}

/// A safetensors file with F16 tensors of these shapes (zeros) and metadata.
pub fn safetensors(
    env: &TestEnv,
    rel: &str,
    tensors: &[(&str, &[u64])],
    metadata: &[(&str, &str)],
) {
    let mut header = serde_json::Map::new();
    let mut offset = 0u64;
    for (name, shape) in tensors {
        let bytes = shape.iter().product::<u64>() * 2;
        header.insert(
            (*name).into(),
            serde_json::json!({"dtype": "F16", "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let meta: serde_json::Map<String, serde_json::Value> = metadata
        .iter()
        .map(|(k, v)| ((*k).to_string(), serde_json::Value::from(*v)))
        .collect();
    header.insert("__metadata__".into(), meta.into());
    let json = serde_json::to_vec(&header).unwrap();
    let mut file = (json.len() as u64).to_le_bytes().to_vec();
    file.extend(json);
    file.extend(std::iter::repeat_n(0u8, offset as usize));
    env.write(rel, file);
}

/// A manifest as most tests need one: `version: 1`, `store: ./store`, some top-level lines,
/// models (local files written and pinned by [`Manifest::local`], or any YAML body) and apps.
/// `write` puts it in `models.yaml`; what it writes is plain YAML a test can still read.
#[derive(Clone, Default)]
pub struct Manifest {
    top: String,
    models: String,
    apps: String,
}

impl Manifest {
    pub fn new() -> Manifest {
        Manifest::default()
    }

    /// A top-level line (or lines), e.g. `layout: flat`.
    pub fn top(mut self, yaml: &str) -> Manifest {
        if !yaml.is_empty() {
            self.top.push_str(yaml);
            ensure_newline(&mut self.top);
        }
        self
    }

    /// A model with this body (its keys, each on a line, unindented).
    pub fn model(mut self, name: &str, body: &str) -> Manifest {
        self.models.push_str(&format!("  {name}:\n"));
        for line in body.lines() {
            self.models.push_str(&format!("    {line}\n"));
        }
        self
    }

    /// A local model file `src/{name}.safetensors` of `size` bytes unique to `name`, written
    /// now, with its sha256 pinned.
    pub fn local(self, env: &TestEnv, name: &str, kind: &str, size: usize) -> Manifest {
        let sha = env.model_file(&format!("src/{name}.safetensors"), name, size);
        self.model(
            name,
            &format!("source: ./src/{name}.safetensors\nsha256: {sha}\ntype: {kind}"),
        )
    }

    /// An app from a preset, rooted at `root`, with more keys (unindented lines) if any.
    pub fn app(mut self, name: &str, preset: &str, root: &str, extra: &str) -> Manifest {
        self.apps.push_str(&format!(
            "  {name}:\n    preset: {preset}\n    root: {root}\n"
        ));
        for line in extra.lines() {
            self.apps.push_str(&format!("    {line}\n"));
        }
        self
    }

    /// ComfyUI at `./ComfyUI`.
    pub fn comfyui(self, extra: &str) -> Manifest {
        self.app("comfyui", "comfyui", "./ComfyUI", extra)
    }

    pub fn yaml(&self) -> String {
        let models = if self.models.is_empty() {
            "models: {}\n".to_owned()
        } else {
            format!("models:\n{}", self.models)
        };
        let apps = if self.apps.is_empty() {
            String::new()
        } else {
            format!("apps:\n{}", self.apps)
        };
        format!("version: 1\nstore: ./store\n{}{models}{apps}", self.top)
    }

    /// Writes it to `models.yaml`.
    pub fn write(&self, env: &TestEnv) -> PathBuf {
        env.manifest(&self.yaml())
    }
}

fn ensure_newline(text: &mut String) {
    if !text.ends_with('\n') {
        text.push('\n');
    }
}
