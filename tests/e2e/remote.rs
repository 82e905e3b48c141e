//! Remote sources through the CLI, against a real local server speaking the HuggingFace and
//! Civitai protocols (and a separate CDN host they redirect to).

use std::time::{Duration, Instant};

use mlib_testserver::{Blob, CivitaiVersion, Gate, TestServer};

use crate::support::{Run, TestEnv, model_bytes, sha256, store_files};

const HF_TOKEN: &str = "hf_SECRET_test_token_0123456789";
const CIVITAI_TOKEN: &str = "civitai-SECRET-token-9876543210";

struct Remote {
    env: TestEnv,
    server: TestServer,
}

impl Remote {
    fn new() -> Remote {
        Remote {
            env: TestEnv::new(),
            server: TestServer::start(),
        }
    }

    fn mlib(&self, args: &[&str]) -> Run {
        self.mlib_with(args, &[])
    }

    fn mlib_with(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = self.env.command();
        cmd.args(args)
            .env("HF_ENDPOINT", self.server.url())
            .env("CIVITAI_ENDPOINT", self.server.url())
            .env("HF_HUB_CACHE", self.env.path("hf-cache"));
        cmd
    }

    fn manifest(&self, models: &str) {
        self.env.manifest(&format!(
            "version: 1\nstore: ./store\nmodels:\n{models}apps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n"
        ));
    }

    /// Nothing the user can read or commit mentions `secret`.
    fn assert_secret_nowhere(&self, run: &Run, secret: &str) {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "token leaked in output\n{run}"
        );
        for file in ["models.lock", "store/.mlib/registry.db"] {
            if let Ok(bytes) = std::fs::read(self.env.path(file)) {
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(secret),
                    "token leaked into {file}"
                );
            }
        }
    }
}

#[test]
fn hf_single_file_is_resolved_locked_downloaded_and_linked() {
    let r = Remote::new();
    let bytes = model_bytes("sdxl", 300_000);
    let commit = r
        .server
        .hf_repo("stabilityai/sdxl")
        .lfs("sd_xl_base.safetensors", bytes.clone())
        .publish();
    r.manifest("  sdxl:\n    source: hf://stabilityai/sdxl/sd_xl_base.safetensors\n    revision: main\n    type: checkpoints\n    family: sdxl\n");

    r.mlib(&["plan"])
        .success()
        .stderr_has("+ add")
        .stderr_has("293.0 KiB");
    assert!(!r.env.path("models.lock").exists(), "plan writes nothing");
    r.mlib(&["apply", "--auto-approve"]).success();

    let link = r
        .env
        .path("ComfyUI/models/checkpoints/sd_xl_base.safetensors");
    assert_eq!(std::fs::read(&link).unwrap(), bytes);
    let lock = std::fs::read_to_string(r.env.path("models.lock")).unwrap();
    assert!(
        lock.contains(&commit.commit),
        "the lock pins the commit:\n{lock}"
    );
    assert!(lock.contains(&sha256(&bytes)));
    assert!(
        !lock.contains("127.0.0"),
        "the lock is endpoint-independent:\n{lock}"
    );

    // A no-op apply with the lock covering everything makes no request at all.
    r.server.clear_requests();
    r.mlib(&["apply", "--auto-approve"])
        .success()
        .stderr_has("No changes.");
    assert!(r.server.requests().is_empty(), "{:#?}", r.server.requests());
}

#[test]
fn hf_folder_with_globs_is_one_multi_file_model() {
    let r = Remote::new();
    r.server
        .hf_repo("org/tiny-pipe")
        .small("model_index.json", b"{}".to_vec())
        .lfs(
            "unet/diffusion_pytorch_model.safetensors",
            model_bytes("unet", 5000),
        )
        .lfs(
            "vae/diffusion_pytorch_model.safetensors",
            model_bytes("vae", 3000),
        )
        .lfs("text_encoder/model.safetensors", model_bytes("te", 4000))
        .publish();
    r.manifest(
        "  pipe:\n    source: hf://org/tiny-pipe\n    include: [\"*.json\", \"unet/*\", \"vae/*\"]\n    type: diffusers\n",
    );
    r.mlib(&["apply", "--auto-approve"]).success();
    let link = r.env.path("ComfyUI/models/diffusers/tiny-pipe");
    assert!(link.join("model_index.json").is_file());
    assert!(
        link.join("unet/diffusion_pytorch_model.safetensors")
            .is_file()
    );
    assert!(!link.join("text_encoder").exists(), "excluded by the globs");
    // The small file had no published hash: the lock records the one computed on download.
    let lock = std::fs::read_to_string(r.env.path("models.lock")).unwrap();
    assert!(lock.contains(&sha256(b"{}")), "{lock}");
    r.mlib(&["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn a_gated_repo_says_what_to_do_and_the_token_never_leaks() {
    let r = Remote::new();
    let bytes = model_bytes("gated", 50_000);
    r.server
        .hf_repo("org/gated")
        .lfs("model.safetensors", bytes.clone())
        .gated(HF_TOKEN)
        .publish();
    r.manifest("  gated:\n    source: hf://org/gated/model.safetensors\n    type: checkpoints\n");

    let denied = r.mlib(&["plan"]);
    denied
        .code(1)
        .stderr_has("org/gated")
        .stderr_has("HF_TOKEN");

    let run = r.mlib_with(
        &["apply", "--auto-approve", "-v"],
        &[("HF_TOKEN", HF_TOKEN)],
    );
    run.success();
    assert_eq!(
        std::fs::read(r.env.path("ComfyUI/models/checkpoints/model.safetensors")).unwrap(),
        bytes
    );
    let requests = r.server.requests();
    let bearer = format!("Bearer {HF_TOKEN}");
    assert!(
        requests
            .iter()
            .any(|q| !q.cdn && q.header("authorization") == Some(bearer.as_str()))
    );
    let cdn: Vec<_> = requests.iter().filter(|q| q.cdn).collect();
    assert!(!cdn.is_empty(), "the download went through the CDN host");
    assert!(
        cdn.iter().all(|q| q.header("authorization").is_none()),
        "token sent to the CDN: {cdn:#?}"
    );
    r.assert_secret_nowhere(&run, HF_TOKEN);
}

#[test]
fn a_pinned_revision_resolves_to_its_commit() {
    let r = Remote::new();
    let old = r
        .server
        .hf_repo("org/m")
        .lfs("m.safetensors", model_bytes("v1", 1000))
        .publish();
    let _new = r
        .server
        .hf_repo("org/m")
        .lfs("m.safetensors", model_bytes("v2", 1000))
        .publish();
    r.manifest(&format!(
        "  m:\n    source: hf://org/m/m.safetensors\n    revision: {}\n    type: loras\n",
        old.commit
    ));
    r.mlib(&["apply", "--auto-approve"]).success();
    assert_eq!(
        std::fs::read(r.env.path("ComfyUI/models/loras/m.safetensors")).unwrap(),
        model_bytes("v1", 1000)
    );
}

#[test]
fn update_moves_a_branch_to_its_newest_commit() {
    let r = Remote::new();
    r.server
        .hf_repo("org/m")
        .lfs("m.safetensors", model_bytes("v1", 1000))
        .publish();
    r.manifest("  m:\n    source: hf://org/m/m.safetensors\n    revision: main\n    type: loras\n");
    r.mlib(&["apply", "--auto-approve"]).success();

    let newer = r
        .server
        .hf_repo("org/m")
        .lfs("m.safetensors", model_bytes("v2", 1000))
        .publish();
    // The lock keeps the old commit until asked.
    r.mlib(&["plan", "--detailed-exitcode"]).code(0);
    r.mlib(&["update"])
        .success()
        .stderr_has("~ m:")
        .stderr_has(&newer.commit[..12]);
    r.mlib(&["apply", "--auto-approve"]).success();
    assert_eq!(
        std::fs::read(r.env.path("ComfyUI/models/loras/m.safetensors")).unwrap(),
        model_bytes("v2", 1000)
    );
}

/// `org/cached`'s `c.safetensors`, published and already in the test's HuggingFace cache;
/// returns its bytes and the commit.
fn cached_in_hf(r: &Remote) -> (Vec<u8>, mlib_testserver::HfCommit) {
    let bytes = model_bytes("cached", 200_000);
    let commit = r
        .server
        .hf_repo("org/cached")
        .lfs("c.safetensors", bytes.clone())
        .publish();
    mlib_testserver::populate_hf_cache(&r.env.path("hf-cache"), &commit, Some("main"), None)
        .unwrap();
    (bytes, commit)
}

/// A model whose file is the HuggingFace cache's blob under a second name: deleting it
/// gives back no space (the cache keeps the bytes), and gc says so instead of counting it.
#[test]
fn gc_of_a_model_hard_linked_from_the_hf_cache_frees_nothing() {
    let r = Remote::new();
    let (bytes, _) = cached_in_hf(&r);
    if mlib_fs::platform::may_reflink(&r.env.path(".")) {
        eprintln!("skipped: this filesystem clones, so nothing is hard linked");
        return;
    }
    r.manifest("  c:\n    source: hf://org/cached/c.safetensors\n    type: loras\n");
    r.mlib(&["apply", "--auto-approve"])
        .success()
        .stderr_has("hardlinked from the HuggingFace cache");
    r.env
        .manifest("version: 1\nstore: ./store\nmodels: {}\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n");
    r.mlib(&["apply", "--auto-approve"]).success();
    r.mlib(&["gc", "--auto-approve"])
        .success()
        .stderr_has("hard linked elsewhere too: frees nothing")
        .stderr_has("and free 0 B.")
        .stderr_has("Freed 0 B.");
    let blob = r
        .env
        .path("hf-cache/models--org--cached/blobs")
        .join(crate::support::sha256(&bytes));
    assert!(std::fs::read(&blob).unwrap() == bytes, "the cache keeps it");
}

#[test]
fn the_hf_cache_is_reused_without_downloading() {
    let r = Remote::new();
    let (bytes, commit) = cached_in_hf(&r);
    r.manifest("  c:\n    source: hf://org/cached/c.safetensors\n    type: loras\n");

    // The test's temporary folder is one filesystem that cannot clone: a hard link.
    let blob = r
        .env
        .path("hf-cache/models--org--cached/blobs")
        .join(crate::support::sha256(&bytes));
    let stored = r.env.path("store/loras/unknown/c/c.safetensors");
    let one_fs = !mlib_fs::platform::may_reflink(&r.env.path("."));
    if one_fs {
        crate::assert_run!(r.env, "plan_hf_cache_hardlinked", r.mlib(&["plan"]));
        let json = r.mlib(&["--json", "plan"]);
        assert!(
            json.stdout
                .contains(r#""reuse":{"from":"huggingface_cache","how":"hardlinked"}"#),
            "{json}"
        );
    }
    let run = r.mlib(&["apply", "--auto-approve"]);
    run.success();
    assert_eq!(
        std::fs::read(r.env.path("ComfyUI/models/loras/c.safetensors")).unwrap(),
        bytes
    );
    let cdn_path = commit.file("c.safetensors").cdn_path();
    assert_eq!(r.server.bytes_sent(&cdn_path), 0, "zero bytes transferred");
    if !one_fs {
        return;
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    run.stderr_has("c: hardlinked from the HuggingFace cache");
    let inode = |p: &std::path::Path| std::fs::metadata(p).unwrap().ino();
    assert_eq!(inode(&blob), inode(&stored), "one inode, two names");
    // The store's read-only mode is the blob's too (see the fetch crate's `reuse`).
    assert_eq!(std::fs::metadata(&blob).unwrap().mode() & 0o222, 0);

    // Someone makes the cache's blob writable and changes it in place: the store's stamp no
    // longer matches, the next plan hashes it, and the changed copy goes to quarantine.
    std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut changed = bytes.clone();
    let last = changed.len() - 1;
    changed[last] ^= 0xff;
    std::fs::write(&blob, &changed).unwrap();
    r.mlib(&["plan"])
        .success()
        .stderr_has("the changed store copy goes to quarantine");
    r.mlib(&["apply", "--auto-approve"]).success();
    assert_eq!(std::fs::read(&stored).unwrap(), bytes, "downloaded again");
    assert_ne!(inode(&blob), inode(&stored));
    assert!(r.server.bytes_sent(&cdn_path) > 0);
}

#[test]
fn civitai_downloads_follow_the_redirect_without_the_token() {
    let r = Remote::new();
    let bytes = model_bytes("lora", 80_000);
    r.server.civitai_version(
        CivitaiVersion::new(122359, 135867)
            .model_type("LORA")
            .base_model("SDXL 1.0")
            .file(1, "add_detail.safetensors", bytes.clone())
            .primary(1)
            .gated(CIVITAI_TOKEN, Gate::Json401),
    );
    r.manifest(
        "  add-detail:\n    source: civitai:122359@135867\n    type: loras\n    family: sdxl\n",
    );

    let run = r.mlib_with(
        &["apply", "--auto-approve"],
        &[("CIVITAI_TOKEN", CIVITAI_TOKEN)],
    );
    run.success();
    assert_eq!(
        std::fs::read(r.env.path("ComfyUI/models/loras/add_detail.safetensors")).unwrap(),
        bytes
    );
    let requests = r.server.requests();
    assert!(
        requests.iter().any(|q| q.cdn),
        "downloaded from the CDN host"
    );
    for q in requests.iter().filter(|q| q.cdn) {
        assert!(
            q.header("authorization").is_none() && !q.path.contains(CIVITAI_TOKEN),
            "token sent to the CDN: {q:?}"
        );
    }
    r.assert_secret_nowhere(&run, CIVITAI_TOKEN);
    assert!(
        std::fs::read_to_string(r.env.path("models.lock"))
            .unwrap()
            .contains("135867")
    );
}

#[test]
fn an_html_login_page_is_rejected_not_saved_as_a_model() {
    let r = Remote::new();
    r.server.civitai_version(
        CivitaiVersion::new(1, 2)
            .file(3, "gated.safetensors", model_bytes("gated", 10_000))
            .primary(3)
            .gated(CIVITAI_TOKEN, Gate::LoginPage),
    );
    r.manifest("  gated:\n    source: civitai:1@2\n    type: loras\n");
    let run = r.mlib(&["apply", "--auto-approve"]);
    run.code(1).stderr_has("CIVITAI_TOKEN");
    assert!(
        r.env
            .path("ComfyUI/models/loras/gated.safetensors")
            .symlink_metadata()
            .is_err()
    );
    let stored = store_files(&r.env.path("store"));
    assert!(stored.is_empty(), "{stored:?}");
}

#[test]
fn https_sources_need_a_pin_unless_allowed() {
    let r = Remote::new();
    let bytes = model_bytes("url", 20_000);
    let url = r.server.add_blob("/files/upscaler.pth", bytes.clone());
    r.manifest(&format!(
        "  up:\n    source: {url}\n    type: upscale_models\n"
    ));
    r.mlib(&["plan"]).code(1).stderr_has("--allow-unpinned");
    r.mlib(&["apply", "--auto-approve", "--allow-unpinned"])
        .success();
    assert_eq!(
        std::fs::read(r.env.path("ComfyUI/models/upscale_models/upscaler.pth")).unwrap(),
        bytes
    );
}

#[test]
fn a_hash_mismatch_reaches_neither_store_nor_app() {
    let r = Remote::new();
    let url = r
        .server
        .add_blob("/files/m.safetensors", model_bytes("real", 20_000));
    let wrong = sha256(b"something else");
    r.manifest(&format!(
        "  m:\n    source: {url}\n    sha256: {wrong}\n    type: loras\n"
    ));
    let run = r.mlib(&["apply", "--auto-approve"]);
    run.code(1)
        .stderr_has(&wrong)
        .stderr_has(&sha256(&model_bytes("real", 20_000)));
    assert!(
        r.env
            .path("ComfyUI/models/loras/m.safetensors")
            .symlink_metadata()
            .is_err()
    );
    let leftovers = store_files(&r.env.path("store"));
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_503_is_retried() {
    let r = Remote::new();
    let bytes = model_bytes("flaky", 30_000);
    let url = r.server.add(
        "/files/flaky.safetensors",
        Blob::new(bytes.clone()).fail_first(2, Some(0)),
    );
    r.manifest(&format!(
        "  f:\n    source: {url}\n    sha256: {}\n    type: loras\n",
        sha256(&bytes)
    ));
    r.mlib(&["apply", "--auto-approve"])
        .success()
        .stderr_has("retrying");
    assert_eq!(
        std::fs::read(r.env.path("ComfyUI/models/loras/flaky.safetensors")).unwrap(),
        bytes
    );
}

#[test]
fn locked_fails_when_the_lock_does_not_cover_the_manifest() {
    let r = Remote::new();
    r.server
        .hf_repo("org/m")
        .lfs("m.safetensors", model_bytes("m", 1000))
        .publish();
    r.manifest("  m:\n    source: hf://org/m/m.safetensors\n    type: loras\n");
    r.mlib(&["apply", "--auto-approve", "--locked"])
        .code(1)
        .stderr_has("mlib lock");
    assert!(r.server.requests().is_empty(), "--locked resolves nothing");

    r.mlib(&["lock"]).success();
    assert!(r.env.path("models.lock").exists());
    assert!(
        !r.env.path("store/loras").exists(),
        "lock downloads nothing"
    );
    r.mlib(&["apply", "--auto-approve", "--locked"]).success();
    assert!(r.env.path("ComfyUI/models/loras/m.safetensors").exists());
}

#[test]
fn offline_never_touches_the_network() {
    let r = Remote::new();
    r.server
        .hf_repo("org/m")
        .lfs("m.safetensors", model_bytes("m", 1000))
        .publish();
    r.manifest("  m:\n    source: hf://org/m/m.safetensors\n    type: loras\n");
    // Without a lock or cache, offline cannot know what to fetch: a clear error, no request.
    r.mlib(&["plan", "--offline"]).code(1).stderr_has("offline");
    assert!(r.server.requests().is_empty());

    r.mlib(&["apply", "--auto-approve"]).success();
    std::fs::remove_file(r.env.path("ComfyUI/models/loras/m.safetensors")).unwrap();
    r.server.clear_requests();
    r.mlib_with(&["apply", "--auto-approve"], &[("HF_HUB_OFFLINE", "1")])
        .success();
    assert!(r.env.path("ComfyUI/models/loras/m.safetensors").exists());
    assert!(r.server.requests().is_empty(), "{:#?}", r.server.requests());
}

#[test]
fn a_killed_download_resumes_from_its_part_file() {
    let r = Remote::new();
    let size = 4 << 20;
    let bytes = model_bytes("big", size);
    let path = "/files/big.safetensors";
    let url = r
        .server
        .add(path, Blob::new(bytes.clone()).throttle(4 << 20));
    r.manifest(&format!(
        "  big:\n    source: {url}\n    sha256: {}\n    type: checkpoints\n",
        sha256(&bytes)
    ));

    let mut child = r
        .command(&["apply", "--auto-approve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill once half the file is on disk (not merely sent: loopback socket buffers hold MBs).
    let deadline = Instant::now() + Duration::from_secs(20);
    while part_bytes(&r.env.path("store/.mlib/tmp")) < (size as u64) / 2 {
        assert!(Instant::now() < deadline, "the download never got to half");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The server may still count a chunk written to the killed connection after this: only
    // requests made after the kill count as re-transferred.
    let killed_requests = r.server.requests().len();
    let on_disk = part_bytes(&r.env.path("store/.mlib/tmp"));
    assert!(on_disk < size as u64, "killed before the end");

    r.server.set_faults(path, Default::default());
    let resumed = r.mlib(&["apply", "--auto-approve", "-v"]);
    resumed.success();
    assert_eq!(
        std::fs::read(r.env.path("ComfyUI/models/checkpoints/big.safetensors")).unwrap(),
        bytes
    );
    let again: u64 = r.server.requests()[killed_requests..]
        .iter()
        .filter(|q| q.path_only() == path)
        .map(|q| q.bytes_sent)
        .sum();
    assert!(
        again < (size as u64) / 2 + (256 << 10),
        "re-transferred {again} of {size} bytes ({on_disk} on disk after the kill)\n{resumed}"
    );
    assert!(
        r.server
            .requests()
            .iter()
            .any(|q| q.header("range").is_some()),
        "resumed with Range"
    );
}

#[test]
fn a_saved_plan_fetches_what_it_resolved_even_if_the_branch_moved() {
    let r = Remote::new();
    r.server
        .hf_repo("org/m")
        .lfs("m.safetensors", model_bytes("v1", 1000))
        .publish();
    r.manifest("  m:\n    source: hf://org/m/m.safetensors\n    revision: main\n    type: loras\n");
    r.mlib(&["plan", "-o", "plan.json"]).success();
    r.server
        .hf_repo("org/m")
        .lfs("m.safetensors", model_bytes("v2", 1000))
        .publish();

    r.mlib(&["apply", "plan.json"]).success();
    assert_eq!(
        std::fs::read(r.env.path("ComfyUI/models/loras/m.safetensors")).unwrap(),
        model_bytes("v1", 1000),
        "the plan approved v1"
    );
    r.mlib(&["plan", "--detailed-exitcode"]).code(0);
}

/// Bytes in `.part` files under `dir` (the store's staging folder).
fn part_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in read.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(".part") {
                // What is written, not the length: parallel ranges leave holes.
                use std::os::unix::fs::MetadataExt;
                total += entry
                    .metadata()
                    .map(|m| m.len().min(m.blocks() * 512))
                    .unwrap_or(0);
            }
        }
    }
    total
}

#[test]
fn lock_update_apply_and_json_output() {
    let r = Remote::new();
    r.server
        .hf_repo("org/m")
        .lfs("m.safetensors", model_bytes("v1", 1000))
        .publish();
    r.manifest("  m:\n    source: hf://org/m/m.safetensors\n    revision: main\n    type: loras\n");
    crate::assert_run!(r.env, "remote_lock", r.mlib(&["lock"]));
    crate::assert_run!(r.env, "remote_lock_again", r.mlib(&["lock"]));
    crate::assert_run!(r.env, "remote_apply", r.mlib(&["apply", "--auto-approve"]));
    r.server
        .hf_repo("org/m")
        .lfs("m.safetensors", model_bytes("v2", 1000))
        .publish();
    crate::assert_run!(r.env, "remote_update", r.mlib(&["update"]));
    crate::assert_run!(r.env, "remote_plan_json", r.mlib(&["plan", "--json"]));
    crate::assert_run!(
        r.env,
        "remote_apply_json",
        r.mlib(&["apply", "--auto-approve", "--json"])
    );
}
