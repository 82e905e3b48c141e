//! Traces (`-vv`, `-vvv`, `RUST_LOG`): off by default, on stderr only, explaining mlib's
//! decisions, and never showing a token or a `${VAR}` value.

use mlib_testserver::{Blob, Credential, Faults, TestServer};

use crate::support::{Run, TestEnv, model_bytes, sha256};

const HF_TOKEN: &str = "hf_TRACE_SECRET_0123456789";
const FILES_TOKEN: &str = "files-TRACE-SECRET-9876";

fn run(env: &TestEnv, server: &TestServer, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut cmd = env.command();
    cmd.args(args)
        .env("HF_ENDPOINT", server.url())
        .env("HF_TOKEN", HF_TOKEN)
        .env("FILES_TOKEN", FILES_TOKEN);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    Run::from(cmd.output().unwrap())
}

#[track_caller]
fn assert_no_secret(run: &Run) {
    for secret in [HF_TOKEN, FILES_TOKEN] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "{secret} leaked\n{run}"
        );
    }
}

#[test]
fn the_most_verbose_traces_of_retried_requests_show_no_token() {
    let (env, server) = (TestEnv::new(), TestServer::start());
    let gated = model_bytes("gated", 20_000);
    server
        .hf_repo("org/gated")
        .lfs("g.safetensors", gated.clone())
        .gated(HF_TOKEN)
        .publish();
    let bytes = model_bytes("up", 30_000);
    let path = "/files/up.pth";
    // `dl` is not a parameter name that looks like a credential: only the variable's value
    // tells it is one, and the server's 503s echo the URL into the retry reasons.
    let url = server.add(
        path,
        Blob::new(bytes.clone()).require(Credential::Query {
            name: "dl".into(),
            value: FILES_TOKEN.into(),
        }),
    );
    env.manifest(&format!(
        "version: 1\nstore: ./store\nmodels:\n  g:\n    source: hf://org/gated/g.safetensors\n    type: loras\n  up:\n    source: {url}?dl=${{FILES_TOKEN}}\n    sha256: {}\n    type: upscale_models\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n",
        sha256(&bytes)
    ));
    let failing = || Faults {
        fail_first: 2,
        retry_after: Some(0),
        ..Faults::default()
    };

    // Resolving retries (HEAD)...
    server.set_faults(path, failing());
    let lock = run(&env, &server, &["lock", "-vvv"], &[]);
    lock.success();
    assert_no_secret(&lock);
    for trace in ["resolving", "retrying", "HTTP 503", "resolved"] {
        lock.stderr_has(trace);
    }
    // ...and downloading retries (GET), after the lock said what to fetch.
    server.set_faults(path, failing());
    let apply = run(&env, &server, &["apply", "--auto-approve", "-vvv"], &[]);
    apply.success();
    assert_no_secret(&apply);
    for trace in [
        "from the lock",
        "state folder",
        "manifest read by the block-style reader",
        "downloading",
        "retrying",
    ] {
        apply.stderr_has(trace);
    }
    assert!(
        server
            .requests()
            .iter()
            .any(|q| q.path.contains(FILES_TOKEN)),
        "the value was sent: {:#?}",
        server.requests()
    );
    assert_eq!(
        std::fs::read(env.path("ComfyUI/models/loras/g.safetensors")).unwrap(),
        gated
    );
}

#[test]
fn traces_are_off_by_default_and_never_on_stdout() {
    let (env, server) = (TestEnv::new(), TestServer::start());
    let sha = env.model_file("src/a.safetensors", "a", 4096);
    env.manifest(&format!(
        "version: 1\nstore: ./store\nmodels:\n  a:\n    source: ./src/a.safetensors\n    sha256: {sha}\n    type: loras\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n"
    ));
    let quiet = run(&env, &server, &["apply", "--auto-approve", "-v"], &[]);
    quiet.success();
    assert!(
        !quiet.stderr.contains("DEBUG"),
        "-v does not trace\n{quiet}"
    );

    let json = run(&env, &server, &["plan", "--json", "-vvv"], &[]);
    json.success();
    json.events(); // every stdout line is a JSON event
    json.stderr_has("DEBUG")
        .stderr_has("manifest read by the block-style reader");

    // RUST_LOG chooses instead of -v: here only the manifest crate, without any -v.
    let only = run(
        &env,
        &server,
        &["plan"],
        &[("RUST_LOG", "mlib_manifest=debug")],
    );
    only.success()
        .stderr_has("manifest read by the block-style reader");
    assert!(!only.stderr.contains("state folder"), "{only}");
}

#[test]
fn a_thrown_away_early_read_says_why() {
    let env = TestEnv::new();
    let sha = env.model_file("src/a.safetensors", "a", 4096);
    // The early read guesses the state folder from `store:` alone; `state:` moves it.
    env.manifest(&format!(
        "version: 1\nstore: ./store\nstate: ./state\nmodels:\n  a:\n    source: ./src/a.safetensors\n    sha256: {sha}\n    type: loras\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n"
    ));
    env.mlib(&["apply", "--auto-approve"]).success();
    // A registry at the guessed place too (another manifest's, on the same store), so the
    // early read happens, and is of the wrong registry.
    env.write(
        "other.yaml",
        "version: 1\nstore: ./store\nmodels: {}\napps: {}\n",
    );
    env.mlib(&["-f", "other.yaml", "apply", "--auto-approve"])
        .success();
    assert!(env.path("store/.mlib/registry.db").exists());
    env.mlib(&["plan", "-vv"])
        .success()
        .stderr_has("the early read was of another store or state folder: thrown away");
}
