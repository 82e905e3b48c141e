//! Raw manifest → validated [`Manifest`]: field by field checks, expansion and path resolution.
//!
//! Every problem is recorded and checking goes on, so one `mlib validate` run lists them all.
//! Entries with problems are still built (with placeholder values) so that cross-entry checks in
//! `validate` can run; the manifest is only returned when nothing was recorded.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

// foldhash (hashbrown's default hasher): 10,000 model names are checked for repeats.
use hashbrown::HashMap;

use crate::diagnostic::{DiagnosticKind, Sink, Span};
use crate::expand::{Env, expand};
use crate::mirror::MirrorUrl;
use crate::model::{
    App, Container, LinkMode, Manifest, Model, ModelSelection, Source, StoreLayout,
};
use crate::raw::{KeyedMap, RawApp, RawManifest, RawModel, RawSelection};
use crate::requires;
use crate::roots;
use crate::rules::{
    MAX_COMPONENT, Problem, check_file_name, check_hash, check_name, check_relative_path, show,
};
use crate::source::{self, Parsed};
use crate::spanned::Spanned;
use crate::url_template;
use crate::validate;

/// Where the parts of a model were written, for errors found by cross-entry checks.
pub(crate) struct ModelSpans {
    pub model_type: Span,
    /// `file:` if given, else `source:`: where the model's file name comes from.
    pub file_name: Span,
    /// Whether `type` is a valid name (cross-checks skip it otherwise).
    pub type_ok: bool,
    /// Whether the source (and `file`) parsed, so the file name is meaningful.
    pub file_ok: bool,
    /// Each `requires:` key with where it is written.
    pub requires: Vec<(String, Span)>,
}

/// Where the parts of an app were written.
pub(crate) struct AppSpans {
    /// Each `models:` entry with its place.
    pub selection: Vec<(String, Span)>,
    /// Where `link: folder` is written, when it is.
    pub link_folder_at: Option<Span>,
    /// Each `link_folders:` entry with its place.
    pub link_folders: Vec<(String, Span)>,
    /// Where `root:` is written; `None` when the root had a problem (already reported).
    pub root_at: Option<Span>,
}

/// Everything `validate` needs: the entries built so far and where they came from.
pub(crate) struct Located {
    /// The store and where `store:` is written, when it resolved.
    pub store: Option<(PathBuf, Span)>,
    pub layout: StoreLayout,
    pub models: Vec<(Model, ModelSpans)>,
    pub apps: Vec<(App, AppSpans)>,
}

pub(crate) struct Resolver<'a, 's> {
    pub sink: &'s mut Sink<'a>,
    pub dir: &'s Path,
    pub env: Env<'s>,
    /// Variables looked up while expanding `store:` and app roots (`Manifest::identity_vars`).
    identity_vars: Vec<(String, Option<String>)>,
}

/// Checks and resolves `raw`. `path` is absolute; `digest` is the sha256 of the manifest bytes.
pub(crate) fn resolve(
    raw: RawManifest,
    sink: &mut Sink,
    path: &Path,
    dir: &Path,
    digest: String,
    env: Env,
) -> Option<Manifest> {
    let mut r = Resolver {
        sink,
        dir,
        env,
        identity_vars: Vec::new(),
    };
    let is_lock = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("lock"));
    if is_lock {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        r.sink.push(
            DiagnosticKind::ManifestName,
            Span::default(),
            format!(
                "the manifest `{name}` ends in `.lock`, so its lock file would be the manifest \
                 itself"
            ),
            "rename it, e.g. to `models.yaml`: the lock of `NAME.yaml` is `NAME.lock` next to it",
        );
    }
    if raw.version.value != 1 {
        let at = r.span(&raw.version);
        r.sink.push(
            DiagnosticKind::UnsupportedVersion,
            at,
            format!("manifest version {} is not supported", raw.version.value),
            "write `version: 1`, the only version this mlib reads (a newer mlib may read newer \
             manifests)",
        );
    }
    let store = r.identity_path_field("`store`", &raw.store);
    let store =
        store.filter(|store| r.own_folder("`store`", store, &raw.store, "`store: ~/models`"));
    let state = raw.state.as_ref().map(|state| {
        r.path_field("`state`", state)
            .filter(|path| r.own_folder("`state`", path, state, "`state: ~/.local/state/mlib`"))
    });
    if let Some(environment) = &raw.environment
        && let Err(problem) = check_name("environment name", &environment.value)
    {
        let at = r.span(environment);
        r.report(at, "", problem);
    }
    let mirrors = r.mirrors(&raw.mirrors);
    let layout = raw.layout.map(|l| l.value).unwrap_or_default();
    let models = r.models(raw.models);
    let apps = r.apps(raw.apps);
    let store_at = r.span(&raw.store);
    let located = Located {
        store: store.clone().map(|store| (store, store_at)),
        layout,
        models,
        apps,
    };
    validate::check(&mut r, &located);
    if !r.sink.is_empty() {
        return None;
    }
    let mut identity_vars = std::mem::take(&mut r.identity_vars);
    // Stable sort: the first lookup of a name is kept (a later one gives the same value).
    identity_vars.sort_by(|a, b| a.0.cmp(&b.0));
    identity_vars.dedup_by(|a, b| a.0 == b.0);
    Some(Manifest {
        path: path.to_path_buf(),
        dir: dir.to_path_buf(),
        digest,
        version: raw.version.value,
        store: store?,
        layout,
        state: state.flatten(),
        environment: raw.environment.map(|e| e.value),
        identity_vars,
        mirrors,
        models: located
            .models
            .into_iter()
            .map(|(m, _)| (m.name.clone(), m))
            .collect(),
        apps: located
            .apps
            .into_iter()
            .map(|(a, _)| (a.name.clone(), a))
            .collect(),
    })
}

impl Resolver<'_, '_> {
    pub fn span<T>(&self, value: &Spanned<T>) -> Span {
        self.sink.span(&value.referenced)
    }

    /// Records `problem` at `at`, narrowed to the offending part when the problem names one.
    pub fn report(&mut self, at: Span, context: &str, problem: Problem) {
        let at = match &problem.needle {
            Some(needle) => self.sink.narrow(at, needle),
            None => at,
        };
        let message = if context.is_empty() {
            problem.message
        } else {
            format!("{context}: {}", problem.message)
        };
        self.sink.push(problem.kind, at, message, problem.hint);
    }

    /// `mirrors:`: each entry expanded and parsed; a bad one is reported where it is written.
    fn mirrors(&mut self, raw: &[Spanned<String>]) -> Vec<MirrorUrl> {
        let mut mirrors = Vec::new();
        for value in raw {
            let at = self.span(value);
            let expanded = match expand(&value.value, self.env) {
                Ok(expanded) => expanded,
                Err(error) => {
                    let at = self.sink.narrow(at, &error.needle);
                    self.sink.push(error.kind, at, error.message, error.hint);
                    continue;
                }
            };
            match MirrorUrl::parse(&expanded) {
                Ok(mirror) if mirrors.contains(&mirror) => self.sink.push(
                    DiagnosticKind::DuplicateKey,
                    at,
                    format!("the mirror {mirror} is listed twice"),
                    "remove one: mirrors are tried in the order listed",
                ),
                Ok(mirror) => mirrors.push(mirror),
                Err(why) if why.contains("user or password") => self.sink.push(
                    DiagnosticKind::LiteralSecret,
                    at,
                    why,
                    "an https:// mirror is read with plain GETs and takes no credential; an \
                     s3:// mirror takes its credentials from AWS_ACCESS_KEY_ID / \
                     AWS_SECRET_ACCESS_KEY or AWS_PROFILE",
                ),
                Err(why) => self.sink.push(
                    DiagnosticKind::BadMirror,
                    at,
                    why,
                    "write `s3://BUCKET/PREFIX` (its endpoint, for R2 or MinIO, goes in \
                     AWS_ENDPOINT_URL) or `https://HOST/PREFIX`",
                ),
            }
        }
        mirrors
    }

    /// Expands a path field and makes it absolute (relative to the manifest's directory).
    fn path_field(&mut self, what: &str, value: &Spanned<String>) -> Option<PathBuf> {
        self.expand_path(what, value, self.env)
    }

    /// Whether `path` (the expansion of `value`) may be `what`: not `/`, a system folder or the
    /// home folder itself (see `roots`); else it is reported. `example` is a line to suggest.
    fn own_folder(
        &mut self,
        what: &str,
        path: &Path,
        value: &Spanned<String>,
        example: &str,
    ) -> bool {
        let home = (self.env)("HOME");
        let Some(message) = roots::unsafe_root(what, path, home.as_deref()) else {
            return true;
        };
        let at = self.span(value);
        self.sink.push(
            DiagnosticKind::UnsafeRoot,
            at,
            message,
            format!(
                "use a folder of its own, e.g. {example}: mlib creates and removes files and \
                 links under it"
            ),
        );
        false
    }

    /// [`Self::path_field`] for a field that identifies the environment (`store:`, app roots):
    /// the variables its expansion looks up are recorded in `identity_vars`.
    fn identity_path_field(&mut self, what: &str, value: &Spanned<String>) -> Option<PathBuf> {
        let env = self.env;
        let seen = RefCell::new(Vec::new());
        let recording = |name: &str| {
            let value = env(name);
            seen.borrow_mut().push((name.to_owned(), value.clone()));
            value
        };
        let path = self.expand_path(what, value, &recording);
        self.identity_vars.extend(seen.into_inner());
        path
    }

    fn expand_path(&mut self, what: &str, value: &Spanned<String>, env: Env) -> Option<PathBuf> {
        let at = self.span(value);
        match expand(&value.value, env) {
            Ok(expanded) if expanded.is_empty() => {
                self.sink.push(
                    DiagnosticKind::BadExpansion,
                    at,
                    format!("{what} is empty after expansion"),
                    "give the variables a value, or a default with `${VAR:-/some/path}`",
                );
                None
            }
            Ok(expanded) if expanded.contains('\0') => {
                self.sink.push(
                    DiagnosticKind::UnsafePath,
                    at,
                    format!("{what} contains a NUL character"),
                    "remove it: paths cannot contain NUL",
                );
                None
            }
            Ok(expanded) => {
                let too_long = expanded
                    .split(['/', '\\'])
                    .find(|name| name.len() > MAX_COMPONENT);
                if let Some(name) = too_long {
                    let at = self.sink.narrow(at, name);
                    self.sink.push(
                        DiagnosticKind::UnsafePath,
                        at,
                        format!(
                            "{what} has a file or folder name of {} bytes; the limit is \
                             {MAX_COMPONENT}",
                            name.len()
                        ),
                        "shorten it: filesystems allow at most 255 bytes per name",
                    );
                    return None;
                }
                Some(absolute(self.dir, &expanded))
            }
            Err(error) => {
                let at = self.sink.narrow(at, &error.needle);
                self.sink.push(error.kind, at, error.message, error.hint);
                None
            }
        }
    }

    /// Checks a map's keys as names and reports repeated keys (exactly, or differing only in
    /// case, which collide on Windows and macOS filesystems). Returns the entries to keep.
    fn unique<T>(&mut self, what: &str, map: KeyedMap<T>) -> Vec<(Spanned<String>, T)> {
        let mut entries = map.entries;
        // Each name folded to lower case once, with the index of its first entry. The
        // duplicates are dropped in place: a second vector of 10,000 raw models was ~5 MB.
        let mut seen: HashMap<String, usize> = HashMap::with_capacity(entries.len());
        let mut keep = vec![true; entries.len()];
        for (index, (key, _)) in entries.iter().enumerate() {
            let at = self.span(key);
            let folded = key.value.to_lowercase();
            if let Some(&first) = seen.get(&folded) {
                let first = &entries[first].0;
                let (first_at, first) = (self.span(first), first.value.clone());
                let line = self.sink.line_of(first_at);
                let message = if first == key.value {
                    format!("duplicate {what} {}", show(&key.value))
                } else {
                    format!(
                        "{what} {} differs from {} only in case; they would collide on Windows and \
                         macOS",
                        show(&key.value),
                        show(&first)
                    )
                };
                self.sink.push(
                    DiagnosticKind::DuplicateKey,
                    at,
                    message,
                    format!(
                        "{} is first defined on line {line}: rename or remove one",
                        show(&first)
                    ),
                );
                keep[index] = false;
                continue;
            }
            if let Err(problem) = check_name(what, &key.value) {
                self.report(at, "", problem);
            }
            seen.insert(folded, index);
        }
        let mut keep = keep.into_iter();
        entries.retain(|_| keep.next().unwrap_or(true));
        entries
    }

    fn models(&mut self, raw: KeyedMap<RawModel>) -> Vec<(Model, ModelSpans)> {
        self.unique("model name", raw)
            .into_iter()
            .map(|(key, model)| self.model(key, model))
            .collect()
    }

    fn model(&mut self, key: Spanned<String>, raw: RawModel) -> (Model, ModelSpans) {
        let name = key.value;
        let context = format!("model `{name}`");
        let source_at = self.span(&raw.source);
        let (source, mut file_ok) = match self.source(&context, &raw.source) {
            Some(source) => (source, true),
            None => (Source::Url(String::new()), false),
        };

        if let Some(revision) = &raw.revision {
            let at = self.span(revision);
            if !matches!(source, Source::HuggingFace { .. }) && file_ok {
                self.sink.push(
                    DiagnosticKind::MisplacedField,
                    at,
                    format!("{context}: `revision` only applies to hf:// sources"),
                    "remove `revision`, or pin the exact file with `sha256`",
                );
            } else if revision.value.trim().is_empty()
                || revision
                    .value
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control())
            {
                self.sink.push(
                    DiagnosticKind::BadSource,
                    at,
                    format!(
                        "{context}: `revision` {} is not a branch, tag or commit",
                        show(&revision.value)
                    ),
                    "write a branch (`main`), a tag or a commit hash, without spaces",
                );
            }
        }

        let sha256 = self.hash(&context, "sha256", raw.sha256.as_ref());
        let blake3 = self.hash(&context, "blake3", raw.blake3.as_ref());

        let type_at = self.span(&raw.model_type);
        let type_ok = match check_name("type", &raw.model_type.value) {
            Ok(()) => true,
            Err(problem) => {
                self.report(type_at, &context, problem);
                false
            }
        };
        if let Some(family) = &raw.family
            && let Err(problem) = check_name("family", &family.value)
        {
            let at = self.span(family);
            self.report(at, &context, problem);
        }
        let include = self.globs(&context, "include", raw.include);
        let exclude = self.globs(&context, "exclude", raw.exclude);
        let mut tags = Vec::new();
        for tag in raw.tags {
            if let Err(problem) = check_name("tag", &tag.value) {
                let at = self.span(&tag);
                self.report(at, &context, problem);
            }
            tags.push(tag.value);
        }
        let mut file_name = source_at;
        if let Some(file) = &raw.file {
            file_name = self.span(file);
            if let Err(problem) = check_file_name(&file.value) {
                self.report(file_name, &context, problem);
                file_ok = false;
            }
        }
        let mut requires = BTreeMap::new();
        let mut requires_at = Vec::new();
        for (key, value) in self.unique("`requires` key", raw.requires) {
            let at = self.span(&value);
            match requires::specifiers(&value.value) {
                Ok(specifiers) => {
                    requires.insert(key.value.clone(), specifiers);
                }
                Err(problem) => self.report(
                    at,
                    &format!("{context}, `requires` for `{}`", key.value),
                    problem,
                ),
            }
            let key_at = self.span(&key);
            requires_at.push((key.value, key_at));
        }
        let model = Model {
            name,
            source,
            revision: raw.revision.map(|r| r.value),
            sha256,
            blake3,
            model_type: raw.model_type.value,
            family: raw.family.map(|f| f.value),
            include,
            exclude,
            tags,
            file: raw.file.map(|f| f.value),
            requires,
        };
        let spans = ModelSpans {
            model_type: type_at,
            file_name,
            type_ok,
            file_ok,
            requires: requires_at,
        };
        (model, spans)
    }

    fn source(&mut self, context: &str, raw: &Spanned<String>) -> Option<Source> {
        let at = self.span(raw);
        // Credentials written into a URL stay out of every snippet, valid URL or not.
        let literals = self.hide_credentials(raw);
        match source::parse(&raw.value) {
            Ok(Parsed::Remote(source)) => {
                if let (Source::Url(url), Some((_, first))) = (&source, literals.first()) {
                    let literals: Vec<_> = literals.iter().map(|(l, _)| l).collect();
                    let problem = url_template::literal_problem(url, &literals);
                    self.report(*first, context, problem);
                }
                Some(source)
            }
            Ok(Parsed::Local(_)) => {
                let path = self.path_field(&format!("{context}: the source path"), raw)?;
                Some(Source::Local(path))
            }
            Err(problem) => {
                self.report(at, context, problem);
                None
            }
        }
    }

    /// The credentials written into `raw` when it is a URL, with their places, each marked as
    /// a secret that snippets star.
    fn hide_credentials(&mut self, raw: &Spanned<String>) -> Vec<(url_template::Literal, Span)> {
        let url = raw.value.as_str();
        let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            return Vec::new();
        }
        let literals = url_template::literal_credentials(url);
        let at = self.span(raw);
        // Where the URL's text is in the manifest: exactly there unless escapes changed it.
        let whole = self.sink.narrow(at, url);
        let place = |range: &std::ops::Range<usize>| {
            if whole.length == url.len() {
                Span {
                    offset: whole.offset + range.start,
                    length: range.len(),
                }
            } else {
                at
            }
        };
        let placed: Vec<_> = literals
            .into_iter()
            .map(|literal| {
                let at = place(&literal.range);
                (literal, at)
            })
            .collect();
        for (_, at) in &placed {
            self.sink.secret(*at);
        }
        placed
    }

    fn hash(
        &mut self,
        context: &str,
        algorithm: &str,
        raw: Option<&Spanned<String>>,
    ) -> Option<String> {
        let raw = raw?;
        match check_hash(algorithm, &raw.value) {
            Ok(hash) => Some(hash),
            Err(problem) => {
                let at = self.span(raw);
                self.report(at, context, problem);
                None
            }
        }
    }

    fn globs(&mut self, context: &str, field: &str, raw: Vec<Spanned<String>>) -> Vec<String> {
        let mut out = Vec::with_capacity(raw.len());
        for glob in raw {
            let at = self.span(&glob);
            let what = format!("`{field}` pattern");
            if let Err(problem) = check_relative_path(&what, "the source folder", &glob.value, true)
            {
                self.report(at, context, problem);
            } else if let Err(error) = globset::Glob::new(&glob.value) {
                self.sink.push(
                    DiagnosticKind::BadGlob,
                    at,
                    format!(
                        "{context}: {what} {} is not a valid glob: {}",
                        show(&glob.value),
                        error.kind()
                    ),
                    "use `*` (within a folder), `**` (any depth), `?`, `[abc]` and `{a,b}`; quote \
                     patterns that start with `*`",
                );
            }
            out.push(glob.value);
        }
        out
    }

    fn apps(&mut self, raw: KeyedMap<RawApp>) -> Vec<(App, AppSpans)> {
        self.unique("app name", raw)
            .into_iter()
            .map(|(key, app)| self.app(key, app))
            .collect()
    }

    fn app(&mut self, key: Spanned<String>, raw: RawApp) -> (App, AppSpans) {
        let name = key.value;
        let key_at = self.sink.span(&key.referenced);
        let context = format!("app `{name}`");
        let what = format!("{context}: `root`");
        let root = self
            .identity_path_field(&what, &raw.root)
            .filter(|root| self.own_folder(&what, root, &raw.root, "`root: ~/ComfyUI`"));
        let root_at = root.is_some().then(|| self.span(&raw.root));
        let root = root.unwrap_or_default();
        let preset = raw.preset.map(|p| p.value);

        let mut selection = Vec::new();
        let models = match raw.models {
            None => ModelSelection::All,
            Some(spanned) => {
                let at = self.span(&spanned);
                match spanned.value {
                    RawSelection::All => ModelSelection::All,
                    RawSelection::List(items) => {
                        let mut names = Vec::new();
                        for item in items {
                            let at = self.span(&item);
                            selection.push((item.value.clone(), at));
                            names.push(item.value);
                        }
                        ModelSelection::Names(names)
                    }
                    RawSelection::Other(word) => {
                        self.sink.push(
                            DiagnosticKind::WrongType,
                            at,
                            format!("{context}: `models: {word}` is neither `all` nor a list"),
                            format!("write `models: all`, or a list: `models: [{word}]`"),
                        );
                        ModelSelection::Names(Vec::new())
                    }
                }
            }
        };

        let mut folders = BTreeMap::new();
        for (ty, folder) in self.unique("type", raw.folders) {
            let at = self.span(&folder);
            if let Err(problem) =
                check_relative_path("the folder", "the app's root", &folder.value, false)
            {
                self.report(
                    at,
                    &format!("{context}: folder for `{}`", ty.value),
                    problem,
                );
            }
            folders.insert(ty.value, folder.value);
        }
        if preset.is_none() && folders.is_empty() {
            self.sink.push(
                DiagnosticKind::EmptyApp,
                key_at,
                format!(
                    "{context} has neither a `preset` nor `folders`, so it can receive nothing"
                ),
                "add `preset: comfyui` (or a1111, forge, sdnext, fooocus, swarmui), or list \
                 folders: `folders: { loras: models/loras }`",
            );
        }
        let version = raw.version.and_then(|version| {
            let at = self.span(&version);
            requires::version(&version.value)
                .map_err(|problem| self.report(at, &context, problem))
                .ok()
        });
        let link_folder_at = raw
            .link
            .as_ref()
            .filter(|l| l.value == LinkMode::Folder)
            .map(|l| self.span(l));
        let mut link_folders = Vec::new();
        for ty in raw.link_folders.map(|l| l.value).unwrap_or_default() {
            let at = self.span(&ty);
            if !link_folders.iter().any(|(t, _)| *t == ty.value) {
                link_folders.push((ty.value, at));
            }
        }
        let container = raw.container.map(|c| {
            if c.value.store.is_none() && c.value.root.is_none() {
                let at = self.span(&c);
                self.sink.push(
                    DiagnosticKind::MissingKey,
                    at,
                    format!("{context}: `container:` says neither `store` nor `root`"),
                    "give where the container mounts the store: `container: { store: /models }`",
                );
            }
            let c = c.value;
            let mut path = |key: &str, value: Option<Spanned<String>>| {
                let value = value?;
                let what = format!("{context}: `container.{key}`");
                // Relative to nothing on this machine: only an absolute path (after `${VAR}`
                // expansion) says where the container has it.
                let written = crate::expand::expand(&value.value, self.env).unwrap_or_default();
                let path = self.path_field(&what, &value)?;
                if Path::new(&written).is_absolute() {
                    return Some(path);
                }
                let at = self.span(&value);
                self.sink.push(
                    DiagnosticKind::UnsafePath,
                    at,
                    format!("{what} is `{}`, not an absolute path", value.value),
                    "give the path as the container sees it, e.g. `/models`",
                );
                None
            };
            Container {
                store: path("store", c.store),
                root: path("root", c.root),
            }
        });
        let app = App {
            name,
            preset,
            root,
            models,
            link: raw.link.map(|l| l.value).unwrap_or(LinkMode::Auto),
            folders,
            version,
            link_folders: link_folders.iter().map(|(t, _)| t.clone()).collect(),
            container,
        };
        let spans = AppSpans {
            selection,
            root_at,
            link_folder_at,
            link_folders,
        };
        (app, spans)
    }
}

/// `value` as an absolute path: relative paths resolve against `dir`; `.` components are dropped.
pub(crate) fn absolute(dir: &Path, value: &str) -> PathBuf {
    if let Some(joined) = absolute_text(dir, value) {
        return joined;
    }
    let path = Path::new(value);
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        dir.join(path)
    };
    joined.components().collect()
}

/// [`absolute`] as text when the result needs no taking apart: `./` in front of a relative
/// path dropped, and nothing else to fold (`//`, a `.` inside, a trailing `/`). Rebuilding
/// each of 10,000 source paths component by component was a tenth of resolving a manifest.
fn absolute_text(dir: &Path, value: &str) -> Option<PathBuf> {
    let joined = if value.starts_with('/') {
        value.to_owned()
    } else {
        let mut rest = value;
        while let Some(after) = rest.strip_prefix("./") {
            rest = after;
        }
        if rest.is_empty() || rest == "." {
            return None;
        }
        format!("{}/{rest}", dir.to_str()?)
    };
    // No empty or `.` name between slashes (one pass; no substring searchers).
    let plain = joined.starts_with('/')
        && (joined.len() == 1
            || joined[1..]
                .split('/')
                .all(|name| !name.is_empty() && name != "."));
    plain.then(|| PathBuf::from(joined))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text shortcut gives exactly what folding the components gives, for the paths
    /// manifests hold and for the odd ones it leaves to the components.
    #[test]
    fn absolute_as_text_is_absolute_by_components() {
        let dirs = ["/home/u/env", "/", "/a/./b", "/a/b/", "/a//b"];
        let values = [
            "./x.safetensors",
            "x",
            "././x",
            "./a/b/c",
            "/abs/x",
            "/abs//x",
            "./a/./b",
            "../up/x",
            "a/..",
            ".",
            "./",
            "a/",
            "/",
            "a//b",
            "./.hidden",
            "..",
            "x/.",
            ".//x",
        ];
        for dir in dirs {
            for value in values {
                let path = Path::new(value);
                let joined = if path.is_absolute() {
                    path.to_path_buf()
                } else {
                    Path::new(dir).join(path)
                };
                let by_components: PathBuf = joined.components().collect();
                assert_eq!(
                    absolute(Path::new(dir), value),
                    by_components,
                    "{dir} + {value}"
                );
            }
        }
    }
}
