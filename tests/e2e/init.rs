//! `mlib init`: from app folders full of models to a manifest, then `apply --adopt`: no byte
//! lost, nothing stored twice, every app lists the names it listed before.

use std::collections::BTreeMap;
use std::path::Path;

use crate::assert_run;
use crate::support::{TestEnv, sha256};

/// Every name under `root`'s model folders, with the sha256 of what it reads as.
fn listing(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for item in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = item.path();
            if std::fs::metadata(&path).unwrap().is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            out.insert(rel, sha256(&std::fs::read(&path).unwrap()));
        }
    }
    out
}

/// A ComfyUI with a checkpoint, a LoRA in a subfolder, a VAE linked by hand from a downloads
/// folder, a diffusers folder and a placeholder; a Forge with the same checkpoint and a page saved as a model.
fn two_apps(env: &TestEnv) {
    env.model_file("ComfyUI/models/checkpoints/base.safetensors", "base", 5000);
    env.write("ComfyUI/models/checkpoints/put_checkpoints_here", "");
    env.model_file(
        "ComfyUI/models/loras/sdxl/detail.safetensors",
        "detail",
        3000,
    );
    env.model_file("downloads/vae.safetensors", "vae", 2000);
    std::fs::create_dir_all(env.path("ComfyUI/models/vae")).unwrap();
    std::os::unix::fs::symlink(
        "../../../downloads/vae.safetensors",
        env.path("ComfyUI/models/vae/vae.safetensors"),
    )
    .unwrap();
    env.write("ComfyUI/models/diffusers/tiny/model_index.json", "{}");
    env.model_file(
        "ComfyUI/models/diffusers/tiny/unet/diffusion_pytorch_model.safetensors",
        "unet",
        1000,
    );
    env.model_file(
        "forge/models/Stable-diffusion/base.safetensors",
        "base",
        5000,
    );
    env.write(
        "forge/models/Stable-diffusion/oops.safetensors",
        "<html>429 Too Many Requests</html>",
    );
}

#[test]
fn init_then_apply_adopt_keeps_every_name_and_stores_each_file_once() {
    let env = TestEnv::new();
    two_apps(&env);
    let before = (listing(&env.path("ComfyUI")), listing(&env.path("forge")));
    let args = [
        "init",
        "--app",
        "comfyui:./ComfyUI",
        "--app",
        "forge:./forge",
    ];
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    assert_run!(env, "init_dry_run", env.mlib(&dry));
    assert!(!env.path("models.yaml").exists());

    env.mlib(&args).success().stderr_has(
        "Wrote models.yaml: 4 models (10.7 KiB) from 2 apps, 1 of them found in more than one app.",
    );
    env.mlib(&args).code(1).stderr_has("already exists");
    env.mlib(&["validate"]).success();
    env.mlib(&["apply", "--adopt", "--auto-approve"])
        .success()
        .stderr_has("Apply complete");
    env.mlib(&["plan", "--detailed-exitcode"]).success();

    // Every app lists the same names, reading the same bytes; each is now a link.
    assert_eq!(
        (listing(&env.path("ComfyUI")), listing(&env.path("forge"))),
        before
    );
    for link in [
        "ComfyUI/models/checkpoints/base.safetensors",
        "ComfyUI/models/loras/sdxl/detail.safetensors",
        "ComfyUI/models/vae/vae.safetensors",
        "ComfyUI/models/diffusers/tiny",
        "forge/models/Stable-diffusion/base.safetensors",
    ] {
        let meta = env.path(link).symlink_metadata().unwrap();
        assert!(meta.file_type().is_symlink(), "{link} is not a link");
    }
    // The same checkpoint in two apps is stored once; the hand-made link's target is kept.
    let stored = crate::support::store_files(&env.path("mlib-store"));
    let bases = stored
        .iter()
        .filter(|f| f.ends_with("base.safetensors"))
        .count();
    assert_eq!(bases, 1, "{stored:?}");
    assert!(env.path("downloads/vae.safetensors").is_file());
    // The page saved as a model was left alone.
    assert!(
        env.path("forge/models/Stable-diffusion/oops.safetensors")
            .is_file()
    );
}

#[test]
fn init_refuses_unknown_presets_and_missing_roots() {
    let env = TestEnv::new();
    env.mlib(&["init", "--app", "krita:./x"])
        .code(1)
        .stderr_has(
            "unknown preset `krita`; presets: comfyui, a1111, forge, sdnext, fooocus, swarmui",
        );
    env.mlib(&["init", "--app", "comfyui:./nowhere"])
        .code(1)
        .stderr_has("is not a folder");
    env.mlib(&["init", "--app", "comfyui"])
        .code(1)
        .stderr_has("write PRESET:ROOT");
}

#[test]
fn init_into_store_moves_no_byte_on_one_filesystem() {
    use std::os::unix::fs::MetadataExt;
    let env = TestEnv::new();
    two_apps(&env);
    let before = (listing(&env.path("ComfyUI")), listing(&env.path("forge")));
    let ino = |rel: &str| std::fs::metadata(env.path(rel)).unwrap().ino();
    let original = ino("ComfyUI/models/checkpoints/base.safetensors");
    env.mlib(&[
        "init",
        "--app",
        "comfyui:./ComfyUI",
        "--app",
        "forge:./forge",
        "--into-store",
    ])
    .success()
    // The diffusers folder is copied; every file is linked.
    .stderr_has(
        "Stored 9.8 KiB without copying (hard links on the store's filesystem) and copied 1002 B.",
    );
    let stored = "mlib-store/checkpoints/unknown/base/base.safetensors";
    assert_eq!(ino(stored), original, "the store holds the app's own file");
    env.mlib(&["plan", "--adopt"])
        .success()
        .stderr_has("Plan: 0 to add");
    env.mlib(&["apply", "--adopt", "--auto-approve"]).success();
    assert_eq!(ino(stored), original);
    assert_eq!(
        (listing(&env.path("ComfyUI")), listing(&env.path("forge"))),
        before
    );
    env.mlib(&["plan", "--detailed-exitcode"]).success();
}

/// A store copy damaged since another environment applied it is fetched again from the
/// app's good file (its bytes quarantined) before that file gives way to a link.
#[test]
fn adopting_over_a_damaged_store_copy_keeps_the_good_bytes() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let good = crate::support::model_bytes("x", 4000);
    env.write("src/x.safetensors", &good);
    env.write(
        "b.yaml",
        format!(
            "version: 1\nstore: ./store\nmodels:\n  x:\n    source: ./src/x.safetensors\n    sha256: {}\n    type: loras\napps:\n  comfyui:\n    preset: comfyui\n    root: ./B\n",
            sha256(&good)
        ),
    );
    env.mlib(&["-f", "b.yaml", "apply", "--auto-approve"])
        .success();
    let stored = env.path("store/loras/unknown/x/x.safetensors");
    std::fs::set_permissions(&stored, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&stored, vec![0u8; 4000]).unwrap();
    env.write("C/models/loras/x.safetensors", &good);
    env.mlib(&["init", "--app", "comfyui:./C", "--store", "./store"])
        .success();
    env.mlib(&["apply", "--adopt", "--auto-approve"]).success();
    let c = env.path("C/models/loras/x.safetensors");
    assert!(c.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(sha256(&std::fs::read(&c).unwrap()), sha256(&good));
    assert_eq!(sha256(&std::fs::read(&stored).unwrap()), sha256(&good));
}

/// Found in review: trees init once described with a manifest mlib rejected.
#[test]
fn init_writes_a_valid_manifest_for_awkward_trees() {
    let env = TestEnv::new();
    env.model_file("ComfyUI/models/loras/null.safetensors", "null", 100);
    env.model_file("ComfyUI/models/loras/a.safetensors", "a1", 100);
    env.model_file("ComfyUI/models/checkpoints/a.safetensors", "a2", 100);
    env.model_file("ComfyUI/models/loras/a-2.safetensors", "a3", 100);
    env.model_file("ComfyUI/models/loras/pony #2/p.safetensors", "p", 100);
    env.model_file("downloads/model_v2.safetensors", "v2", 100);
    std::os::unix::fs::symlink(
        env.path("downloads/model_v2.safetensors"),
        env.path("ComfyUI/models/loras/x.safetensors"),
    )
    .unwrap();
    std::fs::create_dir_all(env.path("forge/models/Lora")).unwrap();
    let before = listing(&env.path("ComfyUI"));
    env.mlib(&[
        "init",
        "--app",
        "comfyui:./ComfyUI",
        "--app",
        "forge:./forge",
    ])
    .success()
    .stderr_has("6 models");
    env.mlib(&["validate"]).success();
    env.mlib(&["apply", "--adopt", "--auto-approve"]).success();
    assert_eq!(listing(&env.path("ComfyUI")), before);
    env.mlib(&["plan", "--detailed-exitcode"]).success();
}

/// From nothing: `init` for an app without models, then `add`, then `apply`; and an app
/// that had none next to one that had some gets what `add --app` names.
#[test]
fn init_then_add_for_a_fresh_start() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("ComfyUI/models/loras")).unwrap();
    env.mlib(&["init", "--app", "comfyui:./ComfyUI"]).success();
    env.model_file("downloads/x.ckpt", "x", 100);
    env.mlib(&["add", "downloads/x.ckpt", "--type", "loras"])
        .success();
    env.mlib(&["apply", "--auto-approve"]).success();
    assert!(env.path("ComfyUI/models/loras/x.ckpt").exists());

    let two = TestEnv::new();
    two.model_file("ComfyUI/models/loras/a.safetensors", "a", 100);
    std::fs::create_dir_all(two.path("forge/models/Lora")).unwrap();
    two.mlib(&[
        "init",
        "--app",
        "comfyui:./ComfyUI",
        "--app",
        "forge:./forge",
    ])
    .success();
    two.model_file("downloads/y.ckpt", "y", 100);
    two.mlib(&[
        "add",
        "downloads/y.ckpt",
        "--type",
        "loras",
        "--app",
        "forge",
    ])
    .success()
    .stderr_has("+    models: [y]");
    two.mlib(&["apply", "--adopt", "--auto-approve"]).success();
    assert!(two.path("forge/models/Lora/y.ckpt").exists());
    assert!(!two.path("forge/models/Lora/a.safetensors").exists());
    assert!(!two.path("ComfyUI/models/loras/y.ckpt").exists());
}
