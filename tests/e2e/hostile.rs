//! Manifests that are too large, or hold lines too long to show: refused or shown with bounds.

use crate::support::TestEnv;

#[test]
fn a_manifest_over_16_mib_is_refused_with_its_size_and_the_limit() {
    let env = TestEnv::new();
    let mut text = String::from("version: 1\nstore: ./store\n");
    text.push_str(&format!("# {}\n", "x".repeat(16 << 20)));
    env.write("big.yaml", &text);
    let run = env.mlib(&["validate", "-f", "big.yaml"]);
    run.code(1).stderr_line(&format!(
        "× big.yaml: the manifest is 16.0 MiB ({} bytes); the limit is 16 MiB",
        text.len()
    ));
}

#[test]
fn a_device_that_never_ends_is_read_only_up_to_the_limit() {
    let env = TestEnv::new();
    let run = env.mlib(&["validate", "-f", "/dev/zero"]);
    run.code(1).stderr_line(
        "× /dev/zero: the manifest is larger than the 16 MiB limit (reading stopped there)",
    );
}

/// Stderr's longest line, in characters.
fn widest(stderr: &str) -> usize {
    stderr.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

#[test]
fn an_error_on_a_10_mb_line_shows_a_snippet_one_screen_wide() {
    let env = TestEnv::new();
    let value = "a".repeat(10_000_000);
    env.write(
        "long.yaml",
        format!("version: 1\nstore: {value}\nmodels: {{}}\n"),
    );
    let run = env.mlib(&["validate", "-f", "long.yaml"]);
    run.code(1)
        .stderr_line(
            "× long.yaml:2:8: `store` has a file or folder name of 10000000 bytes; the limit is 255",
        )
        .stderr_has("╭─[long.yaml:2:8]")
        .stderr_has(" 2 │ store: aaaa")
        .stderr_has("a…\n")
        .stderr_has("╰── unsafe path");
    assert!(widest(&run.stderr) <= 100, "{}", widest(&run.stderr));
}

#[test]
fn an_error_inside_a_long_flow_mapping_keeps_its_caret_on_the_key() {
    let env = TestEnv::new();
    let entries: Vec<String> = (0..20_000)
        .map(|i| format!("m{i}: {{source: ./m{i}.safetensors, type: loras}}"))
        .collect();
    let (before, after) = entries.split_at(10_000);
    let line = format!(
        "models: {{{}, bad: {{source: ./x, type: loras, colour: red}}, {}}}",
        before.join(", "),
        after.join(", ")
    );
    let column = line.find("colour").unwrap() + 1;
    env.write("flow.yaml", format!("version: 1\nstore: ./store\n{line}\n"));
    let run = env.mlib(&["validate", "-f", "flow.yaml"]);
    run.code(1)
        .stderr_line(&format!("× flow.yaml:3:{column}: unknown key `colour`"))
        .stderr_has(&format!("╭─[flow.yaml:3:{column}]"));
    assert!(widest(&run.stderr) <= 100, "{}", widest(&run.stderr));
    // The cut line shows the key, with the caret's underline right under it.
    let lines: Vec<&str> = run.stderr.lines().collect();
    let snippet = lines.iter().position(|l| l.starts_with(" 3 │ …")).unwrap();
    let at = lines[snippet].find("colour").unwrap();
    let key = lines[snippet][..at].chars().count();
    let marks = lines[snippet + 1].chars().position(|c| c == '─').unwrap();
    assert!(lines[snippet].contains("colour: red"), "{}", run.stderr);
    assert_eq!(key, marks, "{}", run.stderr);
}

#[test]
fn a_store_reached_through_a_symlink_inside_an_app_folder_is_refused_and_adopt_cannot_loop() {
    let env = TestEnv::new();
    env.model_file("ComfyUI/models/checkpoints/base.safetensors", "base", 4096);
    // Written apart, but the store is the app's checkpoints folder behind a symlink.
    std::os::unix::fs::symlink(
        env.path("ComfyUI/models/checkpoints"),
        env.path("store-link"),
    )
    .unwrap();
    env.manifest(
        "version: 1\nstore: ./store-link\nlayout: flat\nmodels:\n  base:\n    source: ./ComfyUI/models/checkpoints/base.safetensors\n    type: checkpoints\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n",
    );
    let before = std::fs::read(env.path("ComfyUI/models/checkpoints/base.safetensors")).unwrap();
    for args in [&["plan"][..], &["apply", "--auto-approve", "--adopt"][..]] {
        env.mlib(args)
            .code(1)
            .stderr_has("app `comfyui`'s folder ")
            .stderr_has("are the same place or one holds the other (after following symlinks)");
    }
    let path = env.path("ComfyUI/models/checkpoints/base.safetensors");
    assert!(!path.is_symlink(), "the file was turned into a link");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}
