//! The crash test: `mlib apply` killed with SIGKILL at random moments, again and again, and
//! after each kill the next apply must converge to exactly what an uninterrupted apply makes.
//!
//! One store, three apps (symlink, hardlink, copy), local file and folder models of a few
//! MiB and a throttled download from the test server. Three manifest variants differ in
//! almost everything (a renamed `file:`, a changed local source, a new remote version, apps
//! switching between hardlink and copy, an app folder moved, models selected and
//! deselected), so every apply has fetches, store swaps, links, relinks, moves, unlinks and
//! copies to do, and a kill lands in one of them. Each transition is first timed with an
//! uninterrupted apply (and when it starts linking, after its fetches); kill delays are then
//! drawn half over the whole apply, half over its linking part, which is short next to the
//! download but holds most of the windows. After each kill (and, one time in four, a second
//! kill of the apply that recovers from it), an apply runs to completion and the checks are:
//!
//! 1. every store model's files match its metadata.json (size and sha256, hashed here), and
//!    the model folder holds nothing else;
//! 2. every link the registry records exists and is what it says: a symlink to its source,
//!    the source's inode, or the source's bytes (a copy);
//! 3. no mlib temporary name anywhere under the test's root; every entry in the app folders
//!    is a recorded link or a file the user put there before; nothing is left in the store's
//!    staging folder, nothing in the quarantine;
//! 4. the registry passes `PRAGMA integrity_check`, its journal and runs are empty;
//! 5. `mlib plan --detailed-exitcode` says "No changes" and exits 0;
//! 6. the app trees (names, symlink targets, file bytes) equal those of an uninterrupted
//!    apply of the same variant in a fresh directory.
//!
//! `MLIB_CRASH_KILLS` raises the number of kills (default [`KILLS`]); `MLIB_CRASH_SEED`
//! replays a run's delays (the seed is printed; where a delay lands still depends on the
//! machine's speed). The summary at the end says which windows the kills hit, as far as what
//! was on disk right after each kill tells (`--nocapture` shows it).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mlib_fs::temp::TempName;
use mlib_testserver::{Blob, TestServer};
use rusqlite::{Connection, OpenFlags};

use crate::support::{Run, TestEnv, model_bytes, sha256, tree};

/// SIGKILLs of a running apply (each iteration kills one; about one in four kills the apply
/// that recovers from it too). `MLIB_CRASH_KILLS` raises it for a longer local run.
const KILLS: usize = 100;
const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
/// The download's rate: slow enough that kills often land in the middle of it.
const THROTTLE: u64 = 12 << 20;
const VARIANTS: usize = 3;

/// Apps, with the folders each model type goes to (all three get a `diffusers` folder).
const APPS: &[(&str, &str, &[&str])] = &[
    (
        "comfy",
        "ComfyUI",
        &[
            "models/checkpoints",
            "models/loras",
            "models/vae",
            "models/diffusers",
            "models/upscale_models",
        ],
    ),
    (
        "forge",
        "Forge",
        &[
            "models/Stable-diffusion",
            "models/Lora",
            "models/VAE",
            "models/diffusers",
            "models/ESRGAN",
            "models/RealESRGAN",
        ],
    ),
    (
        "a1111",
        "A1111",
        &[
            "models/Stable-diffusion",
            "models/Lora",
            "models/VAE",
            "models/diffusers",
            "models/ESRGAN",
        ],
    ),
];

/// The remote model's three versions, served by the test server.
struct Remote {
    urls: Vec<String>,
    shas: Vec<String>,
}

impl Remote {
    fn serve(server: &TestServer) -> Remote {
        let (mut urls, mut shas) = (Vec::new(), Vec::new());
        for v in 0..VARIANTS {
            let bytes = model_bytes(&format!("remote-{v}"), 3 * MIB / 2);
            shas.push(sha256(&bytes));
            urls.push(server.add(
                &format!("/files/v{v}/upscaler.pth"),
                Blob::new(bytes).throttle(THROTTLE),
            ));
        }
        Remote { urls, shas }
    }
}

/// Local sources and the user's own files in the app folders, the same in every directory.
struct Sources {
    alpha: String,
    beta: Vec<String>,
    gamma: String,
}

fn populate(env: &TestEnv) -> (Sources, HashSet<PathBuf>) {
    let alpha = env.model_file("src/alpha.safetensors", "alpha", 3 * MIB);
    let beta = (0..VARIANTS)
        .map(|v| {
            env.model_file(
                &format!("src/beta-{v}.safetensors"),
                &format!("beta-{v}"),
                3 * MIB / 2,
            )
        })
        .collect();
    let gamma = env.model_file("src/gamma.safetensors", "gamma", MIB);
    env.write("src/pipe/model_index.json", br#"{"_class_name": "Pipe"}"#);
    env.model_file(
        "src/pipe/unet/diffusion_pytorch_model.safetensors",
        "unet",
        MIB,
    );
    env.model_file(
        "src/pipe/vae/diffusion_pytorch_model.safetensors",
        "vae",
        MIB / 2,
    );
    // Many small files, as diffusers folders have: copying or removing the folder takes a
    // while, so kills land in the middle of it too.
    for n in 0..32 {
        env.model_file(
            &format!("src/pipe/tokenizer/part-{n:02}.json"),
            &format!("tok-{n}"),
            8 * KIB,
        );
    }
    // What people keep in app folders, and mlib must never touch.
    let mut user = HashSet::new();
    for (_, root, folders) in APPS {
        for folder in *folders {
            user.insert(env.write(&format!("{root}/{folder}/put_models_here.txt"), b"user"));
        }
        let lora = format!("{root}/{}/my-own-lora.safetensors", folders[1]);
        env.model_file(&lora, "mine", 10 * KIB);
        user.insert(env.path(&lora));
    }
    (Sources { alpha, beta, gamma }, user)
}

/// The manifest of variant `v`.
fn manifest(v: usize, src: &Sources, remote: &Remote) -> String {
    let alpha_file = if v == 1 {
        "    file: alpha-xl.safetensors\n"
    } else {
        ""
    };
    let (forge_link, a1111_link) = if v == 1 {
        ("copy", "hardlink")
    } else {
        ("hardlink", "copy")
    };
    let forge_models = ["all", "[alpha, beta, pipe, remote]", "[alpha, gamma, pipe]"][v];
    // Variant 1 moves forge's upscaler folder: its link moves with it.
    let forge_upscalers = ["models/ESRGAN", "models/RealESRGAN", "models/ESRGAN"][v];
    // a1111 drops its copy of the folder model going back to variant 0.
    let a1111_models = [
        "[alpha, beta, remote]",
        "all",
        "[beta, gamma, pipe, remote]",
    ][v];
    format!(
        "version: 1
store: ./store
models:
  alpha:
    source: ./src/alpha.safetensors
    sha256: {alpha}
{alpha_file}    type: checkpoints
    family: sdxl
  beta:
    source: ./src/beta-{v}.safetensors
    sha256: {beta}
    file: beta.safetensors
    type: loras
    family: sdxl
  gamma:
    source: ./src/gamma.safetensors
    sha256: {gamma}
    type: vae
  pipe:
    source: ./src/pipe
    type: diffusers
  remote:
    source: {url}
    sha256: {remote_sha}
    type: upscale_models
apps:
  comfy:
    preset: comfyui
    root: ./ComfyUI
    link: symlink
  forge:
    preset: forge
    root: ./Forge
    link: {forge_link}
    models: {forge_models}
    folders: {{ diffusers: models/diffusers, upscale_models: {forge_upscalers} }}
  a1111:
    preset: a1111
    root: ./A1111
    link: {a1111_link}
    models: {a1111_models}
    folders: {{ diffusers: models/diffusers }}
",
        alpha = src.alpha,
        beta = src.beta[v],
        gamma = src.gamma,
        url = remote.urls[v],
        remote_sha = remote.shas[v],
    )
}

/// One directory with its store, apps and manifest, applied with the real binary.
struct Site {
    env: TestEnv,
    sources: Sources,
    user: HashSet<PathBuf>,
}

impl Site {
    fn new() -> Site {
        let env = TestEnv::new();
        let (sources, user) = populate(&env);
        Site { env, sources, user }
    }

    fn select(&self, v: usize, remote: &Remote) {
        self.env.manifest(&manifest(v, &self.sources, remote));
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.env.command();
        cmd.args(args)
            .env("HF_HUB_CACHE", self.env.path("hf-cache"));
        cmd
    }

    fn mlib(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run mlib"))
    }

    /// An apply run to completion.
    fn apply(&self) -> Run {
        self.mlib(&["apply", "--auto-approve"])
    }

    /// An uninterrupted apply (`--json`, so its events can be timed): how long it took, and
    /// when it started making links (after its fetches).
    fn timed_apply(&self) -> (Run, Timing) {
        use std::io::{BufRead, Read};
        let start = Instant::now();
        let mut child = self
            .command(&["apply", "--auto-approve", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mlib");
        let mut stderr = child.stderr.take().unwrap();
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            stderr.read_to_string(&mut text).map(|_| text)
        });
        let mut stdout = String::new();
        let mut links_from = None;
        for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.expect("read mlib's stdout");
            let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            let linking = event["type"] == "apply_start"
                && matches!(event["change"]["action"].as_str(), Some("link" | "relink"));
            if linking && links_from.is_none() {
                links_from = Some(start.elapsed());
            }
            stdout.push_str(&line);
            stdout.push('\n');
        }
        let status = child.wait().expect("wait");
        let total = start.elapsed();
        let run = Run {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr: errors.join().unwrap().expect("read mlib's stderr"),
        };
        let links_from = links_from.unwrap_or(total);
        (run, Timing { total, links_from })
    }

    /// An apply killed with SIGKILL after `delay`; whether it had exited by itself before.
    fn killed_apply(&self, delay: Duration) -> bool {
        let mut child = self
            .command(&["apply", "--auto-approve"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mlib");
        std::thread::sleep(delay);
        let exited = child.try_wait().expect("try_wait").is_some();
        if !exited {
            child.kill().expect("SIGKILL");
        }
        child.wait().expect("wait");
        exited
    }

    fn store(&self) -> PathBuf {
        self.env.path("store")
    }

    fn registry(&self) -> Connection {
        Connection::open_with_flags(
            self.store().join(".mlib/registry.db"),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .expect("open the registry")
    }

    /// Every app's tree, with the sha256 of every regular file: what an uninterrupted apply
    /// is compared with.
    fn apps_state(&self) -> Vec<(String, Option<String>)> {
        self.apps_tree()
            .into_iter()
            .map(|line| {
                let path = self.env.path(&line);
                let is_file = path
                    .symlink_metadata()
                    .is_ok_and(|m| m.file_type().is_file());
                let sha = is_file.then(|| sha256(&std::fs::read(&path).unwrap()));
                (line, sha)
            })
            .collect()
    }

    /// The app trees (names, kinds, symlink targets) without reading any file.
    fn apps_tree(&self) -> Vec<String> {
        APPS.iter()
            .flat_map(|(_, root, _)| {
                tree(&self.env.path(root))
                    .into_iter()
                    .map(move |l| format!("{root}/{l}"))
            })
            .collect()
    }
}

/// How long an uninterrupted apply of one transition takes, and when it starts linking.
#[derive(Clone, Copy, Debug, Default)]
struct Timing {
    total: Duration,
    links_from: Duration,
}

impl Timing {
    fn scaled(self, factor: f64) -> Timing {
        Timing {
            total: self.total.mul_f64(factor),
            links_from: self.links_from.mul_f64(factor),
        }
    }

    /// A moment to kill at: half the time anywhere in the apply, half the time while it
    /// links (short next to the download before it, and where most of the windows are).
    fn pick(&self, rng: &mut Rng) -> Duration {
        if rng.one_in(2) {
            rng.below(self.total)
        } else {
            self.links_from + rng.below(self.total.saturating_sub(self.links_from))
        }
    }
}

/// A small seeded generator (splitmix64): the same seed replays the same delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, max)`.
    fn below(&mut self, max: Duration) -> Duration {
        let nanos = max.as_nanos().max(1) as u64;
        Duration::from_nanos(self.next() % nanos)
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
fn apply_converges_after_sigkill_at_any_moment() {
    let started = Instant::now();
    let server = TestServer::start();
    let remote = Remote::serve(&server);
    let target = env_number("MLIB_CRASH_KILLS").map_or(KILLS, |n| n as usize);
    let seed = env_number("MLIB_CRASH_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    eprintln!("crash test: seed {seed} (MLIB_CRASH_SEED={seed} replays it), {target} kills");
    let mut rng = Rng(seed);

    // What an uninterrupted apply of each variant makes, each in a fresh directory.
    let mut first_apply = Duration::ZERO;
    let expected: Vec<Vec<(String, Option<String>)>> = (0..VARIANTS)
        .map(|v| {
            let fresh = Site::new();
            fresh.select(v, &remote);
            let clock = Instant::now();
            fresh.apply().success();
            first_apply = first_apply.max(clock.elapsed());
            fresh.apps_state()
        })
        .collect();

    // The site that gets killed: its first apply (of variant 0, into an empty store) is
    // killed too; then one uninterrupted round 1 → 2 → 0 measures each transition.
    let site = Site::new();
    site.select(0, &remote);
    let delay = rng.below(first_apply);
    let first_killed = !site.killed_apply(delay);
    let run = site.apply();
    check(&site, 0, &expected[0], &run)
        .unwrap_or_else(|e| panic!("seed {seed}: first apply killed after {delay:?}: {e}"));
    let mut timing = [Timing::default(); VARIANTS];
    for v in [1, 2, 0] {
        site.select(v, &remote);
        let (run, took) = site.timed_apply();
        run.success();
        check(&site, v, &expected[v], &run).unwrap_or_else(|e| panic!("uninterrupted: {e}"));
        timing[v] = took;
        eprintln!(
            "crash test: variant {} → {v} takes {:.0?}, linking from {:.0?}",
            (v + 2) % VARIANTS,
            took.total,
            took.links_from
        );
    }

    let mut windows: BTreeMap<&'static str, usize> = BTreeMap::new();
    if first_killed {
        windows.insert("(the first apply, into an empty store)", 1);
    }
    let (mut kills, mut iterations, mut exited_first) = (usize::from(first_killed), 0, 0);
    let (mut killed_time, mut recovery_time, mut check_time) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut current = 0;
    while kills < target {
        assert!(
            iterations < 3 * target,
            "{iterations} iterations for {kills} kills: the applies finish before their kill"
        );
        let v = (current + 1) % VARIANTS;
        site.select(v, &remote);
        let delay = timing[v].pick(&mut rng);
        let mut log = vec![format!(
            "iteration {iterations}: variant {current} → {v}, kill after {delay:?}"
        )];
        let clock = Instant::now();
        if site.killed_apply(delay) {
            exited_first += 1;
            log.push("  (had exited)".into());
            // Faster than when it was measured: aim a little earlier from now on.
            timing[v] = timing[v].scaled(0.95);
        } else {
            kills += 1;
            for window in probe(&site, &expected[v]) {
                *windows.entry(window).or_default() += 1;
                log.push(format!("  window: {window}"));
            }
            // Sometimes the apply that recovers is killed as well.
            if rng.one_in(4) {
                let delay = timing[v].pick(&mut rng);
                log.push(format!("  recovering apply killed after {delay:?}"));
                if !site.killed_apply(delay) {
                    kills += 1;
                    *windows
                        .entry("(a recovering apply, killed too)")
                        .or_default() += 1;
                }
            }
        }
        killed_time += clock.elapsed();
        let clock = Instant::now();
        let run = site.apply();
        recovery_time += clock.elapsed();
        let clock = Instant::now();
        if let Err(problem) = check(&site, v, &expected[v], &run) {
            panic!(
                "seed {seed}: {}\n{problem}\n--- the apply after the kill\n{run}",
                log.join("\n")
            );
        }
        check_time += clock.elapsed();
        current = v;
        iterations += 1;
    }

    let took: Duration = started.elapsed();
    eprintln!(
        "crash test: {kills} kills in {iterations} iterations ({exited_first} applies had finished before their kill), seed {seed}, {took:.1?} \
         (killed applies {killed_time:.1?}, applies after them {recovery_time:.1?}, checks {check_time:.1?})"
    );
    eprintln!("crash test: windows hit (a kill may be in several):");
    for (window, n) in &windows {
        eprintln!("  {n:>4}  {window}");
    }
}

/// What was on disk right after a kill: which windows of an apply it interrupted.
fn probe(site: &Site, expected: &[(String, Option<String>)]) -> BTreeSet<&'static str> {
    let mut windows = BTreeSet::new();
    let staging = site.store().join(".mlib/tmp");
    for entry in std::fs::read_dir(&staging).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".part") {
            windows.insert("download: a .part file (resumable)");
        } else if name.ends_with(".done") {
            windows.insert("download: verified, not yet in the store (.done)");
        } else if let Some(temp) = TempName::parse(&entry.file_name()) {
            match temp.name.as_str() {
                "ingest" => windows.insert("store: copying a local model in (staging folder)"),
                "commit" => windows.insert("store: moving a download in (staging folder)"),
                "remove" => windows.insert("store: removing a model (staging folder)"),
                "old" => {
                    let meta = std::fs::read(entry.path().join("metadata.json"))
                        .ok()
                        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
                    let missing = meta.is_some_and(|m| {
                        let dir = site.store().join(m["type"].as_str().unwrap_or("?"));
                        let dir = match m["family"].as_str() {
                            Some(family) => dir.join(family),
                            None => dir,
                        };
                        !dir.join(m["name"].as_str().unwrap_or("?")).exists()
                    });
                    if missing {
                        windows.insert("store: between the two renames of a model swap")
                    } else {
                        windows.insert("store: old version of a replaced model not yet removed")
                    }
                }
                _ => windows.insert("store: other temporary file in staging"),
            };
        }
    }
    for (_, root, folders) in APPS {
        for folder in *folders {
            let dir = site.env.path(&format!("{root}/{folder}"));
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if TempName::parse(&entry.file_name()).is_some()
                    || entry.file_name().to_string_lossy().contains(".mlib-tmp-")
                {
                    let meta = entry.path().symlink_metadata().unwrap();
                    windows.insert(if meta.file_type().is_symlink() {
                        "app: a symlink being put in place (temporary name)"
                    } else if meta.is_dir() {
                        "app: a folder being copied or removed (temporary name)"
                    } else if meta.nlink() > 1 {
                        "app: a hard link being put in place (temporary name)"
                    } else {
                        "app: a file being copied (temporary name)"
                    });
                }
            }
        }
    }
    if has_temp_name(&site.env.root) {
        windows.insert("manifest folder: models.lock being written (temporary name)");
    }
    let registry = site.registry();
    let runs: i64 = registry
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .unwrap_or(0);
    if runs > 0 {
        windows.insert("registry: an apply run open (changes started)");
    }
    let pending: Vec<String> = registry
        .prepare("SELECT target FROM pending")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<_, _>>()
        })
        .unwrap_or_default();
    if !pending.is_empty() {
        windows.insert("registry: links journaled, not all recorded");
    }
    for target in &pending {
        let Ok(meta) = Path::new(target).symlink_metadata() else {
            continue;
        };
        let recorded: Option<(i64, i64)> = registry
            .query_row(
                "SELECT ino, mtime_ns FROM links WHERE target = ?1",
                [target],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok();
        let mtime = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
        if recorded != Some((meta.ino() as i64, mtime)) {
            windows.insert("app: a finished link or copy not yet recorded (journaled)");
            break;
        }
    }
    if windows.is_empty() {
        let want: Vec<&String> = expected.iter().map(|(line, _)| line).collect();
        windows.insert(if site.apps_tree().iter().collect::<Vec<_>>() == want {
            "after the last change, before exiting"
        } else {
            "before the first change (planning, resolving)"
        });
    }
    windows
}

/// Whether a file directly in `dir` has an mlib temporary name.
fn has_temp_name(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| is_temp(&e.file_name()))
}

fn is_temp(name: &OsStr) -> bool {
    TempName::parse(name).is_some() || name.to_string_lossy().contains(".mlib-tmp-")
}

/// Every check after an apply that ran to completion; the first problem found, described.
fn check(
    site: &Site,
    v: usize,
    expected: &[(String, Option<String>)],
    run: &Run,
) -> Result<(), String> {
    if run.code != 0 {
        return Err(format!("the apply failed (exit code {})", run.code));
    }
    if run.stderr.lines().any(|l| l.trim_start().starts_with('!')) {
        return Err("the apply reported a conflict".into());
    }
    check_store(site)?;
    let links = check_registry(site)?;
    check_leftovers(site, &links)?;
    let plan = site.mlib(&["plan", "--detailed-exitcode"]);
    if plan.code != 0 || !plan.stderr.contains("No changes") {
        return Err(format!("the plan after it is not empty\n{plan}"));
    }
    let state = site.apps_state();
    if state != expected {
        let extra: Vec<_> = state.iter().filter(|l| !expected.contains(l)).collect();
        let missing: Vec<_> = expected.iter().filter(|l| !state.contains(l)).collect();
        return Err(format!(
            "the apps differ from an uninterrupted apply of variant {v}\n  not expected: {extra:#?}\n  missing: {missing:#?}"
        ));
    }
    Ok(())
}

/// (1) Every stored model: each file has the size and sha256 its metadata.json says, and the
/// model folder holds its entries and metadata.json, nothing else.
fn check_store(site: &Site) -> Result<(), String> {
    let store = site.store();
    let mut metadata = Vec::new();
    find_metadata(&store, &mut metadata);
    if metadata.is_empty() {
        return Err("no model in the store".into());
    }
    for path in metadata {
        let dir = path.parent().unwrap();
        let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut want: BTreeSet<String> = meta["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_owned())
            .collect();
        want.insert("metadata.json".into());
        let have: BTreeSet<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        if have != want {
            return Err(format!(
                "{} holds {have:?}, its metadata.json lists {want:?}",
                dir.display()
            ));
        }
        for file in meta["files"].as_array().unwrap() {
            let file_path = dir.join(file["path"].as_str().unwrap());
            let bytes =
                std::fs::read(&file_path).map_err(|e| format!("{}: {e}", file_path.display()))?;
            if bytes.len() as u64 != file["size"].as_u64().unwrap()
                || sha256(&bytes) != file["sha256"].as_str().unwrap()
            {
                return Err(format!(
                    "{} does not match its metadata.json",
                    file_path.display()
                ));
            }
        }
    }
    Ok(())
}

fn find_metadata(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_name() == ".mlib" {
            continue;
        }
        if entry.file_name() == "metadata.json" {
            out.push(path);
        } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
            find_metadata(&path, out);
        }
    }
}

/// (2) and (4): every recorded link is what the registry says; integrity, empty journal.
/// Returns the recorded targets.
fn check_registry(site: &Site) -> Result<HashSet<PathBuf>, String> {
    let db = site.registry();
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| format!("integrity_check: {e}"))?;
    if integrity != "ok" {
        return Err(format!("PRAGMA integrity_check: {integrity}"));
    }
    for table in ["pending", "runs"] {
        let n: i64 = db
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        if n != 0 {
            return Err(format!("{n} rows left in the registry's {table} table"));
        }
    }
    let mut stmt = db
        .prepare("SELECT target, source, kind, ino, size, mtime_ns FROM links")
        .unwrap();
    let rows: Vec<(String, String, String, i64, i64, i64)> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut targets = HashSet::new();
    for (target, source, kind, ino, size, mtime) in rows {
        let (target, source) = (PathBuf::from(target), PathBuf::from(source));
        let meta = target
            .symlink_metadata()
            .map_err(|e| format!("recorded link {}: {e}", target.display()))?;
        // A copied folder is recorded by the stat of its whole tree.
        let stat = if kind == "copy" && meta.is_dir() {
            mlib_registry::FileStat::tree(&target).map_err(|e| e.to_string())?
        } else {
            mlib_registry::FileStat::from_metadata(&meta)
        };
        let now = (stat.ino as i64, stat.size as i64, stat.mtime_ns);
        if now != (ino, size, mtime) {
            return Err(format!(
                "recorded link {} has another stat than recorded",
                target.display()
            ));
        }
        let ok = match kind.as_str() {
            "symlink" => {
                meta.file_type().is_symlink()
                    && target.canonicalize().ok() == source.canonicalize().ok()
            }
            "hardlink" => meta.is_file() && source.metadata().is_ok_and(|s| s.ino() == meta.ino()),
            "copy" => {
                !meta.file_type().is_symlink()
                    && same_tree(&target, &source)
                    && meta.ino() != source.metadata().map(|m| m.ino()).unwrap_or(0)
            }
            other => return Err(format!("unknown link kind {other}")),
        };
        if !ok {
            return Err(format!(
                "recorded {kind} {} is not a {kind} of {}",
                target.display(),
                source.display()
            ));
        }
        targets.insert(target);
    }
    Ok(targets)
}

fn same_tree(a: &Path, b: &Path) -> bool {
    let (Ok(ma), Ok(mb)) = (a.symlink_metadata(), b.metadata()) else {
        return false;
    };
    if ma.is_dir() != mb.is_dir() {
        return false;
    }
    if !ma.is_dir() {
        return std::fs::read(a).ok() == std::fs::read(b).ok();
    }
    let names = |d: &Path| -> BTreeSet<_> {
        std::fs::read_dir(d)
            .map(|r| r.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default()
    };
    let names_a = names(a);
    names_a == names(b) && names_a.iter().all(|n| same_tree(&a.join(n), &b.join(n)))
}

/// (3): no temporary name anywhere, nothing in the app folders that is neither a recorded
/// link nor the user's, nothing in staging or quarantine.
fn check_leftovers(site: &Site, links: &HashSet<PathBuf>) -> Result<(), String> {
    let mut temps = Vec::new();
    find_temps(&site.env.root, &mut temps);
    if !temps.is_empty() {
        return Err(format!("temporary files left: {temps:#?}"));
    }
    for (_, root, _) in APPS {
        let mut strays = Vec::new();
        find_strays(&site.env.path(root), links, &site.user, &mut strays);
        if !strays.is_empty() {
            return Err(format!(
                "in the app folders, neither recorded links nor the user's: {strays:#?}"
            ));
        }
    }
    for folder in ["tmp", "quarantine"] {
        let dir = site.store().join(".mlib").join(folder);
        let left: Vec<_> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        if !left.is_empty() {
            return Err(format!("left in {}: {left:#?}", dir.display()));
        }
    }
    Ok(())
}

fn find_temps(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if is_temp(&entry.file_name()) {
            out.push(path);
        } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
            find_temps(&path, out);
        }
    }
}

fn find_strays(
    dir: &Path,
    links: &HashSet<PathBuf>,
    user: &HashSet<PathBuf>,
    out: &mut Vec<PathBuf>,
) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if links.contains(&path) || user.contains(&path) {
            continue;
        }
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            find_strays(&path, links, user, out);
        } else {
            out.push(path);
        }
    }
}
