//! Offline bundles: `mlib bundle create` on a machine whose store has the models (one of
//! them downloaded from the test server), then `mlib apply --from-bundle` on a machine with no
//! network (the server is gone by then): exactly the bundled models, verified, linked; a
//! different manifest, a truncated tar and a damaged one each refused with what to do.

use mlib_testserver::TestServer;

use crate::assert_run;
use crate::support::{Run, TestEnv, model_bytes, sha256, store_files, tree};

const MANIFEST: &str = "version: 1
store: ./store
models:
  base:
    source: hf://org/base/base.safetensors
    revision: main
    type: checkpoints
    family: sdxl
  pipe:
    source: ./src/pipe
    type: diffusers
  detail:
    source: ./src/detail
    include: [detail.safetensors, detail.preview.png]
    type: loras
    family: sdxl
apps:
  comfyui:
    preset: comfyui
    root: ./ComfyUI
";

/// The online machine: a store with every model of [`MANIFEST`], applied, and a bundle of it
/// at `site.tar`. The test server is dropped before returning: nothing after can reach it.
fn bundled_site() -> TestEnv {
    let env = TestEnv::new();
    let server = TestServer::start();
    server
        .hf_repo("org/base")
        .lfs("base.safetensors", model_bytes("base", 300_000))
        .publish();
    env.write("src/pipe/model_index.json", "{\"_class_name\": \"Pipe\"}\n");
    env.model_file(
        "src/pipe/unet/diffusion_pytorch_model.safetensors",
        "unet",
        200_000,
    );
    env.model_file(
        "src/pipe/vae/diffusion_pytorch_model.safetensors",
        "vae",
        50_000,
    );
    env.model_file("src/detail/detail.safetensors", "detail", 40_000);
    env.write("src/detail/detail.preview.png", "not really a png");
    env.write("src/detail/unrelated.txt", "not part of the model");
    env.manifest(MANIFEST);
    let online = |args: &[&str]| {
        let mut cmd = env.command();
        cmd.args(args).env("HF_ENDPOINT", server.url());
        Run::from(cmd.output().unwrap())
    };
    online(&["apply", "--auto-approve"]).success();
    online(&["bundle", "create", "-o", "site.tar"]).success();
    env
}

/// A fresh machine holding only a copy of `site.tar` (the first `len` bytes, if given).
fn offline_site(from: &TestEnv, len: Option<usize>) -> TestEnv {
    let env = TestEnv::new();
    let mut tar = std::fs::read(from.path("site.tar")).unwrap();
    tar.truncate(len.unwrap_or(tar.len()));
    env.write("site.tar", tar);
    env
}

/// Model folders in the store that have a metadata.json, and whether mlib's temporary work
/// is gone (nothing under `.mlib/tmp`).
fn stored_models(env: &TestEnv) -> Vec<String> {
    store_files(&env.path("store"))
        .into_iter()
        .filter_map(|p| p.strip_suffix("/metadata.json").map(str::to_owned))
        .collect()
}

fn staging_is_empty(env: &TestEnv) -> bool {
    tree(&env.path("store/.mlib/tmp")).is_empty()
}

#[test]
fn a_bundle_provisions_an_offline_machine_exactly_and_again_changes_nothing() {
    let online = bundled_site();
    assert_run!(
        online,
        "bundle_ls",
        online.mlib(&["bundle", "ls", "site.tar"])
    );

    let site = offline_site(&online, None);
    let first = site.mlib(&["apply", "--from-bundle", "site.tar", "--auto-approve"]);
    assert_run!(site, "bundle_apply_first", first);
    // The bundle's own manifest and lock, byte for byte.
    for file in ["models.yaml", "models.lock"] {
        assert_eq!(
            std::fs::read(site.path(file)).unwrap(),
            std::fs::read(online.path(file)).unwrap(),
            "{file}"
        );
    }
    // Every file of every model, folder models and companions included, is linked with the
    // bytes of the online machine.
    let linked = [
        "ComfyUI/models/checkpoints/base.safetensors",
        "ComfyUI/models/diffusers/pipe/model_index.json",
        "ComfyUI/models/diffusers/pipe/unet/diffusion_pytorch_model.safetensors",
        "ComfyUI/models/diffusers/pipe/vae/diffusion_pytorch_model.safetensors",
        "ComfyUI/models/loras/detail/detail.safetensors",
        "ComfyUI/models/loras/detail/detail.preview.png",
    ];
    for path in linked {
        let here = std::fs::read(site.path(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(
            sha256(&here),
            sha256(&std::fs::read(online.path(path)).unwrap())
        );
    }
    assert!(
        !site
            .path("ComfyUI/models/loras/detail/unrelated.txt")
            .exists()
    );
    assert_eq!(
        store_files(&site.path("store"))
            .into_iter()
            .filter(|p| !p.ends_with("metadata.json") && !p.starts_with(".mlib"))
            .count(),
        6
    );
    site.mlib(&["plan", "--detailed-exitcode"])
        .code(0)
        .stderr_has("No changes.");

    let again = site.mlib(&["apply", "--from-bundle", "site.tar", "--auto-approve"]);
    assert_run!(site, "bundle_apply_again", again);
}

#[test]
fn a_different_local_manifest_is_refused_and_nothing_changes() {
    let online = bundled_site();
    let site = offline_site(&online, None);
    site.manifest(&MANIFEST.replace("./ComfyUI", "/opt/ComfyUI"));
    let before = tree(&site.root);
    let run = site.mlib(&["apply", "--from-bundle", "site.tar", "--auto-approve"]);
    assert_run!(site, "bundle_apply_manifest_differs", run);
    assert_eq!(tree(&site.root), before, "nothing was written");
}

#[test]
fn a_truncated_bundle_stores_only_whole_models_and_a_full_copy_finishes() {
    let online = bundled_site();
    let tar = std::fs::read(online.path("site.tar")).unwrap();
    // Cut inside the second model's (pipe's) unet weights.
    let unet = model_bytes("unet", 200_000);
    let at = find(&tar, &unet[..4096]) + 100_000;
    let site = offline_site(&online, Some(at));
    let run = site.mlib(&["apply", "--from-bundle", "site.tar", "--auto-approve"]);
    assert_run!(site, "bundle_apply_truncated", run);
    assert_eq!(stored_models(&site), ["checkpoints/sdxl/base"]);
    assert!(
        staging_is_empty(&site),
        "{:?}",
        tree(&site.path("store/.mlib/tmp"))
    );
    assert!(!site.path("ComfyUI").exists(), "nothing linked");

    // The whole bundle, copied again: what is stored is skipped.
    std::fs::write(site.path("site.tar"), &tar).unwrap();
    site.mlib(&[
        "apply",
        "--from-bundle",
        "site.tar",
        "--auto-approve",
        "--json",
    ])
    .success();
    let run = site.mlib(&[
        "apply",
        "--from-bundle",
        "site.tar",
        "--auto-approve",
        "--json",
    ]);
    let statuses: Vec<(String, String)> = run
        .success()
        .events()
        .iter()
        .filter(|e| e["type"] == "bundle_model")
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap().to_owned();
            (field("name"), field("status"))
        })
        .collect();
    let present = |name: &str| (name.to_owned(), "present".to_owned());
    assert_eq!(
        statuses,
        [present("base"), present("pipe"), present("detail")]
    );
    assert!(
        site.path("ComfyUI/models/diffusers/pipe/model_index.json")
            .exists()
    );
}

#[test]
fn a_damaged_model_is_never_stored_and_nothing_is_linked() {
    let online = bundled_site();
    let mut tar = std::fs::read(online.path("site.tar")).unwrap();
    let detail = model_bytes("detail", 40_000);
    let at = find(&tar, &detail[..4096]) + 20_000;
    tar[at] ^= 0xff;
    let site = TestEnv::new();
    site.write("site.tar", &tar);
    let run = site.mlib(&["apply", "--from-bundle", "site.tar", "--auto-approve"]);
    assert_run!(site, "bundle_apply_damaged", run);
    // The verified models are in the store; the damaged one is not, and nothing is linked.
    assert_eq!(
        stored_models(&site),
        ["checkpoints/sdxl/base", "diffusers/unknown/pipe"]
    );
    assert!(staging_is_empty(&site));
    assert!(!site.path("ComfyUI").exists());
}

#[test]
fn bundle_create_refuses_what_it_cannot_bundle() {
    let env = TestEnv::new();
    env.model_file("src/a.safetensors", "a", 1000);
    env.manifest(
        "version: 1\nstore: ./store\nmodels:\n  a:\n    source: ./src/a.safetensors\n    type: loras\napps:\n  comfyui: { preset: comfyui, root: ./ComfyUI }\n",
    );
    // Not applied yet: the store has nothing to bundle.
    assert_run!(
        env,
        "bundle_create_not_stored",
        env.mlib(&["bundle", "create", "-o", "a.tar"])
    );
    assert!(!env.path("a.tar").exists());
    env.mlib(&["apply", "--auto-approve"]).success();
    env.mlib(&["bundle", "create", "-o", "a.tar", "--models", "b"])
        .code(1)
        .stderr_has("--models names b that");
    env.mlib(&["bundle", "create", "-o", "a.tar"]).success();
    env.mlib(&["bundle", "create", "-o", "a.tar"])
        .code(1)
        .stderr_has("a.tar already exists");
    // Not a bundle at all.
    env.mlib(&["apply", "--from-bundle", "models.yaml", "--auto-approve"])
        .code(1)
        .stderr_has("is not an mlib bundle");
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the bytes are in the tar")
}
