//! Environments own links: one template manifest applied for many users, named
//! environments, edits of a root, and what `mlib env list` shows.

use crate::support::{Run, TestEnv};

/// A workshop manifest: one store, one ComfyUI per user, the user from `WS_USER`.
fn template(env: &TestEnv) {
    env.model_file("src/base.safetensors", "base", 4096);
    env.model_file("src/detail.safetensors", "detail", 2048);
    env.manifest(
        "version: 1\nstore: ./store\nmodels:\n  base:\n    source: ./src/base.safetensors\n    type: checkpoints\n  detail:\n    source: ./src/detail.safetensors\n    type: loras\napps:\n  comfyui:\n    preset: comfyui\n    root: ./users/${WS_USER}/ComfyUI\n",
    );
}

fn as_user(env: &TestEnv, user: &str, args: &[&str]) -> Run {
    Run::from(
        env.command()
            .env("WS_USER", user)
            .args(args)
            .output()
            .unwrap(),
    )
}

fn users() -> Vec<String> {
    (1..=20).map(|i| format!("u{i:02}")).collect()
}

#[test]
fn a_template_applied_for_twenty_users_leaves_every_user_their_links() {
    let env = TestEnv::new();
    template(&env);
    for user in users() {
        as_user(&env, &user, &["apply", "--auto-approve"]).success();
    }
    for user in users() {
        for link in [
            "models/checkpoints/base.safetensors",
            "models/loras/detail.safetensors",
        ] {
            let path = env.path(&format!("users/{user}/ComfyUI/{link}"));
            assert!(path.exists(), "{} was unlinked", path.display());
        }
        as_user(&env, &user, &["plan", "--detailed-exitcode"])
            .success()
            .stderr_has("No changes. Store and apps match models.yaml.");
    }

    // Dropping a model for one user touches nobody else.
    let yaml = std::fs::read_to_string(env.path("models.yaml")).unwrap();
    env.write(
        "models.yaml",
        yaml.replace(
            "  detail:\n    source: ./src/detail.safetensors\n    type: loras\n",
            "",
        ),
    );
    as_user(&env, "u03", &["apply", "--auto-approve"])
        .success()
        .stderr_has("Apply complete: 1 change made.");
    assert!(
        !env.path("users/u03/ComfyUI/models/loras/detail.safetensors")
            .exists()
    );
    assert!(
        env.path("users/u04/ComfyUI/models/loras/detail.safetensors")
            .exists()
    );

    let list = as_user(&env, "u03", &["env", "list", "--json"]);
    list.success();
    let envs: Vec<_> = list
        .events()
        .into_iter()
        .filter(|e| e["type"] == "environment")
        .collect();
    assert_eq!(envs.len(), 20);
    let current: Vec<_> = envs.iter().filter(|e| e["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["links"], 1);
    assert!(
        current[0]["apps"]["comfyui"]
            .as_str()
            .unwrap()
            .ends_with("users/u03/ComfyUI")
    );
    assert_eq!(envs.iter().filter(|e| e["links"] == 2).count(), 19);
    assert!(envs.iter().all(|e| e["applied_at"].is_string()));
}

#[test]
fn env_list_names_each_environment_its_apps_and_links() {
    let env = TestEnv::new();
    template(&env);
    as_user(&env, "ann", &["env", "list"])
        .success()
        .stderr_has("No environment has been applied to the store");
    as_user(&env, "ann", &["apply", "--auto-approve"]).success();
    as_user(&env, "bob", &["apply", "--auto-approve"]).success();
    let run = as_user(&env, "bob", &["env", "list"]);
    run.success()
        .stderr_has(&format!(
            "  {} (WS_USER=ann)  2 links, last applied ",
            env.path("models.yaml").display()
        ))
        .stderr_has(&format!(
            "* {} (WS_USER=bob)  2 links, last applied ",
            env.path("models.yaml").display()
        ))
        .stderr_has(&format!(
            "    comfyui: {}",
            env.path("users/ann/ComfyUI").display()
        ))
        .stderr_has("* this manifest's environment");
}

#[test]
fn a_named_environment_owns_its_links_wherever_its_manifest_is() {
    let env = TestEnv::new();
    env.model_file("src/base.safetensors", "base", 4096);
    let yaml = format!(
        "version: 1\nenvironment: studio\nstore: {root}/store\nmodels:\n  base:\n    source: {root}/src/base.safetensors\n    type: checkpoints\napps:\n  comfyui:\n    preset: comfyui\n    root: {root}/ComfyUI\n",
        root = env.root.display()
    );
    env.write("a/models.yaml", &yaml);
    env.mlib(&["apply", "--auto-approve", "-f", "a/models.yaml"])
        .success();
    // The same environment, applied from a copy of its manifest elsewhere.
    env.write("b/models.yaml", &yaml);
    env.mlib(&["plan", "--detailed-exitcode", "-f", "b/models.yaml"])
        .success()
        .stderr_has("No changes.");
    // Another environment wants the same path: refused, naming the owner.
    env.mlib(&[
        "plan",
        "--detailed-exitcode",
        "-f",
        "b/models.yaml",
        "--env",
        "other",
    ])
    .code(2)
    .stderr_has(
        "comfyui: models/checkpoints/base.safetensors: already linked by another environment (environment `studio`)",
    );
}

#[test]
fn editing_a_root_moves_the_environments_links() {
    let env = TestEnv::new();
    template(&env);
    as_user(&env, "ann", &["apply", "--auto-approve"]).success();
    let yaml = std::fs::read_to_string(env.path("models.yaml")).unwrap();
    env.write(
        "models.yaml",
        yaml.replace("./users/${WS_USER}/ComfyUI", "./users/${WS_USER}/comfy"),
    );
    as_user(&env, "ann", &["apply", "--auto-approve"])
        .success()
        // The old place is outside the app's new root: shown in full.
        .stderr_has("~ relink   detail comfyui: ")
        .stderr_has(
            "users/ann/ComfyUI/models/loras/detail.safetensors → models/loras/detail.safetensors",
        )
        .stderr_has("Apply complete: 2 changes made.");
    assert!(
        !env.path("users/ann/ComfyUI/models/loras/detail.safetensors")
            .exists()
    );
    assert!(
        env.path("users/ann/comfy/models/loras/detail.safetensors")
            .exists()
    );
    let list = as_user(&env, "ann", &["env", "list", "--json"]);
    assert_eq!(
        list.events()
            .iter()
            .filter(|e| e["type"] == "environment")
            .count(),
        1
    );
}

#[test]
fn a_saved_plan_is_refused_for_another_environment() {
    let env = TestEnv::new();
    template(&env);
    as_user(&env, "ann", &["plan", "-o", "plan.json"]).success();
    as_user(&env, "bob", &["apply", "plan.json"])
        .code(1)
        .stderr_has("Saved plan is stale: it was made for another environment of this manifest");
    as_user(&env, "ann", &["apply", "plan.json"]).success();
}
