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
/// old mlib left, and its registry with the root in its paths rewritten.
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
    env.mlib(&["env", "list"])
        .success()
        .stderr_has("6 links, recorded by an older mlib; its next apply claims these links");
    env.mlib(&["apply", "--auto-approve"]).success();
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

    // The old links are this environment's now: dropping a model unlinks them.
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
