//! A first apply big enough to be spread over the cores (hundreds of models, each linked
//! into two apps): every model stored, every link made and recorded, reported in the
//! plan's order.

use crate::support::{Manifest, TestEnv};

/// Models in [`many_models`]: links of a first apply are made on several threads from 512 on.
const MODELS: usize = 600;

/// `MODELS` local models, LoRAs and checkpoints in turn, linked into ComfyUI and Forge.
fn many_models(env: &TestEnv) -> Manifest {
    let mut manifest = Manifest::new();
    for i in 0..MODELS {
        let kind = if i.is_multiple_of(2) {
            "loras"
        } else {
            "checkpoints"
        };
        manifest = manifest.local(env, &format!("m{i:04}"), kind, 64);
    }
    manifest.comfyui("").app("forge", "forge", "./forge", "")
}

/// Where model `i` is linked in each app.
fn links_of(i: usize) -> [String; 2] {
    let (comfy, forge) = if i.is_multiple_of(2) {
        ("loras", "Lora")
    } else {
        ("checkpoints", "Stable-diffusion")
    };
    [
        format!("ComfyUI/models/{comfy}/m{i:04}.safetensors"),
        format!("forge/models/{forge}/m{i:04}.safetensors"),
    ]
}

#[test]
fn a_big_first_apply_makes_and_records_every_link_in_the_plans_order() {
    let env = TestEnv::new();
    many_models(&env).write(&env);
    let run = env.mlib(&["apply", "--auto-approve", "-v"]);
    run.success();
    for i in 0..MODELS {
        let source = std::fs::read(env.path(&format!("src/m{i:04}.safetensors"))).unwrap();
        for link in links_of(i) {
            let path = env.path(&link);
            assert!(path.symlink_metadata().unwrap().is_symlink(), "{link}");
            assert_eq!(std::fs::read(&path).unwrap(), source, "{link}");
        }
    }
    // Reported as made in the plan's order (the plan's list, then the apply's), whichever
    // thread made each link.
    let linked: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.contains("+ link") && line.contains("comfyui"))
        .collect();
    assert_eq!(linked.len(), 2 * MODELS, "{}", run.stderr);
    let (planned, made) = linked.split_at(MODELS);
    let first_difference = planned.iter().zip(made).find(|(p, m)| p != m);
    assert_eq!(first_difference, None, "reported out of the plan's order");
    // Every link recorded: nothing left to do.
    env.mlib(&["plan", "--detailed-exitcode"]).success();
}
