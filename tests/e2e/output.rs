//! What people read, held by snapshots (exit code, stdout, stderr): the main commands on the
//! usual fixture, the machine-readable events, and one manifest error of each kind. A change
//! of wording shows up as a diff of `tests/e2e/snapshots/`.

use crate::apply::two_models;
use crate::assert_run;
use crate::support::TestEnv;

fn applied() -> TestEnv {
    let env = TestEnv::new();
    two_models(&env);
    env.mlib(&["apply", "--auto-approve"]).success();
    env
}

#[test]
fn plan_apply_and_again() {
    let env = TestEnv::new();
    two_models(&env);
    assert_run!(
        env,
        "plan_fresh",
        env.mlib(&["plan", "--detailed-exitcode"])
    );
    assert_run!(
        env,
        "apply_fresh",
        env.mlib(&["apply", "--auto-approve", "-j", "1"])
    );
    assert_run!(env, "apply_again", env.mlib(&["apply", "--auto-approve"]));
    assert_run!(
        env,
        "plan_no_changes",
        env.mlib(&["plan", "--detailed-exitcode"])
    );
}

#[test]
fn plan_with_drift_conflicts_and_unlinks() {
    let env = applied();
    std::fs::remove_file(env.path("forge/models/Lora/detail_lora.safetensors")).unwrap();
    std::fs::remove_file(env.path("ComfyUI/models/checkpoints/sdxl_base.safetensors")).unwrap();
    env.write(
        "ComfyUI/models/checkpoints/sdxl_base.safetensors",
        "a user's file",
    );
    let yaml = std::fs::read_to_string(env.path("models.yaml")).unwrap();
    let start = yaml.find("  detail:").unwrap();
    let end = yaml.find("apps:").unwrap();
    env.write("models.yaml", format!("{}{}", &yaml[..start], &yaml[end..]));
    assert_run!(env, "plan_drift_conflict_unlink", env.mlib(&["plan"]));
    assert_run!(
        env,
        "apply_with_a_conflict",
        env.mlib(&["apply", "--auto-approve"])
    );
}

#[test]
fn status() {
    let env = TestEnv::new();
    two_models(&env);
    assert_run!(env, "status_nothing_applied", env.mlib(&["status"]));
    env.mlib(&["apply", "--auto-approve"]).success();
    std::fs::remove_file(env.path("forge/models/Lora/detail_lora.safetensors")).unwrap();
    assert_run!(env, "status_one_missing", env.mlib(&["status"]));
    assert_run!(env, "status_verbose", env.mlib(&["-v", "status"]));
}

#[test]
fn json_events() {
    let env = TestEnv::new();
    two_models(&env);
    assert_run!(env, "plan_json", env.mlib(&["plan", "--json"]));
    assert_run!(
        env,
        "apply_json",
        env.mlib(&["apply", "--auto-approve", "--json", "-j", "1"])
    );
    assert_run!(env, "status_json", env.mlib(&["status", "--json"]));
}

#[test]
fn store_integrity_and_environments() {
    let env = applied();
    let stored = env.path("store/checkpoints/sdxl/base/sdxl_base.safetensors");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stored, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(&stored).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&stored, bytes).unwrap();
    assert_run!(env, "plan_store_file_changed", env.mlib(&["plan"]));
    assert_run!(env, "verify_changed", env.mlib(&["verify"]));
    assert_run!(
        env,
        "apply_quarantines",
        env.mlib(&["apply", "--auto-approve", "-j", "1"])
    );
    assert_run!(env, "verify_ok", env.mlib(&["verify"]));
    assert_run!(env, "env_list", env.mlib(&["env", "list"]));
    assert_run!(env, "scan", env.mlib(&["scan"]));
}

#[test]
fn validate() {
    let env = TestEnv::new();
    two_models(&env);
    assert_run!(env, "validate_ok", env.mlib(&["validate"]));
    assert_run!(
        env,
        "validate_no_manifest",
        env.mlib(&["validate", "-f", "none.yaml"])
    );
}

/// One manifest error of each diagnostic kind, as `mlib validate` shows it.
#[test]
fn validate_errors_one_of_each_kind() {
    let head = "version: 1\nstore: ./store\n";
    let app = "apps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n";
    let model = |body: &str| format!("{head}models:\n  m:\n{body}{app}");
    let cases: Vec<(&str, String)> = vec![
        ("syntax", "version: 1\nstore: \"./store\nmodels: {}\n".to_string()),
        ("unknown_key", format!("{head}stroe: ./x\n")),
        ("wrong_type", "version: 1\nstore: ./store\nmodels: 3\n".to_string()),
        ("missing_key", "version: 1\nmodels: {}\n".to_string()),
        (
            "duplicate_key",
            model("    source: ./a.safetensors\n    type: loras\n  m:\n    source: ./b.safetensors\n    type: loras\n"),
        ),
        ("unsupported_version", "version: 2\nstore: ./store\n".to_string()),
        (
            "bad_hash",
            model("    source: ./a.safetensors\n    sha256: abc123\n    type: loras\n"),
        ),
        ("bad_name", format!("{head}models:\n  bad/name:\n    source: ./a.safetensors\n    type: loras\n")),
        (
            "unsafe_path",
            model("    source: ./a.safetensors\n    type: loras\n    file: ../escape.safetensors\n"),
        ),
        ("unsafe_root", "version: 1\nstore: /etc\n".to_string()),
        (
            "nested_store",
            "version: 1\nstore: ./ComfyUI/models/loras\nmodels: {}\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n".to_string(),
        ),
        (
            "bad_glob",
            model("    source: hf://org/repo\n    include: [\"a[b\"]\n    type: diffusers\n"),
        ),
        ("unknown_source_scheme", model("    source: ftp://host/a.safetensors\n    type: loras\n")),
        ("bad_source", model("    source: hf://org\n    type: loras\n")),
        (
            "misplaced_field",
            model("    source: ./a.safetensors\n    revision: main\n    type: loras\n"),
        ),
        ("unknown_type", model("    source: ./a.safetensors\n    type: lorass\n")),
        (
            "unknown_selection",
            format!("{head}models:\n  m:\n    source: ./a.safetensors\n    type: loras\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n    models: [n]\n"),
        ),
        ("empty_app", format!("{head}apps:\n  tool:\n    root: ./tool\n")),
        (
            "collision",
            format!("{head}models:\n  a:\n    source: ./x/m.safetensors\n    type: loras\n  b:\n    source: ./y/m.safetensors\n    type: loras\n{app}"),
        ),
        ("unset_variable", "version: 1\nstore: ${MLIB_TEST_UNSET_VAR}/store\n".to_string()),
        ("bad_expansion", "version: 1\nstore: $HOME/store\n".to_string()),
        (
            "bad_version",
            model("    source: ./a.safetensors\n    type: loras\n    requires: { comfyui: \">=0.3.40, >>1\" }\n"),
        ),
        (
            "unknown_app",
            model("    source: ./a.safetensors\n    type: loras\n    requires: { comfy: \">=0.3.40\" }\n"),
        ),
        (
            "literal_secret",
            model("    source: https://host/a.safetensors?token=abc123\n    sha256: 0000000000000000000000000000000000000000000000000000000000000000\n    type: loras\n"),
        ),
    ];
    for (name, yaml) in cases {
        let env = TestEnv::new();
        env.write("models.yaml", &yaml);
        assert_run!(env, &format!("validate_{name}"), env.mlib(&["validate"]));
    }
    // The ones that are not about the text.
    let env = TestEnv::new();
    env.write("m.lock", "version: 1\nstore: ./store\n");
    assert_run!(
        env,
        "validate_manifest_name",
        env.mlib(&["validate", "-f", "m.lock"])
    );
    env.write("latin1.yaml", b"version: 1\nstore: ./st\xf6re\n");
    assert_run!(
        env,
        "validate_encoding",
        env.mlib(&["validate", "-f", "latin1.yaml"])
    );
    std::fs::create_dir_all(env.path("dir.yaml")).unwrap();
    assert_run!(
        env,
        "validate_io",
        env.mlib(&["validate", "-f", "dir.yaml"])
    );
    let mut big = String::from("version: 1\nstore: ./store\n");
    big.push_str(&format!("# {}\n", "x".repeat(16 << 20)));
    env.write("big.yaml", &big);
    assert_run!(
        env,
        "validate_too_large",
        env.mlib(&["validate", "-f", "big.yaml"])
    );
}
