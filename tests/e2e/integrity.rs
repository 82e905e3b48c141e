//! Store integrity: a store file is trusted only while its stamp is the one it had when its
//! hashes were verified; a changed file is drift, quarantined and restored by apply, reported
//! by verify and scan, and never blessed.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::support::{TestEnv, sha256};

const STORED: &str = "store/checkpoints/sdxl/base/base.safetensors";

/// One checkpoint linked into ComfyUI (symlink) and Forge (hard link), and a LoRA.
fn setup(env: &TestEnv) -> String {
    let sha = env.model_file("src/base.safetensors", "base", 8192);
    env.model_file("src/detail.safetensors", "detail", 2048);
    env.manifest(&format!(
        "version: 1\nstore: ./store\nmodels:\n  base:\n    source: ./src/base.safetensors\n    sha256: {sha}\n    type: checkpoints\n    family: sdxl\n  detail:\n    source: ./src/detail.safetensors\n    type: loras\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n  forge:\n    preset: forge\n    root: ./forge\n    link: hardlink\n"
    ));
    env.mlib(&["apply", "--auto-approve"]).success();
    sha
}

/// Writes one changed byte into `path` (through whatever link it is), as an app might.
pub fn flip_byte(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[100] ^= 0xff;
    let mode = path.metadata().unwrap().permissions();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(path, &bytes).unwrap();
    std::fs::set_permissions(path, mode).unwrap();
    bytes
}

#[test]
fn a_byte_changed_through_a_hard_link_is_found_quarantined_and_restored() {
    let env = TestEnv::new();
    let sha = setup(&env);
    let forge = env.path("forge/models/Stable-diffusion/base.safetensors");
    let bad = flip_byte(&forge);
    let bad_sha = sha256(&bad);

    let expected_drift = format!(
        "~ store file changed: checkpoints/sdxl/base/base.safetensors: sha256 expected {sha}, found {bad_sha}"
    );
    env.mlib(&["plan", "--detailed-exitcode"])
        .code(2)
        .stderr_has(&expected_drift)
        .stderr_has("+ add      base from ./src/base.safetensors, 8.0 KiB (the changed store copy goes to quarantine)")
        .stderr_has("~ relink   base forge: models/Stable-diffusion/base.safetensors (its changed bytes are kept in quarantine)")
        .stderr_has("forge: models/Stable-diffusion/base.safetensors was modified through this hard link");
    env.mlib(&["status"])
        .code(1)
        .stderr_has(&format!(
            "changed  store file changed: checkpoints/sdxl/base/base.safetensors: sha256 expected {sha}, found {bad_sha}"
        ));
    env.mlib(&["verify"])
        .code(1)
        .stderr_has(&format!(
            "base: checkpoints/sdxl/base/base.safetensors: sha256 expected {sha}, found {bad_sha}"
        ))
        .stderr_has("1 of 2 files do not match their metadata.json");
    // scan reports it and does not bless it: the next plan still sees it.
    env.mlib(&["scan"])
        .code(1)
        .stderr_has("checkpoints/sdxl/base/base.safetensors changed: sha256 expected");
    env.mlib(&["plan"]).success().stderr_has(&expected_drift);

    env.mlib(&["apply", "--auto-approve"])
        .success()
        .stderr_has("warning: model `base`: moved 1 changed store file to ");
    // The store holds the model's bytes again, and every app sees them.
    let good = std::fs::read(env.path("src/base.safetensors")).unwrap();
    assert_eq!(std::fs::read(env.path(STORED)).unwrap(), good);
    assert_eq!(std::fs::read(&forge).unwrap(), good);
    assert_eq!(
        forge.metadata().unwrap().ino(),
        env.path(STORED).metadata().unwrap().ino(),
        "the hard link was made again, to the restored file"
    );
    assert_eq!(
        std::fs::read(env.path("ComfyUI/models/checkpoints/base.safetensors")).unwrap(),
        good
    );
    // The changed bytes were kept, not deleted.
    let quarantined: Vec<_> = walk_files(&env.path("store/.mlib/quarantine"));
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert_eq!(std::fs::read(&quarantined[0]).unwrap(), bad);
    assert!(
        quarantined[0].ends_with("checkpoints/sdxl/base/base.safetensors"),
        "{}",
        quarantined[0].display()
    );

    env.mlib(&["plan", "--detailed-exitcode"])
        .success()
        .stderr_has("No changes.");
    env.mlib(&["verify"])
        .success()
        .stderr_has("Verified 2 files of 2 models");
}

#[test]
fn a_file_whose_stamp_changed_but_bytes_did_not_is_hashed_once_then_trusted() {
    let env = TestEnv::new();
    setup(&env);
    let stored = env.path(STORED);
    // chmod moves the ctime and nothing else.
    std::fs::set_permissions(&stored, std::fs::Permissions::from_mode(0o400)).unwrap();
    std::fs::set_permissions(&stored, std::fs::Permissions::from_mode(0o444)).unwrap();
    let index_ctime = || -> Option<i64> {
        let db = rusqlite::Connection::open(env.path("store/.mlib/registry.db")).unwrap();
        db.query_row(
            "SELECT ctime_ns FROM file_index WHERE path = 'checkpoints/sdxl/base/base.safetensors'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let before = index_ctime();
    env.mlib(&["plan", "--detailed-exitcode"])
        .success()
        .stderr_has("No changes.");
    assert_eq!(index_ctime(), before, "plan writes nothing");
    env.mlib(&["apply", "--auto-approve"]).success();
    let now = stored.metadata().unwrap();
    assert_eq!(
        index_ctime(),
        Some(now.ctime() * 1_000_000_000 + now.ctime_nsec()),
        "apply recorded the verified stamp"
    );
}

#[test]
fn a_lost_registry_is_rebuilt_by_scan_without_blessing_a_changed_file() {
    let env = TestEnv::new();
    let sha = setup(&env);
    for file in ["registry.db", "registry.db-wal", "registry.db-shm"] {
        let _ = std::fs::remove_file(env.path(&format!("store/.mlib/{file}")));
    }
    // The LoRA is changed (as root could, through a symlink) while nobody watched.
    flip_byte(&env.path("ComfyUI/models/loras/detail.safetensors"));
    env.mlib(&["scan"])
        .code(1)
        .stderr_has("loras/unknown/detail/detail.safetensors changed: sha256 expected")
        .stderr_has("Indexed 1 file of 2 models");
    let db = rusqlite::Connection::open(env.path("store/.mlib/registry.db")).unwrap();
    let indexed: Vec<String> = db
        .prepare("SELECT sha256 FROM file_index")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(indexed, vec![sha], "only the intact file is indexed");
    env.mlib(&["plan"])
        .success()
        .stderr_has("~ store file changed: loras/unknown/detail/detail.safetensors");
}

#[test]
fn status_says_when_an_apps_copy_was_modified() {
    let env = TestEnv::new();
    env.model_file("src/base.safetensors", "base", 4096);
    env.manifest(
        "version: 1\nstore: ./store\nmodels:\n  base:\n    source: ./src/base.safetensors\n    type: checkpoints\napps:\n  fooocus:\n    preset: fooocus\n    root: ./Fooocus\n    link: copy\n",
    );
    env.mlib(&["apply", "--auto-approve"]).success();
    let copy = env.path("Fooocus/models/checkpoints/base.safetensors");
    std::thread::sleep(std::time::Duration::from_millis(20));
    flip_byte(&copy);
    env.mlib(&["status"])
        .code(1)
        .stderr_has("fooocus: 0 linked, 0 missing, 0 drifted, 1 in conflict")
        .stderr_has("conflict  fooocus: models/checkpoints/base.safetensors: was modified since mlib copied it; left alone");
    // The store is untouched and the user's edit is left alone.
    env.mlib(&["verify"]).success();
    env.mlib(&["apply", "--auto-approve"])
        .code(1)
        .stderr_has("1 conflict left untouched");
    assert_ne!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(env.path("src/base.safetensors")).unwrap()
    );
}

fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(read) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in read.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}
