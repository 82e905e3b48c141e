//! The settings step, between clap and the commands (as uv's `settings.rs`): the parsed
//! arguments and the environment become plain settings, once. Commands, `context.rs`,
//! `remote.rs` and `commands/planning.rs` see only these structs, never clap's types; what a
//! flag means together with the environment or with another flag is decided here.
//!
//! What stays with the libraries: variables they document themselves (`HF_*`, `CIVITAI_*`,
//! `MLIB_DIRECT_IO`, read by `mlib_fetch::FetchConfig::from_env` and `direct_io_from_env`; `XDG_STATE_HOME`, read by
//! `mlib_registry::locate_state`) and `${VAR}` in the manifest.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mlib_fetch::LockPolicy;
use mlib_manifest::MirrorUrl;
use mlib_manifest::lock::LockedModel;

use crate::cli::{
    AddArgs, ApplyArgs, Approval, BundleCommand, BundleCreateArgs, Cli, ColorChoice, Command,
    DoctorArgs, DuArgs, DuSort, EnrichArgs, EnvCommand, ForgetArgs, GcArgs, GlobalArgs, ImportArgs,
    InitArgs, InspectArgs, MirrorCommand, PlanArgs, RelocateArgs, RemoteArgs, RmArgs, UpdateArgs,
    VerifyArgs,
};

/// Reads an environment variable (the process's, or a fixed one in tests).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Everything one run of mlib needs to know about how it was asked to run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub global: GlobalSettings,
    pub command: CommandSettings,
}

impl Settings {
    pub fn resolve(cli: Cli, env: Env) -> Settings {
        Settings {
            global: GlobalSettings::resolve(&cli.global, env),
            command: CommandSettings::resolve(cli.command),
        }
    }
}

/// Settings every command shares.
#[derive(Debug, Clone)]
pub struct GlobalSettings {
    /// The manifest (`-f`, `MLIB_FILE`).
    pub file: PathBuf,
    /// The environment's name (`--env`, `MLIB_ENV`); an empty one is none.
    pub env_name: Option<String>,
    /// Where the store's state is (`--state-dir`, `MLIB_STATE_DIR`), absolute; an empty one
    /// is none.
    pub state_dir: Option<PathBuf>,
    pub output: OutputSettings,
}

impl GlobalSettings {
    fn resolve(args: &GlobalArgs, env: Env) -> GlobalSettings {
        GlobalSettings {
            file: args.file.clone(),
            env_name: args.env.clone().filter(|name| !name.is_empty()),
            state_dir: args
                .state_dir
                .as_deref()
                .filter(|p| !p.as_os_str().is_empty())
                .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())),
            output: OutputSettings::resolve(args, env),
        }
    }

    /// These settings for another manifest (a saved plan names the one it approves).
    pub fn with_file(&self, file: &Path) -> GlobalSettings {
        GlobalSettings {
            file: file.to_path_buf(),
            ..self.clone()
        }
    }
}

/// How output looks: what the printer and the tracing subscriber need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSettings {
    pub json: bool,
    pub quiet: bool,
    /// How many `-v`.
    pub verbose: u8,
    /// `--color`, with `NO_COLOR` taken into account: `Auto` still depends on the terminal.
    pub color: ColorChoice,
    /// Progress bars may be drawn (on a terminal): not with `--no-progress`, `--json`, `-q`,
    /// or traces, whose lines a bar would tear.
    pub progress_bars: bool,
    /// The tracing filter (`EnvFilter` directives), or `None`: no traces.
    pub trace: Option<String>,
}

impl OutputSettings {
    fn resolve(args: &GlobalArgs, env: Env) -> OutputSettings {
        let trace = trace_filter(args.verbose, env);
        let no_color = env("NO_COLOR").is_some_and(|v| !v.is_empty());
        OutputSettings {
            json: args.json,
            quiet: args.quiet,
            verbose: args.verbose,
            color: match args.color {
                ColorChoice::Auto if no_color => ColorChoice::Never,
                choice => choice,
            },
            progress_bars: !args.no_progress && !args.json && !args.quiet && trace.is_none(),
            trace,
        }
    }
}

/// `RUST_LOG` when set (it overrides `-v`), else mlib's own crates at debug level for `-vv`
/// and at trace level for `-vvv` (every crate's target starts with `mlib`), else none.
fn trace_filter(verbose: u8, env: Env) -> Option<String> {
    if let Some(filter) = env("RUST_LOG").filter(|v| !v.trim().is_empty()) {
        return Some(filter);
    }
    match verbose {
        0 | 1 => None,
        2 => Some("mlib=debug".into()),
        _ => Some("mlib=trace".into()),
    }
}

/// Each command's own settings.
#[derive(Debug, Clone)]
pub enum CommandSettings {
    Validate,
    Plan(PlanSettings),
    Apply(ApplySettings),
    Status,
    Verify(VerifySettings),
    EnvList,
    EnvForget(ForgetSettings),
    Scan,
    Lock(RemoteSettings),
    LockCheck,
    Update(UpdateSettings),
    Relocate(RelocateSettings),
    ForceUnlock {
        id: String,
        force: bool,
    },
    Completions(clap_complete::Shell),
    Man,
    Rm(RmSettings),
    Gc(GcSettings),
    Du {
        sort: DuSort,
    },
    Doctor {
        fix: bool,
    },
    Inspect {
        files: Vec<PathBuf>,
    },
    Init(InitSettings),
    Add(AddSettings),
    Import(ImportSettings),
    Enrich {
        models: Vec<String>,
        dry_run: bool,
        remote: RemoteSettings,
    },
    MirrorPush(MirrorPushSettings),
    MirrorLs(MirrorLsSettings),
    BundleCreate(BundleCreateSettings),
    BundleLs {
        file: PathBuf,
    },
}

/// `mlib mirror push`.
#[derive(Debug, Clone)]
pub struct MirrorPushSettings {
    pub models: Vec<String>,
    /// `--to`: the mirror to write (else the first `s3://` one configured).
    pub to: Option<MirrorUrl>,
    pub remote: RemoteSettings,
}

/// `mlib mirror ls`.
#[derive(Debug, Clone)]
pub struct MirrorLsSettings {
    /// `--from`: the one mirror to list (else every one configured).
    pub from: Option<MirrorUrl>,
    pub remote: RemoteSettings,
}

impl CommandSettings {
    fn resolve(command: Command) -> CommandSettings {
        match command {
            Command::Validate => CommandSettings::Validate,
            Command::Plan(args) => CommandSettings::Plan(PlanSettings::resolve(args)),
            Command::Apply(args) => CommandSettings::Apply(ApplySettings::resolve(args)),
            Command::Status => CommandSettings::Status,
            Command::Verify(VerifyArgs { models, all }) => {
                CommandSettings::Verify(VerifySettings { models, all })
            }
            Command::Env(EnvCommand::List) => CommandSettings::EnvList,
            Command::Bundle(BundleCommand::Create(BundleCreateArgs { out, models })) => {
                CommandSettings::BundleCreate(BundleCreateSettings { out, models })
            }
            Command::Bundle(BundleCommand::Ls { file }) => CommandSettings::BundleLs { file },
            Command::Env(EnvCommand::Forget(ForgetArgs {
                which: env,
                keep_links,
                force,
                approval,
            })) => CommandSettings::EnvForget(ForgetSettings {
                env,
                keep_links,
                force,
                approval: ApprovalSettings::resolve(&approval),
            }),
            Command::Rm(RmArgs {
                models,
                force,
                keep_file,
                approval,
            }) => CommandSettings::Rm(RmSettings {
                models,
                force,
                keep_file,
                approval: ApprovalSettings::resolve(&approval),
            }),
            Command::Gc(GcArgs {
                min_age,
                include_foreign,
                approval,
            }) => CommandSettings::Gc(GcSettings {
                min_age,
                include_foreign,
                approval: ApprovalSettings::resolve(&approval),
            }),
            Command::Du(DuArgs { sort }) => CommandSettings::Du { sort },
            Command::Doctor(DoctorArgs { fix }) => CommandSettings::Doctor { fix },
            Command::Inspect(InspectArgs { files }) => CommandSettings::Inspect { files },
            Command::Add(AddArgs {
                source,
                from_workflow,
                name,
                model_type,
                family,
                apps,
                dry_run,
                remote,
            }) => CommandSettings::Add(AddSettings {
                source,
                from_workflow,
                name,
                model_type,
                family,
                apps,
                dry_run,
                remote: RemoteSettings::resolve(&remote),
            }),
            Command::Enrich(EnrichArgs {
                models,
                dry_run,
                remote,
            }) => CommandSettings::Enrich {
                models,
                dry_run,
                remote: RemoteSettings::resolve(&remote),
            },
            Command::Mirror(MirrorCommand::Push(args)) => {
                CommandSettings::MirrorPush(MirrorPushSettings {
                    models: args.models,
                    to: args.to,
                    remote: RemoteSettings::resolve(&args.remote),
                })
            }
            Command::Mirror(MirrorCommand::Ls(args)) => {
                CommandSettings::MirrorLs(MirrorLsSettings {
                    from: args.from,
                    remote: RemoteSettings::resolve(&args.remote),
                })
            }
            Command::Import(ImportArgs {
                paths,
                move_files,
                model_type,
                apps,
                dry_run,
            }) => CommandSettings::Import(ImportSettings {
                paths,
                move_files,
                model_type,
                apps,
                dry_run,
            }),
            Command::Init(InitArgs {
                apps,
                store,
                dry_run,
                into_store,
            }) => CommandSettings::Init(InitSettings {
                apps,
                store,
                dry_run,
                into_store,
            }),
            Command::Scan => CommandSettings::Scan,
            Command::Lock(args) if args.check => CommandSettings::LockCheck,
            Command::Lock(args) => CommandSettings::Lock(RemoteSettings::resolve(&args.remote)),
            Command::Update(UpdateArgs { models, remote }) => {
                CommandSettings::Update(UpdateSettings {
                    models,
                    remote: RemoteSettings::resolve(&remote),
                })
            }
            Command::Relocate(args) => CommandSettings::Relocate(RelocateSettings::resolve(args)),
            Command::ForceUnlock { id, force } => CommandSettings::ForceUnlock { id, force },
            Command::Completions { shell } => CommandSettings::Completions(shell),
            Command::Man => CommandSettings::Man,
        }
    }

    /// The command's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            CommandSettings::Validate => "validate",
            CommandSettings::Plan(_) => "plan",
            CommandSettings::Apply(_) => "apply",
            CommandSettings::Status => "status",
            CommandSettings::Verify(_) => "verify",
            CommandSettings::EnvList | CommandSettings::EnvForget(_) => "env",
            CommandSettings::BundleCreate(_) | CommandSettings::BundleLs { .. } => "bundle",
            CommandSettings::Rm(_) => "rm",
            CommandSettings::Gc(_) => "gc",
            CommandSettings::Du { .. } => "du",
            CommandSettings::Doctor { .. } => "doctor",
            CommandSettings::Inspect { .. } => "inspect",
            CommandSettings::Init(_) => "init",
            CommandSettings::Add(_) => "add",
            CommandSettings::Import(_) => "import",
            CommandSettings::Enrich { .. } => "enrich",
            CommandSettings::Scan => "scan",
            CommandSettings::Lock(_) | CommandSettings::LockCheck => "lock",
            CommandSettings::Update(_) => "update",
            CommandSettings::Relocate(_) => "relocate",
            CommandSettings::ForceUnlock { .. } => "force-unlock",
            CommandSettings::Completions(_) => "completions",
            CommandSettings::Man => "man",
            CommandSettings::MirrorPush(_) => "mirror push",
            CommandSettings::MirrorLs(_) => "mirror ls",
        }
    }
}

/// How remote models are resolved and fetched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteSettings {
    /// `--locked`: resolve nothing the lock does not cover.
    pub locked: bool,
    /// `--offline` (`HF_HUB_OFFLINE=1` is read by the fetcher itself).
    pub offline: bool,
    pub allow_unpinned: bool,
    pub allow_http: bool,
    /// Use only what the lock says, resolve nothing, never touch the network: `status` and
    /// `scan`, which judge remote models by the lock and the store alone.
    pub lock_only: bool,
    /// `--mirrors` / `MLIB_MIRRORS`: replaces the manifest's `mirrors:` when given.
    pub mirrors: Option<Vec<MirrorUrl>>,
}

impl RemoteSettings {
    fn resolve(args: &RemoteArgs) -> RemoteSettings {
        RemoteSettings {
            locked: args.locked,
            offline: args.offline,
            allow_unpinned: args.allow_unpinned,
            allow_http: args.allow_http,
            lock_only: false,
            mirrors: args.mirrors.clone().map(|m| m.0),
        }
    }

    /// The mirrors to try, in order: `--mirrors` / `MLIB_MIRRORS` when given (a machine's
    /// own choice, such as the bucket nearest a pod), else the manifest's `mirrors:`.
    pub fn mirrors_for(&self, manifest: &mlib_manifest::Manifest) -> Vec<MirrorUrl> {
        self.mirrors
            .clone()
            .unwrap_or_else(|| manifest.mirrors.clone())
    }

    /// For commands that read the lock but never resolve or download (`status`, `scan`).
    pub fn lock_only() -> RemoteSettings {
        RemoteSettings {
            offline: true,
            lock_only: true,
            ..RemoteSettings::default()
        }
    }

    /// The lock file's rules for these settings (and a saved plan's resolutions).
    pub fn lock_policy<'a>(
        &self,
        saved: Option<&'a std::collections::BTreeMap<String, LockedModel>>,
    ) -> LockPolicy<'a> {
        LockPolicy {
            locked: self.locked,
            lock_only: self.lock_only,
            saved,
        }
    }
}

/// Where `plan -o` sends the saved plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanOutput {
    /// `-o -`: the plan's JSON on stdout.
    Stdout,
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct PlanSettings {
    pub detailed_exitcode: bool,
    pub out: Option<PlanOutput>,
    /// `--force`: `-o` may replace a file that is not a saved plan.
    pub force: bool,
    pub adopt: bool,
    pub remote: RemoteSettings,
    /// `--workflow`: a ComfyUI workflow to check the environment against.
    pub workflow: Option<PathBuf>,
    /// `--check-mirrors`: ask the mirrors which has each download.
    pub check_mirrors: bool,
}

impl PlanSettings {
    fn resolve(args: PlanArgs) -> PlanSettings {
        PlanSettings {
            detailed_exitcode: args.detailed_exitcode,
            // A file named `-` is `-o ./-`.
            out: args
                .out
                .map(|out| match out.as_os_str().as_encoded_bytes() {
                    b"-" => PlanOutput::Stdout,
                    _ => PlanOutput::File(out),
                }),
            force: args.force,
            adopt: args.adopt.adopt,
            remote: RemoteSettings::resolve(&args.remote),
            workflow: args.workflow,
            check_mirrors: args.check_mirrors,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApplySettings {
    /// A saved plan to apply exactly.
    pub plan: Option<PathBuf>,
    pub auto_approve: bool,
    pub adopt: bool,
    pub lock_timeout: Duration,
    /// `-j`; `None`: chosen by the store's disk.
    pub jobs: Option<usize>,
    pub remote: RemoteSettings,
    /// `--from-bundle`: provision from this offline bundle (always offline).
    pub bundle: Option<PathBuf>,
}

impl ApplySettings {
    fn resolve(args: ApplyArgs) -> ApplySettings {
        ApplySettings {
            plan: args.plan,
            auto_approve: args.auto_approve,
            adopt: args.adopt.adopt,
            lock_timeout: args.lock_timeout,
            jobs: args.jobs.map(usize::from),
            remote: bundled(
                RemoteSettings::resolve(&args.remote),
                args.from_bundle.is_some(),
            ),
            bundle: args.from_bundle,
        }
    }
}

/// An apply from a bundle uses its lock as it is and never touches the network: the bundle
/// brings every byte, so anything else would be a download the site cannot make.
fn bundled(remote: RemoteSettings, from_bundle: bool) -> RemoteSettings {
    RemoteSettings {
        locked: remote.locked || from_bundle,
        offline: remote.offline || from_bundle,
        ..remote
    }
}

#[derive(Debug, Clone)]
pub struct BundleCreateSettings {
    pub out: PathBuf,
    /// Empty: every model of the manifest.
    pub models: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct VerifySettings {
    /// Models to verify (empty: the manifest's).
    pub models: Vec<String>,
    /// Every model in the store.
    pub all: bool,
}

#[derive(Debug, Clone)]
pub struct AddSettings {
    /// `None` with `from_workflow`.
    pub source: Option<String>,
    pub from_workflow: Option<PathBuf>,
    pub name: Option<String>,
    pub model_type: Option<String>,
    pub family: Option<String>,
    pub apps: Vec<String>,
    pub dry_run: bool,
    pub remote: RemoteSettings,
}

#[derive(Debug, Clone)]
pub struct ImportSettings {
    pub paths: Vec<PathBuf>,
    pub move_files: bool,
    pub model_type: Option<String>,
    pub apps: Vec<String>,
    pub dry_run: bool,
}

#[derive(Debug, Clone)]
pub struct InitSettings {
    /// `PRESET:ROOT`, as given.
    pub apps: Vec<String>,
    pub store: PathBuf,
    pub dry_run: bool,
    pub into_store: bool,
}

#[derive(Debug, Clone)]
pub struct ForgetSettings {
    /// A name, a manifest path or a key.
    pub env: String,
    pub keep_links: bool,
    pub force: bool,
    pub approval: ApprovalSettings,
}

/// Whether a command that removes things only shows them, asks, or goes ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalSettings {
    DryRun,
    Ask,
    Approved,
}

impl ApprovalSettings {
    fn resolve(args: &Approval) -> ApprovalSettings {
        if args.dry_run {
            ApprovalSettings::DryRun
        } else if args.auto_approve {
            ApprovalSettings::Approved
        } else {
            ApprovalSettings::Ask
        }
    }
}

#[derive(Debug, Clone)]
pub struct RmSettings {
    pub models: Vec<String>,
    pub force: bool,
    pub keep_file: bool,
    pub approval: ApprovalSettings,
}

#[derive(Debug, Clone)]
pub struct GcSettings {
    pub min_age: Duration,
    pub include_foreign: bool,
    pub approval: ApprovalSettings,
}

#[derive(Debug, Clone)]
pub struct UpdateSettings {
    /// Models to update (empty: every remote model).
    pub models: Vec<String>,
    pub remote: RemoteSettings,
}

#[derive(Debug, Clone)]
pub struct RelocateSettings {
    /// Where things were; absolute (it need not exist).
    pub from: PathBuf,
    /// Where they are now; absolute.
    pub to: PathBuf,
    pub dry_run: bool,
    pub auto_approve: bool,
    pub lock_timeout: Duration,
}

impl RelocateSettings {
    fn resolve(args: RelocateArgs) -> RelocateSettings {
        // Relative to the current folder, as a user typing `--to ../new` means.
        let absolute = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
        RelocateSettings {
            from: absolute(args.from),
            to: absolute(args.to),
            dry_run: args.dry_run,
            auto_approve: args.auto_approve,
            lock_timeout: args.lock_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settings(args: &[&str], vars: &[(&str, &str)]) -> Settings {
        let cli = Cli::try_parse_from(std::iter::once("mlib").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let env = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        Settings::resolve(cli, &env)
    }

    #[test]
    fn traces_are_off_unless_asked_for_and_rust_log_overrides() {
        let trace = |args: &[&str], vars: &[(&str, &str)]| settings(args, vars).global.output.trace;
        assert_eq!(trace(&["status"], &[]), None);
        assert_eq!(trace(&["status", "-v"], &[]), None);
        assert_eq!(
            trace(&["status", "-vv"], &[]).as_deref(),
            Some("mlib=debug")
        );
        assert_eq!(
            trace(&["status", "-vvvv"], &[]).as_deref(),
            Some("mlib=trace")
        );
        let rust_log = [("RUST_LOG", "mlib_fetch=trace")];
        assert_eq!(
            trace(&["status"], &rust_log).as_deref(),
            Some("mlib_fetch=trace")
        );
        assert_eq!(
            trace(&["status", "-vv"], &rust_log).as_deref(),
            Some("mlib_fetch=trace")
        );
        assert_eq!(trace(&["status"], &[("RUST_LOG", " ")]), None);
    }

    #[test]
    fn progress_bars_give_way_to_json_quiet_and_traces() {
        let bars = |args: &[&str]| settings(args, &[]).global.output.progress_bars;
        assert!(bars(&["apply"]));
        assert!(!bars(&["apply", "--json"]));
        assert!(!bars(&["apply", "-q"]));
        assert!(!bars(&["apply", "--no-progress"]));
        assert!(!bars(&["apply", "-vv"]));
        assert!(bars(&["apply", "-v"]));
    }

    #[test]
    fn no_color_turns_auto_off_but_not_always() {
        let color = |args: &[&str], vars: &[(&str, &str)]| settings(args, vars).global.output.color;
        assert_eq!(color(&["status"], &[]), ColorChoice::Auto);
        assert_eq!(color(&["status"], &[("NO_COLOR", "1")]), ColorChoice::Never);
        assert_eq!(color(&["status"], &[("NO_COLOR", "")]), ColorChoice::Auto);
        assert_eq!(
            color(&["status", "--color", "always"], &[("NO_COLOR", "1")]),
            ColorChoice::Always
        );
    }

    #[test]
    fn empty_names_and_folders_are_none() {
        // (An empty variable never gets here, `cli::parse` drops it; clap refuses an empty
        // `--state-dir` itself.)
        let s = settings(&["status", "--env", ""], &[]);
        assert_eq!(s.global.env_name, None);
        assert_eq!(s.global.state_dir, None);
        let s = settings(&["status", "--env", "ann", "--state-dir", "st"], &[]);
        assert_eq!(s.global.env_name.as_deref(), Some("ann"));
        let state = s.global.state_dir.unwrap();
        assert!(state.is_absolute() && state.ends_with("st"), "{state:?}");
    }

    #[test]
    fn plan_output_and_apply_settings() {
        let CommandSettings::Plan(plan) = settings(&["plan", "-o", "-"], &[]).command else {
            panic!()
        };
        assert_eq!(plan.out, Some(PlanOutput::Stdout));
        let CommandSettings::Plan(plan) = settings(&["plan", "-o", "./-"], &[]).command else {
            panic!()
        };
        assert_eq!(plan.out, Some(PlanOutput::File("./-".into())));
        let CommandSettings::Apply(apply) = settings(
            &[
                "apply",
                "-j",
                "8",
                "--lock-timeout",
                "1m",
                "--locked",
                "--adopt",
            ],
            &[],
        )
        .command
        else {
            panic!()
        };
        assert_eq!(apply.jobs, Some(8));
        assert_eq!(apply.lock_timeout, Duration::from_secs(60));
        assert!(apply.adopt && apply.remote.locked && !apply.remote.lock_only);
        let policy = apply.remote.lock_policy(None);
        assert!(policy.locked && !policy.lock_only && policy.saved.is_none());
    }

    #[test]
    fn an_apply_from_a_bundle_is_locked_and_offline() {
        let apply = |args: &[&str]| match settings(args, &[]).command {
            CommandSettings::Apply(apply) => apply,
            _ => panic!(),
        };
        let plain = apply(&["apply"]);
        assert!(plain.bundle.is_none() && !plain.remote.offline && !plain.remote.locked);
        let bundled = apply(&["apply", "--from-bundle", "site.tar"]);
        assert_eq!(bundled.bundle.as_deref(), Some(Path::new("site.tar")));
        assert!(bundled.remote.offline && bundled.remote.locked);
    }

    #[test]
    fn status_and_scan_resolve_from_the_lock_alone() {
        let remote = RemoteSettings::lock_only();
        assert!(remote.offline && remote.lock_only && !remote.locked);
    }
}
