//! Upkeep in the planner: renames and moves of models inside the store (never a copy or a
//! download), and what a plan now catches before apply would fail on it.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use mlib_testserver::{Blob, CivitaiVersion, TestServer};

use crate::support::{Run, TestEnv, model_bytes, sha256};

fn ino(path: &Path) -> u64 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .ino()
}

/// `mlib` with the test server as HuggingFace and Civitai.
fn remote(env: &TestEnv, server: &TestServer, args: &[&str]) -> Run {
    Run::from(
        env.command()
            .args(args)
            .env("HF_ENDPOINT", server.url())
            .env("CIVITAI_ENDPOINT", server.url())
            .env("HF_HUB_CACHE", env.path("hf-cache"))
            .output()
            .unwrap(),
    )
}

fn one_model(env: &TestEnv, name: &str, body: &str) {
    env.manifest(&format!(
        "version: 1\nstore: ./store\nmodels:\n  {name}:\n{body}apps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n"
    ));
}

#[test]
fn a_model_renamed_in_the_manifest_is_moved_in_the_store_not_downloaded_again() {
    let env = TestEnv::new();
    let server = TestServer::start();
    let bytes = model_bytes("detail", 20_000);
    let url = server.add("/files/detail.safetensors", Blob::new(bytes.clone()));
    let body = format!(
        "    source: {url}\n    sha256: {}\n    type: loras\n",
        sha256(&bytes)
    );
    one_model(&env, "a", &body);
    remote(&env, &server, &["apply", "--auto-approve"]).success();
    let old = env.path("store/loras/unknown/a/detail.safetensors");
    let inode = ino(&old);

    one_model(&env, "b", &body);
    server.clear_requests();
    let plan = remote(&env, &server, &["plan"]);
    crate::assert_run!(env, "plan_rename", plan);
    plan.success()
        .stderr_has("~ rename   a → b (loras/unknown/a → loras/unknown/b, 19.5 KiB not copied)")
        .stderr_has(
            "~ relink   b comfyui: models/loras/detail.safetensors: loras/unknown/a/detail.safetensors → loras/unknown/b/detail.safetensors",
        )
        .stderr_has("Plan: 0 to add, 1 to rename, 0 to link, 1 to relink, 0 to unlink.");

    remote(&env, &server, &["apply", "--auto-approve"]).success();
    let new = env.path("store/loras/unknown/b/detail.safetensors");
    assert_eq!(ino(&new), inode, "the store file was moved, not copied");
    assert!(!env.path("store/loras/unknown/a").exists());
    let link = env.path("ComfyUI/models/loras/detail.safetensors");
    let points = std::fs::read_link(&link).unwrap();
    assert!(
        points.ends_with("store/loras/unknown/b/detail.safetensors"),
        "{}",
        points.display()
    );
    assert_eq!(ino(&link), inode);
    let gets: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect();
    assert!(gets.is_empty(), "nothing downloaded: {gets:#?}");
    let metadata =
        std::fs::read_to_string(env.path("store/loras/unknown/b/metadata.json")).unwrap();
    assert!(metadata.contains("\"name\": \"b\""), "{metadata}");
    remote(&env, &server, &["plan", "--detailed-exitcode"])
        .code(0)
        .stderr_has("No changes.");
}

#[test]
fn a_type_change_moves_the_model_and_its_links() {
    let env = TestEnv::new();
    let sha = env.model_file("src/m.safetensors", "m", 8192);
    let body = |model_type: &str| {
        format!("    source: ./src/m.safetensors\n    sha256: {sha}\n    type: {model_type}\n")
    };
    one_model(&env, "m", &body("loras"));
    env.mlib(&["apply", "--auto-approve"]).success();
    let inode = ino(&env.path("store/loras/unknown/m/m.safetensors"));

    one_model(&env, "m", &body("checkpoints"));
    env.mlib(&["plan"])
        .success()
        .stderr_has(
            "~ rename   m → m (loras/unknown/m → checkpoints/unknown/m, 8.0 KiB not copied)",
        )
        .stderr_has(
            "~ relink   m comfyui: models/loras/m.safetensors → models/checkpoints/m.safetensors",
        );
    env.mlib(&["apply", "--auto-approve"]).success();
    assert_eq!(
        ino(&env.path("store/checkpoints/unknown/m/m.safetensors")),
        inode
    );
    assert!(!env.path("store/loras/unknown/m").exists());
    assert!(
        env.path("ComfyUI/models/checkpoints/m.safetensors")
            .exists()
    );
    assert!(
        env.path("ComfyUI/models/loras/m.safetensors")
            .symlink_metadata()
            .is_err()
    );
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn a_rename_while_another_environment_links_the_old_model_copies_it() {
    let env = TestEnv::new();
    let sha = env.model_file("src/m.safetensors", "m", 4096);
    let manifest = |file: &str, name: &str, root: &str| {
        env.write(
            file,
            format!(
                "version: 1\nstore: ./store\nmodels:\n  {name}:\n    source: ./src/m.safetensors\n    sha256: {sha}\n    type: loras\napps:\n  comfyui:\n    preset: comfyui\n    root: {root}\n"
            ),
        );
    };
    manifest("a.yaml", "old", "./a");
    manifest("b.yaml", "old", "./b");
    env.mlib(&["apply", "--auto-approve", "-f", "a.yaml"])
        .success();
    env.mlib(&["apply", "--auto-approve", "-f", "b.yaml"])
        .success();
    let inode = ino(&env.path("store/loras/unknown/old/m.safetensors"));

    manifest("a.yaml", "new", "./a");
    env.mlib(&["plan", "-f", "a.yaml"])
        .success()
        .stderr_has("+ add      new from ./src/m.safetensors")
        .stderr_has("1 to add");
    env.mlib(&["apply", "--auto-approve", "-f", "a.yaml"])
        .success();
    // b.yaml's links still have their model, untouched.
    assert_eq!(
        ino(&env.path("store/loras/unknown/old/m.safetensors")),
        inode
    );
    assert_eq!(ino(&env.path("b/models/loras/m.safetensors")), inode);
    assert_ne!(
        ino(&env.path("store/loras/unknown/new/m.safetensors")),
        inode
    );
    env.mlib(&["plan", "--detailed-exitcode", "-f", "b.yaml"])
        .code(0);
    env.mlib(&["plan", "--detailed-exitcode", "-f", "a.yaml"])
        .code(0);
}

#[test]
fn a_rename_while_another_environment_declares_the_old_model_copies_it() {
    let env = TestEnv::new();
    let sha = env.model_file("src/m.safetensors", "m", 4096);
    let manifest = |file: &str, name: &str, selects: &str| {
        env.write(
            file,
            format!(
                "version: 1\nstore: ./store\nmodels:\n  {name}:\n    source: ./src/m.safetensors\n    sha256: {sha}\n    type: loras\n    tags: [linked]\napps:\n  comfyui:\n    preset: comfyui\n    root: ./{file}-app\n    models: [{selects}]\n"
            ),
        );
    };
    manifest("a.yaml", "old", "linked");
    // b.yaml declares the model but its app selects nothing: no link protects it.
    manifest("b.yaml", "old", "");
    env.mlib(&["apply", "--auto-approve", "-f", "a.yaml"])
        .success();
    env.mlib(&["apply", "--auto-approve", "-f", "b.yaml"])
        .success();
    let old = env.path("store/loras/unknown/old/m.safetensors");
    let inode = ino(&old);

    manifest("a.yaml", "new", "linked");
    env.mlib(&["plan", "-f", "a.yaml"])
        .success()
        .stderr_has("+ add      new from ./src/m.safetensors");
    env.mlib(&["apply", "--auto-approve", "-f", "a.yaml"])
        .success();
    assert_eq!(ino(&old), inode, "b.yaml's model stays where it is");
}

#[test]
fn a_rename_killed_before_the_folder_moved_finishes_on_the_next_apply() {
    // What a kill between metadata.json's rewrite and the folder's rename leaves: the old
    // folder, its metadata already naming the new model.
    let env = TestEnv::new();
    let sha = env.model_file("src/m.safetensors", "m", 4096);
    let body = format!("    source: ./src/m.safetensors\n    sha256: {sha}\n    type: loras\n");
    one_model(&env, "a", &body);
    env.mlib(&["apply", "--auto-approve"]).success();
    let inode = ino(&env.path("store/loras/unknown/a/m.safetensors"));
    let meta = env.path("store/loras/unknown/a/metadata.json");
    let text = std::fs::read_to_string(&meta).unwrap();
    std::fs::remove_file(&meta).unwrap();
    std::fs::write(&meta, text.replace("\"name\": \"a\"", "\"name\": \"b\"")).unwrap();

    one_model(&env, "b", &body);
    env.mlib(&["apply", "--auto-approve"])
        .success()
        .stderr_has("~ rename");
    assert_eq!(ino(&env.path("store/loras/unknown/b/m.safetensors")), inode);
    assert!(!env.path("store/loras/unknown/a").exists());
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn a_missing_local_source_is_a_plan_error_naming_the_model_and_path() {
    let env = TestEnv::new();
    one_model(
        &env,
        "ghost",
        "    source: ./src/ghost.safetensors\n    type: loras\n",
    );
    let plan = env.mlib(&["plan"]);
    crate::assert_run!(env, "plan_missing_source", plan);
    plan.code(1)
        .stderr_has("model `ghost`: its source")
        .stderr_has("src/ghost.safetensors does not exist");
    assert!(!plan.stderr.contains("unknown size"), "{plan}");
    env.mlib(&["apply", "--auto-approve"])
        .code(1)
        .stderr_has("model `ghost`");
}

#[test]
fn lock_reports_every_broken_source() {
    let env = TestEnv::new();
    let server = TestServer::start();
    let zeros = "0".repeat(64);
    env.manifest(&format!(
        "version: 1\nstore: ./store\nmodels:\n  one:\n    source: {url}/files/one.safetensors\n    sha256: {zeros}\n    type: loras\n  two:\n    source: {url}/files/two.safetensors\n    sha256: {zeros}\n    type: loras\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n",
        url = server.url()
    ));
    remote(&env, &server, &["lock"])
        .code(1)
        .stderr_has("cannot resolve 2 models")
        .stderr_has("cannot resolve model `one`")
        .stderr_has("cannot resolve model `two`");
}

#[test]
fn a_failed_download_is_never_reported_done() {
    let env = TestEnv::new();
    let server = TestServer::start();
    let url = server.add(
        "/files/bad.safetensors",
        Blob::new(model_bytes("bad", 5000)),
    );
    let wrong = sha256(b"something else");
    one_model(
        &env,
        "bad",
        &format!("    source: {url}\n    sha256: {wrong}\n    type: loras\n"),
    );
    let run = remote(&env, &server, &["apply", "--auto-approve"]);
    run.code(1).stderr_has("  bad: failed");
    assert!(!run.stderr.contains(": done,"), "{run}");
}

#[test]
fn offline_names_a_civitai_model_by_its_model_and_version_id() {
    let env = TestEnv::new();
    let server = TestServer::start();
    one_model(
        &env,
        "lora",
        "    source: civitai:122359@135867\n    type: loras\n",
    );
    remote(&env, &server, &["plan", "--offline"])
        .code(1)
        .stderr_has(
            "Civitai model 122359, version 135867 (civitai:122359@135867) is not in the lock",
        );
    assert!(server.requests().is_empty());

    // Locked but not stored: what to download, in Civitai's terms.
    server.civitai_version(CivitaiVersion::new(122359, 135867).file(
        7,
        "lora.safetensors",
        model_bytes("l", 3000),
    ));
    remote(&env, &server, &["lock"]).success();
    server.clear_requests();
    remote(&env, &server, &["apply", "--auto-approve", "--offline"])
        .code(1)
        .stderr_has(
            "the file lora.safetensors of Civitai model version 135867 is not in the store",
        );
    assert!(server.requests().is_empty());
}
