//! `mlib validate` and bad manifests: every error has file:line:column and nothing is written.

use crate::support::{TestEnv, tree};

#[test]
fn a_bad_hash_is_reported_with_line_and_column() {
    let env = TestEnv::new();
    env.manifest(
        "version: 1\nstore: ./store\nmodels:\n  base:\n    source: ./base.safetensors\n    sha256: abc123\n    type: checkpoints\napps: {}\n",
    );
    let run = env.mlib(&["validate"]);
    run.code(1)
        .stderr_has("models.yaml:6:13")
        .stderr_has("sha256");
    // plan and apply refuse the same manifest, and write nothing.
    let before = tree(&env.root);
    env.mlib(&["plan"]).code(1).stderr_has("models.yaml:6:13");
    env.mlib(&["apply", "--auto-approve"]).code(1);
    assert_eq!(tree(&env.root), before);
}

#[test]
fn every_error_is_listed_not_just_the_first() {
    let env = TestEnv::new();
    env.manifest(
        "version: 1\nstore: ./store\nmodels:\n  a:\n    source: ./a.safetensors\n    type: loras\n    blake3: xyz\n  ../evil:\n    source: ./b.safetensors\n    type: loras\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n    models: [nope]\n",
    );
    let run = env.mlib(&["validate"]);
    run.code(1)
        .stderr_has("models.yaml:7:")
        .stderr_has("models.yaml:8:")
        .stderr_has("models.yaml:15:");
}

#[test]
fn an_unknown_key_is_an_error_with_its_location() {
    let env = TestEnv::new();
    env.manifest("version: 1\nstore: ./store\nmodles: {}\n");
    env.mlib(&["validate"])
        .code(1)
        .stderr_has("models.yaml:3:1")
        .stderr_has("modles");
}

#[test]
fn an_unset_variable_is_named() {
    let env = TestEnv::new();
    env.manifest("version: 1\nstore: ${MLIB_TEST_UNSET_VAR}/store\nmodels: {}\napps: {}\n");
    env.mlib(&["validate"])
        .code(1)
        .stderr_has("MLIB_TEST_UNSET_VAR");
}

#[test]
fn validate_json_reports_diagnostics_as_events() {
    let env = TestEnv::new();
    env.manifest("version: 1\nstore: ./store\nmodels:\n  a:\n    source: ./a\n    type: loras\n    sha256: nothex\napps: {}\n");
    let run = env.mlib(&["validate", "--json"]);
    run.code(1);
    let events = run.events();
    assert_eq!(events[0]["type"], "version");
    let diag = events
        .iter()
        .find(|e| e["type"] == "diagnostic")
        .expect("a diagnostic event");
    assert_eq!(diag["line"], 7);
}

#[test]
fn the_bundled_examples_are_valid() {
    let env = TestEnv::new();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in ["models.yaml.example", "examples/quickstart/models.yaml"] {
        let mut cmd = env.command();
        cmd.args(["validate", "-f"]).arg(repo.join(file));
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
