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

// `plan -o FILE` replaces FILE only when nothing is lost: a new file, an older plan, or
// (with --force) another regular file.

const ELSEWHERE: &str = "Save the plan to another file, e.g. `mlib plan -o plan.json`.";

/// Names in the test's root folder: a refused or finished save leaves no temporary file.
fn names(env: &TestEnv) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(&env.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn plan_never_saves_over_the_manifest() {
    let env = TestEnv::new();
    two_models(&env);
    let manifest = std::fs::read(env.path("models.yaml")).unwrap();
    std::fs::create_dir(env.path("sub")).unwrap();
    std::os::unix::fs::symlink("models.yaml", env.path("link.yaml")).unwrap();
    let before = names(&env);
    let expected = format!(
        "it is the manifest ({}), which the plan would replace. {ELSEWHERE}",
        env.path("models.yaml").display()
    );
    for out in ["models.yaml", "./sub/../models.yaml", "link.yaml"] {
        env.mlib(&["plan", "-o", out])
            .code(1)
            .stderr_line(&format!("error: cannot save the plan to {out}: {expected}"));
        env.mlib(&["plan", "--force", "-o", out]).code(1);
    }
    // The manifest named through a symlink (-f) is the same manifest.
    env.mlib(&["plan", "-f", "link.yaml", "-o", "models.yaml"])
        .code(1)
        .stderr_has("error: cannot save the plan to models.yaml: it is the manifest");
    assert_eq!(std::fs::read(env.path("models.yaml")).unwrap(), manifest);
    assert!(
        env.path("link.yaml")
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(names(&env), before);
}

#[test]
fn plan_never_saves_over_the_lock_file() {
    let env = TestEnv::new();
    let (base, _) = two_models(&env);
    env.write(
        "models.lock",
        "# This file is generated by mlib. Do not edit.\nversion = 1\n",
    );
    env.write("small.yaml", manifest_yaml(&base, false, ""));
    let before = names(&env);

    env.mlib(&["plan", "--force", "-o", "models.lock"])
        .code(1)
        .stderr_line(&format!(
            "error: cannot save the plan to models.lock: it is the manifest's lock file ({}), \
             not a place for a plan. {ELSEWHERE}",
            env.path("models.lock").display()
        ));
    assert_eq!(
        std::fs::read_to_string(env.path("models.lock")).unwrap(),
        "# This file is generated by mlib. Do not edit.\nversion = 1\n"
    );
    // small.yaml's lock is small.lock, refused even before it exists.
    env.mlib(&["plan", "-f", "small.yaml", "-o", "small.lock"])
        .code(1)
        .stderr_line(&format!(
            "error: cannot save the plan to small.lock: it is the manifest's lock file ({}), \
             not a place for a plan. {ELSEWHERE}",
            env.path("small.lock").display()
        ));
    assert_eq!(names(&env), before, "small.lock was not created");
}

#[test]
fn plan_never_saves_through_a_symlink_even_to_a_plan() {
    let env = TestEnv::new();
    two_models(&env);
    env.mlib(&["plan", "-o", "plan.json"]).success();
    let plan = std::fs::read(env.path("plan.json")).unwrap();
    std::os::unix::fs::symlink("plan.json", env.path("link.json")).unwrap();
    std::os::unix::fs::symlink("missing.json", env.path("dangling.json")).unwrap();
    let before = names(&env);

    for force in [false, true] {
        let mut args = vec!["plan", "-o", "link.json"];
        if force {
            args.push("--force");
        }
        env.mlib(&args).code(1).stderr_line(
            "error: cannot save the plan to link.json: it is a symbolic link (to plan.json), and \
             a plan is saved only as a regular file, never through a link. Remove the link or \
             save the plan to another file.",
        );
    }
    env.mlib(&["plan", "-o", "dangling.json"]).code(1).stderr_line(
        "error: cannot save the plan to dangling.json: it is a symbolic link (to missing.json), \
         and a plan is saved only as a regular file, never through a link. Remove the link or \
         save the plan to another file.",
    );
    assert_eq!(std::fs::read(env.path("plan.json")).unwrap(), plan);
    assert!(!env.path("missing.json").exists());
    assert_eq!(names(&env), before);
}

#[test]
fn plan_never_saves_over_a_fifo_or_a_directory() {
    let env = TestEnv::new();
    two_models(&env);
    let made = std::process::Command::new("mkfifo")
        .arg(env.path("fifo"))
        .status()
        .expect("run mkfifo");
    assert!(made.success());
    std::fs::create_dir(env.path("plans")).unwrap();
    let before = names(&env);

    env.mlib(&["plan", "--force", "-o", "fifo"])
        .code(1)
        .stderr_line(&format!(
            "error: cannot save the plan to fifo: it is a FIFO (named pipe), not a regular file. \
             {ELSEWHERE}"
        ));
    assert!(
        std::os::unix::fs::FileTypeExt::is_fifo(
            &env.path("fifo").symlink_metadata().unwrap().file_type()
        ),
        "the FIFO is still there"
    );
    env.mlib(&["plan", "-o", "plans"]).code(1).stderr_line(
        "error: cannot save the plan to plans: it is a directory. Save the plan to a file in it, \
         e.g. `mlib plan -o plans/plan.json`.",
    );
    assert_eq!(names(&env), before);
    assert!(
        std::fs::read_dir(env.path("plans"))
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn a_file_that_is_not_a_plan_is_replaced_only_with_force() {
    let env = TestEnv::new();
    two_models(&env);
    env.write("notes.txt", "my notes\n");
    env.write("config.json", "{\"theme\": \"dark\"}\n");

    env.mlib(&["plan", "-o", "notes.txt"]).code(1).stderr_line(
        "error: cannot save the plan to notes.txt: it is not a plan saved by mlib (not JSON), \
         and replacing it would lose it. Save the plan to another file, or pass --force to \
         replace it.",
    );
    env.mlib(&["plan", "-o", "config.json"])
        .code(1)
        .stderr_line(
            "error: cannot save the plan to config.json: it is not a plan saved by mlib (JSON \
         without the fields of a saved plan), and replacing it would lose it. Save the plan to \
         another file, or pass --force to replace it.",
        );
    assert_eq!(
        std::fs::read_to_string(env.path("notes.txt")).unwrap(),
        "my notes\n"
    );
    assert_eq!(
        std::fs::read_to_string(env.path("config.json")).unwrap(),
        "{\"theme\": \"dark\"}\n"
    );

    env.mlib(&["plan", "--force", "-o", "notes.txt"])
        .success()
        .stderr_has("Saved the plan to notes.txt.");
    assert_eq!(read_plan(&env, "notes.txt")["format"], 2);
    // Now it is a plan: the next plan replaces it without --force, and it applies.
    env.mlib(&["plan", "-o", "notes.txt"]).success();
    env.mlib(&["apply", "notes.txt"]).success();
    assert!(
        env.path("ComfyUI/models/checkpoints/sdxl_base.safetensors")
            .exists()
    );
}

#[test]
fn an_older_plan_is_replaced_without_force() {
    let env = TestEnv::new();
    two_models(&env);
    env.mlib(&["plan", "-o", "plan.json"]).success();
    let mut old = read_plan(&env, "plan.json");
    old.as_object_mut().unwrap().remove("checksum");
    old["format"] = 1.into();
    write_plan(&env, "plan.json", &old);

    env.mlib(&["plan", "-o", "plan.json"]).success();
    let new = read_plan(&env, "plan.json");
    assert_eq!(new["format"], 2);
    assert!(new["checksum"].is_string());
    // A plan edited by hand is still a plan: replacing it is the way out.
    let mut edited = new.clone();
    edited["adopt"] = true.into();
    write_plan(&env, "plan.json", &edited);
    env.mlib(&["plan", "-o", "plan.json"]).success();
    assert_eq!(read_plan(&env, "plan.json"), new);
    assert_eq!(names(&env), ["home", "models.yaml", "plan.json", "src"][..]);
}

#[test]
fn dash_prints_the_saved_plan_on_stdout() {
    let env = TestEnv::new();
    two_models(&env);
    env.mlib(&["plan", "-o", "plan.json"]).success();
    let run = env.mlib(&["plan", "-o", "-"]);
    run.success().stderr_has("Plan: 2 to add").stderr_line(
        "Wrote the plan to stdout. Save it to a file to apply it with `mlib apply FILE`.",
    );
    let printed: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e})\n{run}"));
    assert_eq!(printed, read_plan(&env, "plan.json"));
    assert!(!env.path("-").exists(), "no file named -");

    // Saved from stdout, it applies.
    env.write("piped.json", &run.stdout);
    env.mlib(&["apply", "piped.json"]).success();
}

#[test]
fn json_and_dash_together_are_refused() {
    let env = TestEnv::new();
    two_models(&env);
    let run = env.mlib(&["--json", "plan", "-o", "-"]);
    run.code(1);
    let events = run.events();
    assert_eq!(events.len(), 2, "{run}");
    assert_eq!(events[0]["type"], "version");
    assert_eq!(events[1]["type"], "diagnostic");
    assert_eq!(events[1]["severity"], "error");
    assert_eq!(
        events[1]["message"],
        "--json and -o - would both write to stdout: save the plan to a file with -o FILE, or \
         drop --json to get only the plan's JSON on stdout"
    );
    assert!(!env.path("-").exists());
}
