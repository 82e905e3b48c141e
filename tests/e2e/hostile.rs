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
