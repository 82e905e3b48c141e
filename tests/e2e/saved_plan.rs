//! `plan -o FILE` / `apply FILE`: the file is the approval, and only for the state it saw.

use crate::apply::{manifest_yaml, two_models};
use crate::support::TestEnv;

#[test]
fn a_saved_plan_applies_without_a_terminal() {
    let env = TestEnv::new();
    two_models(&env);
    env.mlib(&["plan", "-o", "plan.json"]).success();
    env.mlib(&["apply", "plan.json"]).success();
    assert!(
        env.path("ComfyUI/models/checkpoints/sdxl_base.safetensors")
            .exists()
    );
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn a_stale_saved_plan_is_refused() {
    let env = TestEnv::new();
    let (base, _) = two_models(&env);
    env.mlib(&["plan", "-o", "plan.json"]).success();
    env.manifest(&manifest_yaml(&base, false, ""));

    env.mlib(&["apply", "plan.json"]).code(1).stderr_line(
        "error: Saved plan is stale: the manifest changed since the plan was made. Run `mlib \
         plan -o FILE` again and review it.",
    );
    assert!(
        !env.path("ComfyUI").exists(),
        "a refused plan changes nothing"
    );
}

#[test]
fn a_saved_plan_is_refused_after_the_registry_changed() {
    let env = TestEnv::new();
    two_models(&env);
    env.mlib(&["apply", "--auto-approve"]).success();
    std::fs::remove_file(env.path("ComfyUI/models/checkpoints/sdxl_base.safetensors")).unwrap();
    env.mlib(&["plan", "-o", "plan.json"]).success();
    // Someone else applies in between.
    env.mlib(&["apply", "--auto-approve"]).success();
    env.mlib(&["apply", "plan.json"])
        .code(1)
        .stderr_has("Saved plan is stale");
}

/// The saved plan at `path`, as JSON.
fn read_plan(env: &TestEnv, path: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(env.path(path)).unwrap()).unwrap()
}

fn write_plan(env: &TestEnv, path: &str, plan: &serde_json::Value) {
    env.write(path, serde_json::to_string_pretty(plan).unwrap());
}

#[test]
fn a_saved_plan_edited_by_hand_is_refused_as_modified() {
    let env = TestEnv::new();
    two_models(&env);
    env.mlib(&["plan", "-o", "plan.json"]).success();
    let mut plan = read_plan(&env, "plan.json");
    let link = plan["actions"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|a| a["action"] == "link")
        .expect("the plan links something");
    // Send the checkpoint somewhere else, as a hand edit would.
    link["target"] = env
        .path("elsewhere/sdxl_base.safetensors")
        .display()
        .to_string()
        .into();
    write_plan(&env, "plan.json", &plan);

    env.mlib(&["apply", "plan.json"]).code(1).stderr_line(
        "error: plan.json was modified after `mlib plan` saved it (checksum mismatch): make a \
         new plan with `mlib plan -o FILE`",
    );
    assert!(!env.path("elsewhere").exists());
    assert!(!env.path("ComfyUI").exists(), "nothing was applied");
    assert!(
        !env.path("store/checkpoints").exists(),
        "nothing was stored"
    );
}

#[test]
fn a_saved_plan_re_indented_still_applies() {
    let env = TestEnv::new();
    two_models(&env);
    env.mlib(&["plan", "-o", "plan.json"]).success();
    let plan = read_plan(&env, "plan.json");
    env.write("plan.json", serde_json::to_string(&plan).unwrap());
    env.mlib(&["apply", "plan.json"]).success();
    assert!(
        env.path("ComfyUI/models/checkpoints/sdxl_base.safetensors")
            .exists()
    );
}

#[test]
fn a_plan_of_an_older_format_is_refused() {
    let env = TestEnv::new();
    two_models(&env);
    env.mlib(&["plan", "-o", "plan.json"]).success();
    // What mlib wrote before plans carried a checksum.
    let mut plan = read_plan(&env, "plan.json");
    plan.as_object_mut().unwrap().remove("checksum");
    plan["format"] = 1.into();
    write_plan(&env, "plan.json", &plan);

    env.mlib(&["apply", "plan.json"]).code(1).stderr_line(
        "error: plan.json is not a usable plan file: format 1 is not supported (this mlib \
         writes 2): make a new plan with `mlib plan -o FILE`",
    );
    assert!(!env.path("ComfyUI").exists());
}
