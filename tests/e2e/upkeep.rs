//! Upkeep of a store shared by several environments: rm, gc, du, env forget, status, doctor.

use crate::assert_run;
use crate::support::{Run, TestEnv};

/// Two manifests sharing one store: `a.yaml` (shared, only_a) into ./A, `b.yaml` (shared,
/// only_b) into ./B. Applied both.
fn two_environments() -> TestEnv {
    let env = TestEnv::new();
    env.model_file("src/shared.safetensors", "shared", 4096);
    env.model_file("src/only_a.safetensors", "only_a", 3000);
    env.model_file("src/only_b.safetensors", "only_b", 2000);
    env.write("a.yaml", manifest("A", &["shared", "only_a"]));
    env.write("b.yaml", manifest("B", &["shared", "only_b"]));
    mlib(&env, "a.yaml", &["apply", "--auto-approve"]).success();
    mlib(&env, "b.yaml", &["apply", "--auto-approve"]).success();
    env
}

fn manifest(root: &str, models: &[&str]) -> String {
    let mut yaml = String::from("version: 1\nstore: ./store\nmodels:\n");
    for model in models {
        yaml.push_str(&format!(
            "  {model}:\n    source: ./src/{model}.safetensors\n    type: loras\n"
        ));
    }
    yaml.push_str(&format!(
        "apps:\n  comfyui:\n    preset: comfyui\n    root: ./{root}\n"
    ));
    yaml
}

fn mlib(env: &TestEnv, file: &str, args: &[&str]) -> Run {
    let mut all = vec!["-f", file];
    all.extend_from_slice(args);
    env.mlib(&all)
}

fn link(env: &TestEnv, root: &str, model: &str) -> std::path::PathBuf {
    env.path(&format!("{root}/models/loras/{model}.safetensors"))
}

fn stored(env: &TestEnv, model: &str) -> std::path::PathBuf {
    env.path(&format!("store/loras/unknown/{model}"))
}

#[test]
fn rm_refuses_while_a_manifest_declares_the_model_and_cascades_with_force() {
    let env = two_environments();
    mlib(&env, "a.yaml", &["rm", "shared", "--auto-approve"])
        .code(1)
        .stderr_has("loras/unknown/shared is declared by this manifest, ")
        .stderr_has("b.yaml")
        .stderr_has("or pass --force. Nothing was changed.");
    assert!(link(&env, "A", "shared").exists());

    // Dropped from b.yaml but not applied yet: b's last apply still declares it.
    env.write("b.yaml", manifest("B", &["only_b"]));
    mlib(&env, "a.yaml", &["rm", "shared", "--auto-approve"])
        .code(1)
        .stderr_has("b.yaml");
    mlib(&env, "b.yaml", &["apply", "--auto-approve"]).success();
    assert!(!link(&env, "B", "shared").exists());

    // A dry run shows the cascade and changes nothing.
    mlib(&env, "a.yaml", &["rm", "shared", "--force", "--dry-run"])
        .success()
        .stderr_has("- unlink ")
        .stderr_has("- delete loras/unknown/shared (4.0 KiB)")
        .stderr_has("Dry run: nothing was changed.");
    assert!(link(&env, "A", "shared").exists());

    // Without a terminal and without --auto-approve: refused, nothing changed.
    mlib(&env, "a.yaml", &["rm", "shared", "--force"])
        .code(1)
        .stderr_has("pass --auto-approve");
    mlib(
        &env,
        "a.yaml",
        &["rm", "shared", "--force", "--auto-approve"],
    )
    .success()
    .stderr_has("Removed 1 link(s) and 1 model(s), freed 4.0 KiB.");
    assert!(link(&env, "A", "shared").symlink_metadata().is_err());
    assert!(!stored(&env, "shared").exists());
    // Only this manifest declares it now: the next apply fetches it again.
    mlib(&env, "a.yaml", &["plan"]).success().stderr_has("+ ");
}

#[test]
fn rm_keep_file_unlinks_everywhere_and_keeps_the_bytes_and_leaves_changed_links() {
    let env = two_environments();
    // A person replaced B's link by their own file: it is theirs.
    let theirs = link(&env, "B", "shared");
    std::fs::remove_file(&theirs).unwrap();
    std::fs::write(&theirs, b"my own file").unwrap();
    mlib(
        &env,
        "a.yaml",
        &["rm", "shared", "--force", "--keep-file", "--auto-approve"],
    )
    .success()
    .stderr_has("changed since mlib linked it: left in place");
    assert_eq!(std::fs::read(&theirs).unwrap(), b"my own file");
    assert!(link(&env, "A", "shared").symlink_metadata().is_err());
    assert!(stored(&env, "shared").join("shared.safetensors").exists());

    mlib(&env, "a.yaml", &["rm", "nothing-like-it", "--auto-approve"])
        .code(1)
        .stderr_has("no model `nothing-like-it` in the store");
}

#[test]
fn gc_frees_what_no_environment_needs_and_keeps_foreign_files() {
    let env = two_environments();
    env.write("store/notes.txt", "my notes");
    mlib(&env, "a.yaml", &["gc", "--dry-run"])
        .success()
        .stderr_has("Nothing to collect")
        .stderr_has("notes.txt (8 B, not put there by mlib: kept");

    // only_a leaves a.yaml: after a's apply nothing links or declares it.
    env.write("a.yaml", manifest("A", &["shared"]));
    mlib(&env, "a.yaml", &["apply", "--auto-approve"]).success();
    mlib(&env, "a.yaml", &["gc", "--min-age", "7d", "--dry-run"])
        .success()
        .stderr_has("Nothing to collect");
    mlib(&env, "a.yaml", &["gc", "--dry-run"])
        .success()
        .stderr_has("- loras/unknown/only_a (2.9 KiB)")
        .stderr_has("gc would delete 1 model and free 2.9 KiB.");
    assert!(stored(&env, "only_a").exists());
    // A person's notes in the model's folder are not the model's: kept in the quarantine.
    env.write("store/loras/unknown/only_a/notes.txt", "mine");
    let run = mlib(&env, "a.yaml", &["gc", "--auto-approve", "--json"]);
    run.success();
    let summary = run
        .events()
        .into_iter()
        .find(|e| e["type"] == "gc_summary")
        .expect("a summary");
    assert_eq!(summary["freed"], 3000);
    assert!(!stored(&env, "only_a").exists());
    let kept: Vec<String> = crate::support::tree(&env.path("store/.mlib/quarantine"))
        .into_iter()
        .filter(|p| p.ends_with("only_a/notes.txt"))
        .collect();
    assert_eq!(kept.len(), 1, "the notes were kept");
    assert!(stored(&env, "only_b").exists() && stored(&env, "shared").exists());
    assert!(env.path("store/notes.txt").exists());

    mlib(
        &env,
        "a.yaml",
        &["gc", "--include-foreign", "--auto-approve"],
    )
    .success()
    .stderr_has("Freed 8 B.");
    assert!(!env.path("store/notes.txt").exists());
    mlib(&env, "b.yaml", &["plan", "--detailed-exitcode"]).success();
}

#[test]
fn a_gone_manifest_keeps_its_models_until_its_environment_is_forgotten() {
    let env = two_environments();
    std::fs::remove_file(env.path("b.yaml")).unwrap();
    mlib(&env, "a.yaml", &["gc", "--dry-run"])
        .success()
        .stderr_has("b.yaml is gone; its links keep 6.0 KiB in use: `mlib env forget ")
        .stderr_has("Nothing to collect");
    let b = env.path("b.yaml");
    let b = b.to_str().unwrap();
    mlib(&env, "a.yaml", &["env", "forget", "nobody"])
        .code(1)
        .stderr_has("no environment `nobody`");
    mlib(
        &env,
        "a.yaml",
        &["env", "forget", env.path("a.yaml").to_str().unwrap()],
    )
    .code(1)
    .stderr_has("still exists");
    mlib(&env, "a.yaml", &["env", "forget", b, "--dry-run"])
        .success()
        .stderr_has("env forget would forget")
        .stderr_has("Dry run: nothing was changed.");
    assert!(link(&env, "B", "only_b").symlink_metadata().is_ok());
    mlib(&env, "a.yaml", &["env", "forget", b])
        .code(1)
        .stderr_has("pass --auto-approve");
    mlib(&env, "a.yaml", &["env", "forget", b, "--auto-approve"])
        .success()
        .stderr_has("removed 2 link(s)");
    assert!(link(&env, "B", "only_b").symlink_metadata().is_err());
    mlib(&env, "a.yaml", &["gc", "--auto-approve"])
        .success()
        .stderr_has("- loras/unknown/only_b");
    assert!(!stored(&env, "only_b").exists());
    assert!(link(&env, "A", "shared").exists());
    mlib(&env, "a.yaml", &["plan", "--detailed-exitcode"]).success();
}

#[test]
fn du_lists_sizes_and_users() {
    let env = two_environments();
    let run = mlib(&env, "a.yaml", &["du", "--json"]);
    run.success();
    let models: Vec<_> = run
        .events()
        .into_iter()
        .filter(|e| e["type"] == "model")
        .collect();
    let ids: Vec<&str> = models.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "loras/unknown/shared",
            "loras/unknown/only_a",
            "loras/unknown/only_b"
        ],
        "largest first"
    );
    assert_eq!(models[0]["size"], 4096);
    assert_eq!(models[0]["used_by"].as_array().unwrap().len(), 2);
    assert_eq!(models[1]["declared_by"][0], "this manifest");
    assert!(models[2]["last_applied"].is_string());
    mlib(&env, "a.yaml", &["du", "--sort", "name"])
        .success()
        .stderr_has("3 models, 8.9 KiB in the store");
}

fn kinds(run: &Run) -> Vec<(String, bool)> {
    let mut kinds: Vec<(String, bool)> = run
        .events()
        .into_iter()
        .filter(|e| e["type"] == "finding")
        .map(|e| (e["kind"].as_str().unwrap().to_string(), e["fixed"] == true))
        .collect();
    kinds.sort();
    kinds
}

#[test]
fn doctor_finds_each_kind_of_damage_fixes_what_is_safe_and_ends_clean() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let names = [
        "ok", "broken", "gone", "changed", "corrupt", "missing", "badmeta",
    ];
    for name in names {
        env.model_file(&format!("src/{name}.safetensors"), name, 1024);
    }
    env.write("a.yaml", manifest("A", &names));
    env.model_file("src/only_b.safetensors", "only_b", 100);
    env.write("b.yaml", manifest("B", &["only_b"]));
    mlib(&env, "a.yaml", &["apply", "--auto-approve"]).success();
    mlib(&env, "b.yaml", &["apply", "--auto-approve"]).success();
    mlib(&env, "a.yaml", &["doctor"])
        .success()
        .stderr_has("No problems found: 8 models, 8 links.");

    let loras = |rel: &str| env.path(&format!("store/loras/unknown/{rel}"));
    std::fs::rename(loras("broken"), env.path("broken-elsewhere")).unwrap();
    std::fs::remove_file(link(&env, "A", "gone")).unwrap();
    std::fs::remove_file(link(&env, "A", "changed")).unwrap();
    std::fs::write(link(&env, "A", "changed"), b"mine").unwrap();
    std::os::unix::fs::symlink(
        "../../../store/loras/unknown/ok/ok.safetensors",
        link(&env, "A", "extra"),
    )
    .unwrap();
    let corrupt = loras("corrupt/corrupt.safetensors");
    std::fs::set_permissions(&corrupt, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&corrupt, vec![7u8; 1024]).unwrap();
    std::fs::remove_file(loras("missing/missing.safetensors")).unwrap();
    std::fs::write(loras("badmeta/metadata.json"), "{ not json").unwrap();
    env.write("store/loras/unknown/stray/file.bin", "stray");
    env.write("store/.mlib/tmp/.ingest.mlib-tmp-4194303-1-0/x", "half");
    let part = env.write("store/.mlib/tmp/abc.part", "partial");
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&part)
        .unwrap()
        .set_modified(two_days_ago)
        .unwrap();
    env.write(
        "store/.mlib/quarantine/20260101T000000Z-x/loras/x.safetensors",
        "old",
    );
    std::fs::remove_file(env.path("b.yaml")).unwrap();

    let found = mlib(&env, "a.yaml", &["doctor", "--json"]);
    found.code(1);
    let expected = |fixed: &[&str]| -> Vec<(String, bool)> {
        let mut all: Vec<(String, bool)> = [
            "bad_metadata",
            "broken_link",
            // `missing`'s link: its store file is gone too.
            "broken_link",
            "link_changed",
            "link_gone",
            "manifest_gone",
            "no_metadata",
            "partial_download",
            "quarantined",
            "stale_temp",
            "store_file_changed",
            "store_file_missing",
            "unregistered_link",
        ]
        .iter()
        .map(|k| (k.to_string(), fixed.contains(k)))
        .collect();
        all.sort();
        all
    };
    assert_eq!(kinds(&found), expected(&[]), "{found}");
    mlib(&env, "a.yaml", &["doctor"])
        .code(1)
        .stderr_has("13 finding(s); `mlib doctor --fix` repairs 7 of them.")
        .stderr_has("changed since mlib linked it");

    let fixed = mlib(&env, "a.yaml", &["doctor", "--fix", "--json"]);
    fixed.code(1);
    assert_eq!(
        kinds(&fixed),
        expected(&[
            "broken_link",
            "link_changed",
            "link_gone",
            "partial_download",
            "stale_temp",
            "store_file_changed",
        ]),
        "{fixed}"
    );
    // Never a person's file: the replaced link and the stray files are still there.
    assert_eq!(std::fs::read(link(&env, "A", "changed")).unwrap(), b"mine");
    assert!(env.path("store/loras/unknown/stray/file.bin").exists());
    assert!(link(&env, "A", "extra").symlink_metadata().is_ok());
    assert!(!part.exists());
    assert!(
        !corrupt.exists(),
        "the changed store file went to the quarantine"
    );

    // What doctor left is for the user; then apply restores the rest.
    std::fs::remove_file(link(&env, "A", "extra")).unwrap();
    std::fs::remove_file(link(&env, "A", "changed")).unwrap();
    std::fs::remove_dir_all(env.path("store/loras/unknown/stray")).unwrap();
    std::fs::remove_dir_all(loras("badmeta")).unwrap();
    std::fs::remove_dir_all(env.path("store/.mlib/quarantine")).unwrap();
    mlib(
        &env,
        "a.yaml",
        &[
            "env",
            "forget",
            env.path("b.yaml").to_str().unwrap(),
            "--auto-approve",
        ],
    )
    .success();
    mlib(&env, "a.yaml", &["apply", "--auto-approve"]).success();
    mlib(&env, "a.yaml", &["doctor"])
        .success()
        .stderr_has("No problems found");
}

#[test]
fn status_tells_the_truth_and_exits_1_with_findings() {
    let env = two_environments();
    mlib(&env, "a.yaml", &["status"])
        .success()
        .stderr_has("comfyui: 2 linked, 0 missing, 0 drifted");

    // A link whose store entry vanished is broken, not linked.
    std::fs::rename(stored(&env, "only_a"), env.path("elsewhere")).unwrap();
    env.write("store/.mlib/quarantine/x/loras/y.safetensors", "kept");
    mlib(&env, "a.yaml", &["status"])
        .code(1)
        .stderr_has("comfyui: 1 linked, 0 missing, 1 broken, 0 drifted")
        .stderr_has("broken    comfyui: models/loras/only_a.safetensors (points at nothing)")
        .stderr_has("quarantine  1 file(s) (4 B)");
    std::fs::rename(env.path("elsewhere"), stored(&env, "only_a")).unwrap();
    std::fs::remove_dir_all(env.path("store/.mlib/quarantine")).unwrap();

    // A manifest moved away: its environment's links are reported, and their models too.
    std::fs::rename(env.path("b.yaml"), env.path("b-moved.yaml")).unwrap();
    mlib(&env, "a.yaml", &["status"])
        .code(1)
        .stderr_has("b.yaml is gone; its links keep");
    // What no environment uses is information, not a finding.
    mlib(
        &env,
        "a.yaml",
        &[
            "env",
            "forget",
            env.path("b.yaml").to_str().unwrap(),
            "--auto-approve",
        ],
    )
    .success();
    mlib(&env, "a.yaml", &["status"])
        .success()
        .stderr_has("unused   1 model (2.0 KiB) no environment uses: `mlib gc` frees them");
}

#[test]
fn upkeep_output() {
    let env = two_environments();
    env.write("a.yaml", manifest("A", &["shared"]));
    mlib(&env, "a.yaml", &["apply", "--auto-approve"]).success();
    assert_run!(env, "du", mlib(&env, "a.yaml", &["du"]));
    assert_run!(
        env,
        "gc_dry_run",
        mlib(&env, "a.yaml", &["gc", "--dry-run"])
    );
    assert_run!(
        env,
        "rm_refused",
        mlib(&env, "a.yaml", &["rm", "shared", "--dry-run"])
    );
    assert_run!(
        env,
        "rm_dry_run",
        mlib(&env, "a.yaml", &["rm", "only_b", "--force", "--dry-run"])
    );
    assert_run!(env, "doctor_clean", mlib(&env, "a.yaml", &["doctor"]));
    std::fs::remove_file(link(&env, "B", "only_b")).unwrap();
    assert_run!(env, "doctor_finding", mlib(&env, "a.yaml", &["doctor"]));
    assert_run!(
        env,
        "doctor_fix",
        mlib(&env, "a.yaml", &["doctor", "--fix"])
    );
}

/// The workshop server: one template manifest applied for three users (`WS_USER`), all on
/// one store. A model the template drops is freed only once no user's environment needs it.
#[test]
fn gc_on_a_shared_template_waits_for_every_user() {
    let env = TestEnv::new();
    env.model_file("src/base.safetensors", "base", 4096);
    env.model_file("src/old.safetensors", "old", 1000);
    let template = |models: &[&str]| {
        let mut yaml = String::from("version: 1\nstore: ./store\nmodels:\n");
        for m in models {
            yaml.push_str(&format!(
                "  {m}:\n    source: ./src/{m}.safetensors\n    type: loras\n"
            ));
        }
        yaml.push_str(
            "apps:\n  comfyui:\n    preset: comfyui\n    root: ./users/${WS_USER}/ComfyUI\n",
        );
        env.write("models.yaml", yaml);
    };
    let as_user = |user: &str, args: &[&str]| {
        Run::from(
            env.command()
                .env("WS_USER", user)
                .args(args)
                .output()
                .unwrap(),
        )
    };
    template(&["base", "old"]);
    for user in ["ann", "bob", "cid"] {
        as_user(user, &["apply", "--auto-approve"]).success();
    }
    template(&["base"]);
    as_user("ann", &["apply", "--auto-approve"]).success();
    // bob and cid still link it (and their last apply declared it).
    as_user("ann", &["gc", "--dry-run"])
        .success()
        .stderr_has("Nothing to collect");
    as_user("ann", &["du"])
        .success()
        .stderr_has("(WS_USER=bob) (comfyui); ");
    for user in ["bob", "cid"] {
        as_user(user, &["apply", "--auto-approve"]).success();
    }
    as_user("cid", &["gc", "--auto-approve"])
        .success()
        .stderr_has("- loras/unknown/old (1000 B)")
        .stderr_has("Freed 1000 B.");
    assert!(!env.path("store/loras/unknown/old").exists());
    for user in ["ann", "bob", "cid"] {
        as_user(user, &["status"]).success();
    }
}

/// Found in review: with the store gone every link looked broken, and --fix removed them all.
#[test]
fn doctor_refuses_to_judge_without_the_store() {
    let env = two_environments();
    std::fs::rename(env.path("store"), env.path("store-elsewhere")).unwrap();
    mlib(&env, "a.yaml", &["doctor", "--fix"])
        .code(1)
        .stderr_has("does not exist (moved, or on a drive not mounted now?)")
        .stderr_has("mlib relocate");
    assert!(link(&env, "A", "shared").symlink_metadata().is_ok());
}
