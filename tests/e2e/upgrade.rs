//! A registry written by an mlib older than environments (schema 1) keeps working: its links
//! become the links of the manifest's environment, nothing is re-linked or reported as
//! someone else's. The fixture was written by that version's code (see its make.sh).

use std::path::Path;

use crate::support::{TestEnv, model_bytes};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/e2e/fixtures/registry-v1"
);
/// Where make.sh applied the fixture: the registry's absolute paths start here.
const FIXTURE_ROOT: &str = "/tmp/mlib-registry-v1-fixture";

/// The fixture's tree, rebuilt under `env`'s root: the same files, store and links as the
/// old mlib left, and its registry with the root in its paths and the links' stats rewritten
/// to this copy's.
fn rebuild_fixture(env: &TestEnv) {
    let models = [
        (
            "base",
            4096,
            "checkpoints/sdxl/base",
            "checkpoints",
            "Stable-diffusion",
        ),
        ("detail", 2048, "loras/sdxl/detail", "loras", "Lora"),
        ("vae", 1024, "vae/unknown/vae", "vae", "VAE"),
    ];
    env.write(
        "models.yaml",
        std::fs::read(format!("{FIXTURE}/manifest.yaml")).unwrap(),
    );
    for (name, size, dir, comfy, forge) in models {
        let file = format!("{name}.safetensors");
        let bytes = model_bytes(name, size);
        env.write(&format!("src/{file}"), &bytes);
        let stored = env.write(&format!("store/{dir}/{file}"), &bytes);
        std::fs::copy(
            format!("{FIXTURE}/store/{dir}/metadata.json"),
            env.path(&format!("store/{dir}/metadata.json")),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&stored, std::fs::Permissions::from_mode(0o444)).unwrap();
        let comfy_link = env.path(&format!("ComfyUI/models/{comfy}/{file}"));
        std::fs::create_dir_all(comfy_link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(
            Path::new("../../../store").join(dir).join(&file),
            &comfy_link,
        )
        .unwrap();
        let forge_link = env.path(&format!("forge/models/{forge}/{file}"));
        std::fs::create_dir_all(forge_link.parent().unwrap()).unwrap();
        std::fs::hard_link(&stored, &forge_link).unwrap();
    }
    let registry = env.path("store/.mlib/registry.db");
    std::fs::create_dir_all(registry.parent().unwrap()).unwrap();
    std::fs::copy(format!("{FIXTURE}/store/.mlib/registry.db"), &registry).unwrap();
    let db = rusqlite::Connection::open(&registry).unwrap();
    let root = env.root.to_str().unwrap();
    for column in ["manifest", "target", "source"] {
        db.execute(
            &format!("UPDATE links SET {column} = replace({column}, ?1, ?2)"),
            [FIXTURE_ROOT, root],
        )
        .unwrap();
    }
    // The links were made again here: give their rows the stat these links have, as the
    // rows of a real upgrade have the stat of the links they describe.
    let targets: Vec<String> = db
        .prepare("SELECT target FROM links")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for target in targets {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(&target).unwrap();
        db.execute(
            "UPDATE links SET dev = ?1, ino = ?2, mtime_ns = ?3, size = ?4 WHERE target = ?5",
            rusqlite::params![
                meta.dev() as i64,
                meta.ino() as i64,
                meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
                meta.size() as i64,
                target
            ],
        )
        .unwrap();
    }
    let version: u32 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 1, "the fixture is a schema-1 registry");
}

#[test]
fn a_schema_1_registry_is_upgraded_and_its_links_stay_this_manifests() {
    let env = TestEnv::new();
    rebuild_fixture(&env);

    env.mlib(&["plan", "--detailed-exitcode"])
        .success()
        .stderr_has("No changes. Store and apps match models.yaml.");
    env.mlib(&["status"]).success();
    env.mlib(&["env", "list"])
        .success()
        .stderr_has("6 links, recorded by an older mlib; its next apply claims these links");
    // Reading wrote nothing: an older mlib sharing the store still reads its registry.
    let schema = || -> u32 {
        rusqlite::Connection::open(env.path("store/.mlib/registry.db"))
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(schema(), 1);
    // Schema 1's file index is not trusted: each file is hashed once, with progress.
    env.mlib(&["apply", "--auto-approve", "--no-progress"])
        .success()
        .stderr_has("verifying checkpoints/sdxl/base/base.safetensors: done");
    let list = env.mlib(&["env", "list", "--json"]);
    let envs: Vec<_> = list
        .events()
        .into_iter()
        .filter(|e| e["type"] == "environment")
        .collect();
    assert_eq!(envs.len(), 1, "{list}");
    assert_eq!(envs[0]["legacy"], false);
    assert_eq!(envs[0]["current"], true);
    assert_eq!(envs[0]["links"], 6);
    let db = rusqlite::Connection::open(env.path("store/.mlib/registry.db")).unwrap();
    let version: u32 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, mlib_registry::schema_version());
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");

    // The old links are this environment's now: dropping a model unlinks them, and so does
    // dropping an app (the manifest has no variables: every legacy link of it was its own).
    let yaml = std::fs::read_to_string(env.path("models.yaml")).unwrap();
    env.write(
        "models.yaml",
        yaml.replace(
            "  vae:\n    source: ./src/vae.safetensors\n    type: vae\n",
            "",
        ),
    );
    env.mlib(&["apply", "--auto-approve"])
        .success()
        .stderr_has("Apply complete: 2 changes made.");
    assert!(!env.path("ComfyUI/models/vae/vae.safetensors").exists());
    assert!(!env.path("forge/models/VAE/vae.safetensors").exists());
    env.mlib(&["plan", "--detailed-exitcode"]).success();
}

#[test]
fn dropping_an_app_after_the_upgrade_unlinks_what_the_old_mlib_linked_there() {
    let env = TestEnv::new();
    rebuild_fixture(&env);
    let yaml = std::fs::read_to_string(env.path("models.yaml")).unwrap();
    let without_forge = &yaml[..yaml.find("  forge:").unwrap()];
    env.write("models.yaml", without_forge);
    env.mlib(&["apply", "--auto-approve"])
        .success()
        .stderr_has(&format!(
            "- unlink   base forge: {}",
            env.path("forge/models/Stable-diffusion/base.safetensors")
                .display()
        ))
        .stderr_has("Apply complete: 3 changes made.");
    assert!(!env.path("forge/models/Lora/detail.safetensors").exists());
    let list = env.mlib(&["env", "list", "--json"]);
    assert_eq!(
        list.events()
            .iter()
            .filter(|e| e["type"] == "environment")
            .count(),
        1,
        "no legacy environment left: {list}"
    );
}
