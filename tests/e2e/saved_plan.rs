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

    env.mlib(&["apply", "plan.json"])
        .code(1)
        .stderr_has("Saved plan is stale");
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
