//! `mlib completions SHELL` and `mlib man`, generated from the same definitions as `--help`.

use crate::support::TestEnv;

#[test]
fn bash_loads_the_completions_and_they_know_every_command() {
    let env = TestEnv::new();
    let run = env.mlib(&["completions", "bash"]);
    run.success();
    let script = &run.stdout;
    for command in [
        "apply",
        "plan",
        "import",
        "lock",
        "completions",
        "force-unlock",
    ] {
        assert!(script.contains(command), "{command} missing");
    }
    env.write("mlib.bash", script);
    // bash itself accepts the script and registers it for `mlib`.
    let out = std::process::Command::new("bash")
        .args(["-c", "source ./mlib.bash && complete -p mlib"])
        .current_dir(env.path(""))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("mlib"));
    env.mlib(&["completions", "tcsh"])
        .code(2)
        .stderr_has("possible values: bash, elvish, fish, powershell, zsh");
}

#[test]
fn the_man_page_is_roff_naming_the_commands() {
    let env = TestEnv::new();
    let run = env.mlib(&["man"]);
    run.success();
    let page = &run.stdout;
    assert!(page.contains(".TH mlib 1"), "{page}");
    assert!(page.contains("apply"), "{page}");
}
