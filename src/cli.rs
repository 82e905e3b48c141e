//! Command-line interface: every flag also reads an `MLIB_*` environment variable, so a
//! `startup.sh` or CI job can set behaviour without editing its command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "mlib",
    version,
    about = "Declarative model files for ComfyUI, Forge, A1111, Fooocus, SD.Next and SwarmUI",
    long_about = "mlib reads a models.yaml that declares the models an environment needs and how \
                  they map into each app's folders. `mlib plan` shows what would change, \
                  `mlib apply` stores each file once in a shared store and links it into every \
                  app, recording each link in a registry so it can be checked and undone safely.",
    after_help = "Start with `mlib validate`, then `mlib plan`, then `mlib apply`.\n\
                  Human output goes to stderr, data (plans, JSON events) to stdout."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The manifest to use.
    #[arg(
        short = 'f',
        long = "file",
        global = true,
        env = "MLIB_FILE",
        default_value = "models.yaml",
        value_name = "FILE"
    )]
    pub file: PathBuf,

    /// Print newline-delimited JSON events on stdout instead of human output.
    #[arg(long, global = true, env = "MLIB_JSON")]
    pub json: bool,

    /// Print only errors.
    #[arg(
        short,
        long,
        global = true,
        env = "MLIB_QUIET",
        conflicts_with = "verbose"
    )]
    pub quiet: bool,

    /// Print more detail (repeat for even more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// When to use colours (NO_COLOR is honoured by `auto`).
    #[arg(long, global = true, env = "MLIB_COLOR", value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Never draw progress bars; print plain progress lines instead.
    #[arg(long, global = true, env = "MLIB_NO_PROGRESS")]
    pub no_progress: bool,

    /// The environment to plan or apply: overrides the manifest's `environment:`. Links
    /// belong to an environment; applying one never touches another's [default: the
    /// manifest's path plus the values of the variables in its `store:` and apps' `root:`].
    #[arg(long = "env", global = true, env = "MLIB_ENV", value_name = "NAME")]
    pub env: Option<String>,

    /// Where mlib keeps the store's state (link registry, apply lock); overrides the
    /// manifest's `state:` [default: {store}/.mlib, or a per-user folder when the store is
    /// read-only].
    #[arg(long, global = true, env = "MLIB_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a manifest: syntax, types, hashes, names and paths, app folders.
    ///
    /// Needs no network and changes nothing. Exits 1 on any error, listing every error with
    /// its file:line:column.
    Validate,

    /// Show what `apply` would change, without changing anything.
    ///
    /// Drift (what changed on disk since the last apply) is shown first, then one line per
    /// action: `+` add to the store or link, `~` relink, `-` unlink, `!` conflict (refused).
    Plan(PlanArgs),

    /// Make the store and the apps match the manifest.
    ///
    /// Asks for confirmation on a terminal; without one it needs --auto-approve or a saved
    /// plan file (the file is the approval). Running it again changes nothing.
    Apply(ApplyArgs),

    /// Show, per app, what is linked, missing or drifted.
    Status,

    /// Hash the store's files again and compare them with their metadata.json.
    ///
    /// Without MODEL, every model of the manifest; with --all, every model in the store.
    /// Exits 1 when a file is missing or its bytes changed (run `mlib apply` to move it to
    /// quarantine and restore the model). Files found intact are recorded as verified, so
    /// plans trust them without hashing.
    Verify(VerifyArgs),

    /// The environments that own links in the store's registry.
    #[command(subcommand)]
    Env(EnvCommand),

    /// Rebuild the registry's file index from the store's metadata.json files.
    ///
    /// The index is a cache: deleting it loses nothing. Scan also records links that are
    /// already in place and point at the right store entry.
    Scan,

    /// Resolve every remote model and write the lock file, NAME.lock next to NAME.yaml.
    ///
    /// Commit the lock file next to the manifest. Entries that still match the manifest are
    /// kept as they are; new or changed models are resolved with HEAD/API requests (no model
    /// bytes are downloaded).
    Lock(LockArgs),

    /// Re-resolve branches and tags to their newest commit and show what changed.
    ///
    /// Without MODEL every remote model is re-resolved. The new pins are written to
    /// the lock file; `mlib apply` then fetches the new files.
    Update(UpdateArgs),

    /// Release the apply lock of the manifest's store, held by a process that is gone.
    ///
    /// Refused while the holder is still running on this machine (same pid and start time),
    /// unless --force. A holder on another machine cannot be checked: its lock is released.
    ForceUnlock {
        /// The lock id printed by the waiting apply (`mlib apply` shows it).
        id: String,
        /// Release the lock even though its holder is still running (it hangs): two applies
        /// may then run at once.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Models to verify (default: every model of the manifest).
    #[arg(value_name = "MODEL", conflicts_with = "all")]
    pub models: Vec<String>,

    /// Verify every model in the store, not only the manifest's.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// List the environments of the manifest's store: name or manifest, app roots, last
    /// apply, links.
    List,
}

/// How remote sources are resolved (HuggingFace, Civitai, URLs).
#[derive(Debug, Args, Default, Clone)]
pub struct RemoteArgs {
    /// Fail if the lock file does not cover every remote model of the manifest.
    #[arg(long, env = "MLIB_LOCKED")]
    pub locked: bool,

    /// Never touch the network: work from the store, the HuggingFace cache and the lock
    /// (also set by HF_HUB_OFFLINE=1).
    #[arg(long, env = "MLIB_OFFLINE")]
    pub offline: bool,

    /// Allow https:// sources without a sha256 pin in the manifest.
    #[arg(long, env = "MLIB_ALLOW_UNPINNED")]
    pub allow_unpinned: bool,

    /// Allow plain http:// to hosts other than loopback.
    #[arg(long, env = "MLIB_ALLOW_HTTP")]
    pub allow_http: bool,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Models to update (default: every remote model).
    #[arg(value_name = "MODEL")]
    pub models: Vec<String>,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Exit 0 when there are no changes, 2 when there are changes, 1 on error.
    #[arg(long, env = "MLIB_DETAILED_EXITCODE")]
    pub detailed_exitcode: bool,

    /// Save the plan to FILE (`-`: print it on stdout); `mlib apply FILE` applies exactly it,
    /// or refuses if anything changed.
    ///
    /// FILE is written atomically, as a new regular file. It may replace a plan saved before,
    /// but never the manifest, its lock file, a symlink, a directory or any other file that is
    /// not a regular file; another existing file that is not empty only with --force. `-o -` prints the plan's
    /// JSON on stdout (the human plan stays on stderr), so it cannot go with --json; a file
    /// named `-` is `-o ./-`.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Let -o replace an existing file that is not a saved plan (still never the manifest,
    /// its lock file, a symlink or a non-regular file).
    // No MLIB_FORCE: like -o (and force-unlock's --force) it is about one run's target, and
    // an environment variable set once would silently apply to every later -o.
    #[arg(long, requires = "out")]
    pub force: bool,

    #[command(flatten)]
    pub adopt: AdoptArg,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Args)]
pub struct AdoptArg {
    /// Replace a file that is in a link's way by the link when its sha256 equals the model's
    /// (the file moves into the store if the store has no copy yet).
    #[arg(long, env = "MLIB_ADOPT")]
    pub adopt: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved by `mlib plan -o FILE`: apply exactly it (it is the approval).
    #[arg(value_name = "PLAN")]
    pub plan: Option<PathBuf>,

    /// Do not ask for confirmation.
    #[arg(long, env = "MLIB_AUTO_APPROVE")]
    pub auto_approve: bool,

    #[command(flatten)]
    pub adopt: AdoptArg,

    /// How long to wait for another apply on the same store to finish.
    #[arg(long, env = "MLIB_LOCK_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub lock_timeout: Duration,

    /// How many files to copy or download at once [default: 4, or 2 when the store is on a
    /// rotational disk].
    #[arg(short, long, env = "MLIB_JOBS")]
    pub jobs: Option<usize>,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Parses `300`, `300s`, `5m`, `1h` or `250ms`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (try 30s, 5m or 1h)"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{text}` (use ms, s, m or h)"
            ));
        }
    };
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
