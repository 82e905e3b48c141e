//! Command-line interface: every flag also reads an `MLIB_*` environment variable, so a
//! `startup.sh` or CI job can set behaviour without editing its command line, except `-v`
//! (counted: `RUST_LOG` is its variable for tracing), and `-o`, `--force`, `verify --all` and
//! `relocate --from` / `--to`, which name or widen one run's target (a variable set once would
//! silently apply to every later run).
//!
//! Only parsing is here: what the flags mean together with the environment is decided once,
//! in `settings.rs`, and commands see only its settings.
//!
//! Variables: an empty one is the same as an unset one ([`parse`]); a boolean one accepts
//! `1`/`0`, `true`/`false`, `yes`/`no`, `on`/`off` ([`EnvBool`]). No argument makes mlib panic:
//! numbers and durations have bounds, checked here with a message saying them.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{BoolishValueParser, TypedValueParser};
use clap::error::ErrorKind;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

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
    #[arg(long, global = true, env = "MLIB_JSON", value_parser = EnvBool)]
    pub json: bool,

    /// Print only errors (not with -v; MLIB_QUIET yields to -v).
    #[arg(
        short,
        long,
        global = true,
        env = "MLIB_QUIET",
        value_parser = EnvBool
    )]
    pub quiet: bool,

    /// Print more: -v details (each change, each file checked), -vv also debug traces of
    /// mlib's decisions on stderr (manifest reader, lock, retries, recovery), -vvv every trace.
    ///
    /// RUST_LOG, when set, chooses the traces instead (`RUST_LOG=mlib_fetch=debug`). Traces go
    /// to stderr, never into --json's stdout, and never show a token.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// When to use colours (NO_COLOR is honoured by `auto`).
    #[arg(long, global = true, env = "MLIB_COLOR", value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Never draw progress bars; print plain progress lines instead.
    #[arg(long, global = true, env = "MLIB_NO_PROGRESS", value_parser = EnvBool)]
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
    /// its file:line:column. Warns (exit 0) when a local model's header, or Civitai's base
    /// model in the lock, says another family than `family:`, and when an app gets a LoRA of
    /// a family none of its checkpoints has.
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
    #[command(after_help = concat!(
        "Examples:\n",
        "  mlib apply\n",
        "  mlib apply --auto-approve --locked -f /workspace/models.yaml   # a pod's startup\n",
        "  mlib plan -o plan.json && mlib apply plan.json\n",
        "  mlib apply --from-bundle site.tar --auto-approve                # offline, from `mlib bundle create`",
    ))]
    Apply(ApplyArgs),

    /// Show per app what is linked, missing, broken, drifted or in conflict; and the store
    ///
    /// The store: models not stored yet or no longer used, the quarantine, leftovers of killed
    /// runs, environments whose manifest is gone.
    /// Exits 0 when nothing needs attention, 1 otherwise: `mlib plan` shows what apply would
    /// change, `mlib doctor` explains the rest.
    #[command(
        after_help = "Examples:\n  mlib status\n  mlib -v status        # also every link that is fine\n  mlib status --json | jq -c 'select(.type == \"app_status\")'"
    )]
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

    /// Offline bundles: the manifest, its lock and the models' bytes in one tar file
    ///
    /// For a machine without network access (an air-gapped site): `mlib bundle create` on a
    /// machine whose store has the models, carry the tar over, then `mlib apply --from-bundle
    /// FILE.tar` there.
    #[command(subcommand)]
    Bundle(BundleCommand),

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

    /// Remove models from the store, with every registered link to them
    ///
    /// The links of every environment of the store are removed.
    /// MODEL is a model's name (or `type/family/name` when two stored models share a name).
    /// Refused while a manifest (this one or another environment's) still declares the model,
    /// unless --force; links a person changed are left in place and forgotten. Shows what it
    /// will do and asks on a terminal (--auto-approve to skip, --dry-run to only show).
    #[command(
        after_help = "Examples:\n  mlib rm old-lora --dry-run\n  mlib rm old-lora sd15-base --auto-approve\n  mlib rm old-lora --keep-file   # unlink everywhere, keep the bytes"
    )]
    Rm(RmArgs),

    /// Delete stored models that no environment needs, and print the bytes freed.
    ///
    /// A model is needed while a registered link points at it, or while the manifest of an
    /// environment (one that still exists) declared it at its last apply. Files a person put
    /// into the store by hand (no metadata.json of mlib) are listed, and deleted only with
    /// --include-foreign. An environment whose manifest is gone keeps its models until
    /// `mlib env forget` drops it.
    #[command(after_help = "Examples:\n  mlib gc --dry-run\n  mlib gc --min-age 7d --auto-approve")]
    Gc(GcArgs),

    /// Per stored model: its size, who uses it, when it was added and last applied
    ///
    /// Largest first (--sort name or added to change). Users are the environments and their
    /// apps that link the model, or the manifests that declare it.
    #[command(
        after_help = "Examples:\n  mlib du\n  mlib du --sort added\n  mlib du --json | jq -s 'map(select(.type == \"model\")) | .[0]'"
    )]
    Du(DuArgs),

    /// Find what is wrong with the store, the registry and the links, and say what to do.
    ///
    /// Finds broken links, registered links whose file is gone or changed, links into the
    /// store that no environment registered, store files missing or changed (stat, then
    /// hash), metadata.json missing or invalid, leftovers of killed downloads and applies,
    /// and environments whose manifest no longer exists. Exits 1 when it finds anything.
    /// --fix repairs what is safe (never a file a person changed) and lists what it left.
    #[command(after_help = "Examples:\n  mlib doctor\n  mlib doctor --fix")]
    Doctor(DoctorArgs),

    /// Add a model to the manifest, from a file or an address copied from a model page
    ///
    /// SOURCE: a local file or folder, an address copied from the browser (a HuggingFace or
    /// Civitai page), `hf://`, `civitai:` or any https URL.
    ///
    /// The entry goes at the end of `models:`; the rest of the file (comments, order, layout)
    /// is left as it is, and the change is shown as a diff before it is written. A local
    /// file is hashed (its sha256 is pinned) and its type and family are read from its header
    /// when not given; a remote model is resolved and pinned in the lock file (network). The
    /// manifest is written only if it stays valid and, for a remote model, resolving worked.
    #[command(
        after_help = "Examples:\n  mlib add ./downloads/detail-tweaker.safetensors --app comfyui\n  mlib add https://huggingface.co/stabilityai/sdxl-vae/blob/main/sdxl_vae.safetensors --type vae\n  mlib add 'https://civitai.com/models/122359?modelVersionId=135867' --type loras --dry-run\n  mlib add --from-workflow flux-dev.json --app comfyui"
    )]
    Add(AddArgs),

    /// Copy (or move) model files and folders into the store and add them to the manifest
    ///
    /// Each PATH is a model file, a model folder (a diffusers or transformers folder: it has a
    /// `model_index.json` or `config.json`), or a folder of model files (each imported). Type
    /// and family come from the file's header unless --type says; each file is hashed while it
    /// is copied (one read), and its sha256 is pinned in the manifest entry. With --move the
    /// original is removed once the store holds a verified copy. Names that Windows cannot
    /// hold get a `file:` that it can.
    #[command(
        after_help = "Examples:\n  mlib import ~/Downloads/detail-tweaker-xl.safetensors --app comfyui\n  mlib import ~/Downloads/loras --type loras --move\n  mlib import ./flux-pipeline --type diffusers --dry-run"
    )]
    Import(ImportArgs),

    /// Ask Civitai which models local files are, and make their entries re-downloadable
    ///
    /// For each model with a local source and a sha256 (all, or the MODELs named), Civitai is
    /// asked by that hash; a model it knows gets `source: civitai:MODEL@VERSION` (its file name
    /// kept with `file:`) and, when the entry has none, its family. The change is shown as a
    /// diff; the lock pins the new sources before the manifest is written. Network.
    #[command(after_help = "Examples:\n  mlib enrich --dry-run\n  mlib enrich detail-tweaker")]
    Enrich(EnrichArgs),

    /// Write a models.yaml describing the model folders of apps you already have.
    ///
    /// Every model file (or model folder, such as a diffusers repo) in each app's preset
    /// folders becomes an entry with its type, family (from its header), size and sha256; the
    /// same file in two apps is one model linked twice; a file in a subfolder keeps its
    /// subfolder; symlinks are followed. Nothing is moved: the manifest describes the files in
    /// place, and `mlib apply --adopt` then moves each into the store and leaves a link where it
    /// was, so every app lists the same names as before. Refuses to overwrite a manifest.
    #[command(
        after_help = "Examples:\n  mlib init --app comfyui:~/ComfyUI --dry-run\n  mlib init --app comfyui:~/ComfyUI --app forge:~/forge --store ~/models\n  mlib apply --adopt"
    )]
    Init(InitArgs),

    /// Tell what model files are, from their headers alone (never the weights).
    ///
    /// Reads `.safetensors` and `.gguf` headers: kind (checkpoint, diffusion model, LoRA,
    /// LyCORIS, VAE, text encoder, ControlNet, upscaler, language model), family (sd15, sd2,
    /// sdxl, sd3, flux-dev, flux-schnell; a LoRA's base; a GGUF model's architecture), dtype,
    /// parameters, size and the embedded metadata. A web page or JSON error saved under a
    /// model's name is named as such. Needs no manifest. Exits 1 if a file cannot be read.
    #[command(
        after_help = "Examples:\n  mlib inspect ComfyUI/models/loras/*.safetensors\n  mlib inspect model.gguf --json"
    )]
    Inspect(InspectArgs),
    /// Point links and the registry at a store or app folder that moved.
    ///
    /// For a store whose drive got a new mount point, or an app folder (ComfyUI...) moved
    /// elsewhere: every absolute symlink mlib made that pointed under OLD is replaced
    /// (atomically) by one pointing under NEW, and every path the registry holds under OLD
    /// moves to NEW in one transaction. Relative symlinks, hard links and copies need no
    /// rewrite (only their records move), nor do links for an app in a container
    /// (`container.store`: they name the store as the container mounts it; move the mount).
    /// OLD need not exist any more; NEW must. A link a user
    /// replaced or re-pointed is left alone and reported. Running it again changes nothing.
    ///
    /// The registry is found through the manifest: update `store:` (or the app's `root:`) in
    /// models.yaml to the new place first; a `store:` still under OLD is read as if it were
    /// under NEW. Asks for confirmation on a terminal; without one it needs --auto-approve.
    #[command(after_help = concat!(
        "Example: the store's drive is now mounted at /media/models instead of /mnt/models,\n",
        "and models.yaml says `store: /media/models/store`:\n\n",
        "  mlib relocate --from /mnt/models --to /media/models --dry-run\n",
        "  mlib relocate --from /mnt/models --to /media/models\n",
        "  mlib plan --detailed-exitcode    # exits 0: nothing left to change",
    ))]
    Relocate(RelocateArgs),

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

    /// Share the store's models through a team mirror (S3 or HTTPS), and see what it holds.
    ///
    /// A mirror holds model files named by their sha256 (`sha256/HASH`) and a small index per
    /// model (`models/ID.json`), so one bucket serves every manifest of a team. `plan` and
    /// `apply` try the manifest's `mirrors:` (or --mirrors / MLIB_MIRRORS) in order before
    /// each model's origin, and verify what they get by hash.
    #[command(subcommand)]
    Mirror(MirrorCommand),

    /// Print a shell completion script for mlib.
    ///
    /// Load it in your shell's startup file, e.g. for bash:
    /// `mlib completions bash > ~/.local/share/bash-completion/completions/mlib`.
    #[command(after_help = concat!(
        "Examples:\n",
        "  mlib completions bash > ~/.local/share/bash-completion/completions/mlib\n",
        "  mlib completions zsh > ~/.zfunc/_mlib\n",
        "  mlib completions fish > ~/.config/fish/completions/mlib.fish",
    ))]
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },

    /// Print mlib's man page (roff), generated from the same definitions as `--help`.
    ///
    /// `mlib man > ~/.local/share/man/man1/mlib.1 && man mlib`
    Man,
}

#[derive(Debug, Subcommand)]
pub enum MirrorCommand {
    /// Upload the store's copies of the manifest's remote models to a mirror.
    ///
    /// Every file goes to `sha256/HASH` under the mirror's prefix, in parts of 32 MiB when it
    /// is large; a file the mirror already has (same hash and size) is skipped, so pushing
    /// again uploads only what is new. Each file is hashed while it is sent, and a store file
    /// that no longer matches its metadata.json is not uploaded. Each model's index
    /// (`models/ID.json`, from the lock) lets other machines find files the lock has no hash
    /// for. Only `s3://` mirrors can be written; credentials, region and endpoint come from
    /// the AWS_* variables or an AWS profile.
    #[command(after_help = concat!(
        "Examples:\n",
        "  mlib mirror push                                  # every stored remote model, to the first s3:// mirror\n",
        "  mlib mirror push --to s3://team-models/mlib sdxl-base flux-vae\n",
        "  AWS_ENDPOINT_URL=http://minio:9000 AWS_PROFILE=team mlib mirror push --json",
    ))]
    Push(MirrorPushArgs),

    /// Show what a mirror holds and which of the manifest's models it covers.
    ///
    /// For each mirror (the manifest's `mirrors:`, --mirrors / MLIB_MIRRORS, or --from): the
    /// objects and bytes it holds (S3 only: a plain HTTP server cannot list), then each
    /// remote model of the manifest as `covered` (every file there), `partial`, `missing` or
    /// `unlocked` (not in the lock yet, so its files are not known). Changes nothing.
    #[command(after_help = concat!(
        "Examples:\n",
        "  mlib mirror ls\n",
        "  mlib mirror ls --from https://models.example.com/mlib\n",
        "  mlib mirror ls --json | jq -c 'select(.type == \"mirror_model\" and .state != \"covered\")'",
    ))]
    Ls(MirrorLsArgs),
}

#[derive(Debug, Args)]
pub struct MirrorPushArgs {
    /// Models to push (default: every remote model of the manifest that is in the store).
    #[arg(value_name = "MODEL")]
    pub models: Vec<String>,

    /// The mirror to upload to [default: the first s3:// mirror of --mirrors / MLIB_MIRRORS,
    /// else of the manifest's `mirrors:`].
    #[arg(long, value_name = "URL", value_parser = parse_mirror)]
    pub to: Option<mlib_manifest::MirrorUrl>,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Args)]
pub struct MirrorLsArgs {
    /// The mirror to list [default: every mirror of --mirrors / MLIB_MIRRORS, else of the
    /// manifest's `mirrors:`].
    #[arg(long, value_name = "URL", value_parser = parse_mirror)]
    pub from: Option<mlib_manifest::MirrorUrl>,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

fn parse_mirror(text: &str) -> Result<mlib_manifest::MirrorUrl, String> {
    mlib_manifest::MirrorUrl::parse(text)
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

    /// Drop an environment from the store's registry: remove its links (those nobody changed)
    /// and its records, so `mlib gc` may free the models only it used.
    ///
    /// ENV is a name (`--env NAME` / `environment:`), a manifest path, or a key from
    /// `mlib env list --json`. Meant for environments whose manifest is gone; one whose
    /// manifest still exists needs --force.
    #[command(
        after_help = "Examples:\n  mlib env forget alice\n  mlib env forget /srv/old/models.yaml --keep-links"
    )]
    Forget(ForgetArgs),
}

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Write the manifest, its lock and the stored models' bytes into one tar file
    ///
    /// Each model is read from the store straight into the tar (no second copy on disk) and
    /// hashed on the way: a store file whose bytes are not what its metadata.json says is
    /// never bundled. Every model must be in the store as the manifest and lock pin it (run
    /// `mlib apply` first). Folder models (diffusers, sets with their companion files) are
    /// bundled file by file. The file is written under a temporary name and renamed once
    /// complete; an existing file is never replaced.
    #[command(after_help = concat!(
        "Examples:
",
        "  mlib bundle create -o site.tar                       # every model of models.yaml
",
        "  mlib bundle create -o loras.tar --models add-detail  # an update for a site that has the rest
",
        "  mlib bundle ls site.tar

",
        "On the offline machine, in an empty folder (models.yaml and models.lock are written there):
",
        "  mlib apply --from-bundle site.tar --auto-approve",
    ))]
    Create(BundleCreateArgs),

    /// List what a bundle holds: its manifest, and each model with its size and source.
    #[command(
        alias = "show",
        after_help = "Examples:
  mlib bundle ls site.tar
  mlib bundle ls site.tar --json"
    )]
    Ls {
        /// The bundle.
        #[arg(value_name = "FILE.tar")]
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct BundleCreateArgs {
    /// The tar file to write (it must not exist).
    // No MLIB_ variable: like plan's -o, it names one run's target.
    #[arg(short = 'o', long = "out", value_name = "FILE.tar")]
    pub out: PathBuf,

    /// Bundle only these models (default: every model of the manifest). The manifest and its
    /// lock are always whole: the other machine must have the rest in its store already.
    #[arg(long, value_name = "NAME", num_args = 1..)]
    pub models: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// The environment: its name, its manifest's path, or its key.
    // Not `env`: that is the id of the global --env.
    #[arg(value_name = "ENV")]
    pub which: String,

    /// Forget the records but leave the links in the app folders.
    #[arg(long)]
    pub keep_links: bool,

    /// Forget it even though its manifest still exists (its next apply records it again).
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub approval: Approval,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Models to remove: names, or `type/family/name`.
    #[arg(value_name = "MODEL", required = true)]
    pub models: Vec<String>,

    /// Remove even though a manifest still declares the model (its next apply fetches it
    /// again).
    #[arg(long)]
    pub force: bool,

    /// Only unlink: keep the model's files in the store.
    #[arg(long)]
    pub keep_file: bool,

    #[command(flatten)]
    pub approval: Approval,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Keep models whose metadata changed less than this long ago: 7d, 12h, 30m (a bare
    /// number is seconds).
    #[arg(long, env = "MLIB_GC_MIN_AGE", default_value = "0s", value_parser = parse_age)]
    pub min_age: Duration,

    /// Also delete files in the store that mlib did not put there (no metadata.json).
    #[arg(long)]
    pub include_foreign: bool,

    #[command(flatten)]
    pub approval: Approval,
}

/// Asking before removing.
#[derive(Debug, Args)]
pub struct Approval {
    /// Only show what would be removed.
    #[arg(long, env = "MLIB_DRY_RUN", value_parser = EnvBool)]
    pub dry_run: bool,

    /// Do not ask for confirmation.
    #[arg(long, env = "MLIB_AUTO_APPROVE", value_parser = EnvBool)]
    pub auto_approve: bool,
}

#[derive(Debug, Args)]
pub struct DuArgs {
    /// Order of the list.
    #[arg(long, env = "MLIB_DU_SORT", value_enum, default_value = "size")]
    pub sort: DuSort,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DuSort {
    /// Largest first.
    Size,
    /// By model id (`type/family/name`).
    Name,
    /// Oldest first.
    Added,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// A local path, a page address, `hf://...`, `civitai:MODEL@VERSION` or an https URL.
    #[arg(value_name = "SOURCE", required_unless_present = "from_workflow")]
    pub source: Option<String>,

    /// Add every model a ComfyUI workflow (UI or API format) needs that no ComfyUI app gets,
    /// from the addresses (and hashes) the workflow embeds; lists what it cannot add.
    #[arg(long, value_name = "FILE.json", conflicts_with_all = ["source", "name", "model_type", "family"])]
    pub from_workflow: Option<PathBuf>,

    /// The model's name (default: from the file name).
    #[arg(long)]
    pub name: Option<String>,

    /// The model type, i.e. which app folder it goes to (default: from a local file's header).
    #[arg(long = "type", value_name = "TYPE")]
    pub model_type: Option<String>,

    /// The model family (default: from a local file's header).
    #[arg(long)]
    pub family: Option<String>,

    /// Give the model to an app (repeatable): it is tagged with the app's name (how `mlib
    /// init` writes apps' selections), and added to the app's `models:` list if that does not
    /// select it already.
    #[arg(long = "app", value_name = "APP")]
    pub apps: Vec<String>,

    /// Show the change as a diff, write nothing.
    #[arg(long, env = "MLIB_DRY_RUN", value_parser = EnvBool)]
    pub dry_run: bool,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Files and folders to import.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,

    /// Remove each original once the store holds a verified copy.
    #[arg(long = "move")]
    pub move_files: bool,

    /// The model type, for every PATH (default: from each file's header).
    #[arg(long = "type", value_name = "TYPE")]
    pub model_type: Option<String>,

    /// Tag the models with an app's name (repeatable), as `add --app` does.
    #[arg(long = "app", value_name = "APP")]
    pub apps: Vec<String>,

    /// Show the manifest change, copy nothing, write nothing.
    #[arg(long, env = "MLIB_DRY_RUN", value_parser = EnvBool)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct EnrichArgs {
    /// Models to look up (default: every model with a local source and a sha256).
    #[arg(value_name = "MODEL")]
    pub models: Vec<String>,

    /// Show the change, write nothing.
    #[arg(long, env = "MLIB_DRY_RUN", value_parser = EnvBool)]
    pub dry_run: bool,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// An app to describe: PRESET:ROOT (comfyui, a1111, forge, sdnext, fooocus, swarmui).
    #[arg(long = "app", value_name = "PRESET:ROOT", required = true)]
    pub apps: Vec<String>,

    /// The store the manifest names (created by the first apply).
    #[arg(
        long,
        env = "MLIB_INIT_STORE",
        default_value = "./mlib-store",
        value_name = "DIR"
    )]
    pub store: PathBuf,

    /// Print the manifest on stdout instead of writing it.
    #[arg(long, env = "MLIB_DRY_RUN", value_parser = EnvBool)]
    pub dry_run: bool,

    /// Also put every model into the store now: a file on the store's filesystem by a hard
    /// link (instant, no byte copied; the file, or the file a link in the app points at,
    /// becomes the store's and read-only), anything else by a copy hashed as it is read.
    /// `mlib apply --adopt` then only swaps in the links.
    #[arg(long)]
    pub into_store: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Model files to inspect.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Repair what is safe to repair, and list what is left for you.
    #[arg(long)]
    pub fix: bool,
}

/// How remote sources are resolved (HuggingFace, Civitai, URLs).
#[derive(Debug, Args, Default, Clone)]
pub struct RemoteArgs {
    /// Fail if the lock file does not cover every remote model of the manifest.
    #[arg(long, env = "MLIB_LOCKED", value_parser = EnvBool)]
    pub locked: bool,

    /// Never touch the network: work from the store, the HuggingFace cache and the lock
    /// (also set by HF_HUB_OFFLINE=1).
    #[arg(long, env = "MLIB_OFFLINE", value_parser = EnvBool)]
    pub offline: bool,

    /// Allow https:// sources without a sha256 pin in the manifest.
    #[arg(long, env = "MLIB_ALLOW_UNPINNED", value_parser = EnvBool)]
    pub allow_unpinned: bool,

    /// Allow plain http:// to hosts other than loopback.
    #[arg(long, env = "MLIB_ALLOW_HTTP", value_parser = EnvBool)]
    pub allow_http: bool,

    /// Mirrors to try, in order, before each model's origin, instead of the manifest's
    /// `mirrors:`: `s3://BUCKET/PREFIX` or `https://HOST/PREFIX`, separated by commas or
    /// spaces. `none` uses no mirror.
    #[arg(long, env = "MLIB_MIRRORS", value_name = "URLS", value_parser = parse_mirrors)]
    pub mirrors: Option<MirrorList>,
}

/// `--mirrors` / `MLIB_MIRRORS`, parsed: an empty list is `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorList(pub Vec<mlib_manifest::MirrorUrl>);

fn parse_mirrors(text: &str) -> Result<MirrorList, String> {
    if text.trim() == "none" {
        return Ok(MirrorList(Vec::new()));
    }
    mlib_manifest::MirrorUrl::parse_list(text)
        .map(MirrorList)
        .map_err(|why| format!("{why} (--mirrors / MLIB_MIRRORS)"))
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Check, offline, that the lock covers the manifest (every remote model locked, no entry
    /// stale) and write nothing: exit 0 when it does, 1 naming what is missing (for CI).
    #[arg(long)]
    pub check: bool,

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
    #[arg(long, env = "MLIB_DETAILED_EXITCODE", value_parser = EnvBool)]
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

    /// Also check a ComfyUI workflow (UI or API format JSON): whether each model file its
    /// loader nodes need is linked by the manifest (or already in the app's folders); exits 1
    /// when one is missing, naming its node and, if the workflow gives one, its address.
    // No MLIB_WORKFLOW: like -o, it names one run's target.
    #[arg(long, value_name = "FILE.json")]
    pub workflow: Option<PathBuf>,

    /// Ask the mirrors (one HEAD request per file) which one has each download, and say so
    /// on its line: "from mirror s3://team/models". Without it, plan makes no request to a
    /// mirror and says only which one is tried first.
    #[arg(long, env = "MLIB_CHECK_MIRRORS", value_parser = EnvBool)]
    pub check_mirrors: bool,

    #[command(flatten)]
    pub adopt: AdoptArg,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Args)]
pub struct AdoptArg {
    /// Replace a file that is in a link's way by the link when its sha256 equals the model's
    /// (the file moves into the store if the store has no copy yet).
    #[arg(long, env = "MLIB_ADOPT", value_parser = EnvBool)]
    pub adopt: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved by `mlib plan -o FILE`: apply exactly it (it is the approval).
    #[arg(value_name = "PLAN")]
    pub plan: Option<PathBuf>,

    /// Do not ask for confirmation.
    #[arg(long, env = "MLIB_AUTO_APPROVE", value_parser = EnvBool)]
    pub auto_approve: bool,

    #[command(flatten)]
    pub adopt: AdoptArg,

    /// How long to wait for another apply on the same store to finish: 30s, 5m, 1h30m, 250ms
    /// (a bare number is seconds), at most 24h.
    #[arg(long, env = "MLIB_LOCK_TIMEOUT", default_value = "5m", value_parser = parse_lock_timeout)]
    pub lock_timeout: Duration,

    /// How many files to copy or download at once, 1 to 64 [default: 4, or 2 when the store
    /// is on a rotational disk].
    #[arg(short, long, env = "MLIB_JOBS", value_parser = clap::value_parser!(u16).range(1..=MAX_JOBS))]
    pub jobs: Option<u16>,

    /// Provision from an offline bundle (`mlib bundle create`), with no network: its
    /// manifest and lock are written where -f says unless the same files are there (a
    /// different file there is an error, never replaced), every model the store lacks is read
    /// from the tar into the store, verified by its sha256 and blake3, then the apply runs
    /// offline. Running it again skips what is stored.
    // No MLIB_ variable: it names one run's input.
    #[arg(long, value_name = "FILE.tar", conflicts_with = "plan")]
    pub from_bundle: Option<PathBuf>,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Args)]
pub struct RelocateArgs {
    /// The folder the store or app tree was in (it need not exist any more).
    // No MLIB_FROM / MLIB_TO: like -o, they name one run's target, and a variable set once
    // would silently apply to every later run.
    #[arg(long, value_name = "OLD")]
    pub from: PathBuf,

    /// The folder it is in now (must exist).
    #[arg(long, value_name = "NEW")]
    pub to: PathBuf,

    /// Show which links and registry rows would change, and change nothing.
    #[arg(long, env = "MLIB_DRY_RUN", value_parser = EnvBool)]
    pub dry_run: bool,

    /// Do not ask for confirmation.
    #[arg(long, env = "MLIB_AUTO_APPROVE", value_parser = EnvBool)]
    pub auto_approve: bool,

    /// How long to wait for an apply on the same store to finish: 30s, 5m, 1h30m, 250ms (a
    /// bare number is seconds), at most 24h.
    #[arg(long, env = "MLIB_LOCK_TIMEOUT", default_value = "5m", value_parser = parse_lock_timeout)]
    pub lock_timeout: Duration,
}

/// The most files `-j` copies or downloads at once: each is a thread, and more than this
/// only makes a disk seek or a server throttle.
pub const MAX_JOBS: i64 = 64;

/// The longest `--lock-timeout`: a day is longer than any apply should wait for another one.
pub const MAX_LOCK_TIMEOUT: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// Parses a `--lock-timeout`: jiff's friendly format (`30s`, `5m`, `1h30m`, `250ms`,
/// `2 minutes`) or ISO 8601 (`PT5M`); a bare number is seconds. Negative durations and
/// durations over [`MAX_LOCK_TIMEOUT`] are refused.
pub fn parse_lock_timeout(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration > Duration::try_from(MAX_LOCK_TIMEOUT).expect("positive") {
        return Err(format!(
            "{:#} is longer than the maximum, {MAX_LOCK_TIMEOUT:#}",
            jiff::SignedDuration::try_from(duration).map_err(|err| err.to_string())?
        ));
    }
    Ok(duration)
}

/// A duration without days: jiff's friendly format or ISO 8601; a bare number is seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("no duration given (try 30s, 5m or 1h)".into());
    }
    let bare_number = text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let parsed = if bare_number {
        format!("{text}s").parse::<jiff::SignedDuration>()
    } else {
        text.parse::<jiff::SignedDuration>()
    };
    let duration = parsed.map_err(|err| format!("not a duration ({err}): try 30s, 5m or 1h"))?;
    if duration.is_negative() {
        return Err("a duration cannot be negative".into());
    }
    Duration::try_from(duration).map_err(|err| err.to_string())
}

/// Parses `gc --min-age`: as [`parse_lock_timeout`], plus days and weeks (a day is 24 hours
/// here), without an upper bound.
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(duration) = parse_duration(text) {
        return Ok(duration);
    }
    let span: jiff::Span = text
        .parse()
        .map_err(|err| format!("not a duration ({err}): try 7d, 12h or 30m"))?;
    let duration = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|err| format!("not a duration ({err}): try 7d, 12h or 30m"))?;
    if duration.is_negative() {
        return Err("a duration cannot be negative".into());
    }
    Duration::try_from(duration).map_err(|err| err.to_string())
}

/// A boolean flag's environment variable: `1`, `true`, `yes`, `on` (and `y`, `t`) or `0`,
/// `false`, `no`, `off` (and `n`, `f`), in any case; anything else is an error naming the
/// variable. (On the command line a flag takes no value: this parses only its variable.)
#[derive(Clone, Copy, Debug)]
pub struct EnvBool;

impl TypedValueParser for EnvBool {
    type Value = bool;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<bool, clap::Error> {
        BoolishValueParser::new()
            .parse_ref(cmd, arg, value)
            .map_err(|_| {
                let flag = arg.map_or_else(|| "a flag".to_string(), |a| format!("`{a}`"));
                let from = arg
                    .and_then(clap::Arg::get_env)
                    .map_or_else(String::new, |v| format!(" (from {})", v.to_string_lossy()));
                clap::Error::raw(
                    ErrorKind::InvalidValue,
                    format!(
                        "invalid value {:?} for {flag}{from}: use 1, true, yes or on to turn it on, \
                         and 0, false, no or off (or an empty value) to leave it off\n",
                        value.to_string_lossy()
                    ),
                )
                .with_cmd(cmd)
            })
    }
}

/// Parses the command line and the `MLIB_*` variables (exiting with clap's message and code
/// 2 on an error, as `Cli::parse` does). An empty variable counts as unset, as everywhere
/// else in mlib (`MLIB_STATE_DIR=`, `MLIB_ENV=`), so `MLIB_AUTO_APPROVE=` is off and
/// `MLIB_LOCK_TIMEOUT=` is the default.
///
/// `-q` and `-v` together are an error only when both are typed: `MLIB_QUIET` set in a
/// profile yields to a `-v` given for one run (clap's `conflicts_with` would count the
/// variable, even `MLIB_QUIET=0`).
pub fn parse() -> Cli {
    let command = ignore_empty_variables(Cli::command());
    let matches = command.clone().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    if cli.global.quiet && cli.global.verbose > 0 {
        if quiet_was_typed(&matches) {
            clap::Error::raw(
                ErrorKind::ArgumentConflict,
                "the argument '--quiet' cannot be used with '--verbose'\n",
            )
            .with_cmd(&command)
            .exit();
        }
        cli.global.quiet = false;
    }
    cli
}

/// Whether `-q` was on the command line (not from `MLIB_QUIET`), before or after the
/// subcommand.
fn quiet_was_typed(matches: &clap::ArgMatches) -> bool {
    let mut matches = Some(matches);
    while let Some(m) = matches {
        if m.value_source("quiet") == Some(clap::parser::ValueSource::CommandLine) {
            return true;
        }
        matches = m.subcommand().map(|(_, sub)| sub);
    }
    false
}

fn ignore_empty_variables(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(|arg| {
        let empty = arg
            .get_env()
            .is_some_and(|name| std::env::var_os(name).is_some_and(|v| v.is_empty()));
        if empty { arg.env(None) } else { arg }
    })
    .mut_subcommands(ignore_empty_variables)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = |text: &str| parse_lock_timeout(text).unwrap();
        assert_eq!(ok("5m"), Duration::from_secs(300));
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok("2 minutes"), Duration::from_secs(120));
        assert_eq!(ok("PT5M"), Duration::from_secs(300));
        assert_eq!(ok("2"), Duration::from_secs(2));
        assert_eq!(ok("1.5"), Duration::from_millis(1500));
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("24h"), Duration::from_secs(86_400));
        for bad in [
            "",
            " ",
            "5 parsecs",
            "-5m",
            "-1",
            "25h",
            "99999999999999999999999h",
            "99999999999999999999999",
            "1e9",
            "５m",
            "m",
            "1d",
            "NaN",
            "inf",
        ] {
            let err = parse_lock_timeout(bad).expect_err(bad);
            assert!(!err.is_empty(), "{bad}");
        }
        assert_eq!(
            parse_lock_timeout("25h").unwrap_err(),
            "25h is longer than the maximum, 24h"
        );
    }

    #[test]
    fn boolean_variables() {
        let cmd = Cli::command();
        let parse = |text: &str| EnvBool.parse_ref(&cmd, None, OsStr::new(text));
        for on in ["1", "true", "TRUE", "yes", "on", "On", "y", "t"] {
            assert!(parse(on).unwrap(), "{on}");
        }
        for off in ["0", "false", "no", "off", "OFF", "n", "f"] {
            assert!(!parse(off).unwrap(), "{off}");
        }
        for bad in ["2", "maybe", "", " 1", "ja", "✓"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
