//! Each manifest has its own lock file next to it (`NAME.lock`), so several manifests can share
//! a folder (and a store) without overwriting each other's pins.

use mlib_testserver::TestServer;

use crate::support::{Run, TestEnv, model_bytes};

fn mlib(env: &TestEnv, server: &TestServer, args: &[&str]) -> Run {
    let mut cmd = env.command();
    cmd.args(args)
        .env("HF_ENDPOINT", server.url())
        .env("HF_HUB_CACHE", env.path("hf-cache"));
    Run::from(cmd.output().unwrap())
}

fn manifest(model: &str) -> String {
    format!(
        "version: 1\nstore: ./store\nmodels:\n  {model}:\n    source: hf://org/{model}/{model}.safetensors\n    type: loras\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n"
    )
}

#[test]
fn two_manifests_in_one_folder_keep_their_own_locks() {
    let (env, server) = (TestEnv::new(), TestServer::start());
    for model in ["big", "small"] {
        server
            .hf_repo(&format!("org/{model}"))
            .lfs(&format!("{model}.safetensors"), model_bytes(model, 2000))
            .publish();
    }
    env.write("models.yaml", manifest("big"));
    env.write("small.yaml", manifest("small"));

    mlib(&env, &server, &["lock", "-f", "small.yaml"]).success();
    mlib(
        &env,
        &server,
        &["apply", "--auto-approve", "-f", "small.yaml"],
    )
    .success();
    assert!(
        !env.path("models.lock").exists(),
        "-f small.yaml never touches models.lock"
    );
    let small_lock = std::fs::read_to_string(env.path("small.lock")).unwrap();
    assert!(small_lock.contains("[models.small]"), "{small_lock}");
    assert!(!small_lock.contains("big"), "{small_lock}");

    mlib(&env, &server, &["apply", "--auto-approve"]).success();
    let models_lock = std::fs::read_to_string(env.path("models.lock")).unwrap();
    assert!(models_lock.contains("[models.big]"), "{models_lock}");
    assert!(!models_lock.contains("small"), "{models_lock}");
    assert_eq!(
        std::fs::read_to_string(env.path("small.lock")).unwrap(),
        small_lock,
        "applying models.yaml leaves small.lock alone"
    );

    // Each lock covers its own manifest: --locked needs no request for either.
    server.clear_requests();
    mlib(
        &env,
        &server,
        &["apply", "--auto-approve", "--locked", "-f", "small.yaml"],
    )
    .success();
    mlib(&env, &server, &["apply", "--auto-approve", "--locked"]).success();
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
    for model in ["big", "small"] {
        let link = env.path(&format!("ComfyUI/models/loras/{model}.safetensors"));
        assert!(link.exists(), "{model}");
    }
}

#[test]
fn a_lock_not_covering_its_manifest_is_named_in_the_locked_error() {
    let (env, server) = (TestEnv::new(), TestServer::start());
    server
        .hf_repo("org/small")
        .lfs("small.safetensors", model_bytes("small", 2000))
        .publish();
    env.write("small.yaml", manifest("small"));
    mlib(
        &env,
        &server,
        &["apply", "--auto-approve", "--locked", "-f", "small.yaml"],
    )
    .code(1)
    .stderr_has("--locked: small.lock does not cover the manifest: small (not in the lock)")
    .stderr_has("Run `mlib lock` and commit small.lock.");
}

#[test]
fn a_manifest_named_like_a_lock_file_is_refused() {
    let env = TestEnv::new();
    env.write("extra.lock", "version: 1\nstore: ./store\n");
    env.mlib(&["validate", "-f", "extra.lock"])
        .code(1)
        .stderr_line(
            "× extra.lock:1:1: the manifest `extra.lock` ends in `.lock`, so its lock file would \
             be the manifest itself",
        )
        .stderr_has("help: rename it, e.g. to `models.yaml`");
}

#[test]
fn lock_check_says_offline_whether_the_lock_covers_the_manifest() {
    let (env, server) = (TestEnv::new(), TestServer::start());
    server
        .hf_repo("org/big")
        .lfs("big.safetensors", model_bytes("big", 2000))
        .publish();
    env.write("models.yaml", manifest("big"));
    crate::assert_run!(
        env,
        "lock_check_missing",
        mlib(&env, &server, &["lock", "--check"])
    );
    mlib(&env, &server, &["lock"]).success();
    server.clear_requests();
    crate::assert_run!(
        env,
        "lock_check_covered",
        mlib(&env, &server, &["lock", "--check"])
    );
    env.write(
        "models.yaml",
        manifest("big").replace("type: loras", "revision: v2\n    type: loras"),
    );
    mlib(&env, &server, &["lock", "--check"])
        .code(1)
        .stderr_has("big: stale: revision changed from (default) to v2");
    assert!(
        server.requests().is_empty(),
        "--check never asks the network"
    );
    // An entry the manifest no longer has: the lock is stale too.
    env.write(
        "models.yaml",
        "version: 1\nstore: ./store\nmodels: {}\napps: {}\n",
    );
    mlib(&env, &server, &["lock", "--check"])
        .code(1)
        .stderr_has("big: in the lock, but not a remote model of the manifest");
}
