//! Flags and their `MLIB_*` variables: booleans read the usual words, an empty variable is
//! unset, every flag the README says has a variable has one, and no value of any option makes
//! mlib panic.

use crate::support::{Run, TestEnv};

/// A manifest with one local model and one app: enough for every command to get past
/// loading it.
fn env_with_manifest() -> TestEnv {
    let env = TestEnv::new();
    let sha = env.model_file("src/a.safetensors", "a", 4096);
    env.manifest(&format!(
        "version: 1\nstore: ./store\nmodels:\n  a:\n    source: ./src/a.safetensors\n    sha256: {sha}\n    type: loras\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n"
    ));
    env
}

fn run(env: &TestEnv, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut cmd = env.command();
    cmd.args(args);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    Run::from(cmd.output().expect("run mlib"))
}

#[test]
fn a_boolean_variable_reads_1_0_true_false_yes_no_on_off() {
    let env = env_with_manifest();
    // Without a terminal, apply needs approval: the variable is what gives it.
    for on in ["1", "true", "yes", "on", "TRUE", "On"] {
        run(&env, &["apply"], &[("MLIB_AUTO_APPROVE", on)]).success();
    }
    for off in ["0", "false", "no", "off", "OFF", ""] {
        run(&env, &["apply"], &[("MLIB_AUTO_APPROVE", off)])
            .code(1)
            .stderr_has("apply needs approval");
    }
    let bad = run(&env, &["apply"], &[("MLIB_AUTO_APPROVE", "maybe")]);
    bad.code(2).stderr_has(
        "invalid value \"maybe\" for `--auto-approve` (from MLIB_AUTO_APPROVE): use 1, true, yes or on",
    );
    assert!(!bad.stderr.contains("panicked"), "{bad}");
}

#[test]
fn every_boolean_variable_takes_effect_and_refuses_nonsense() {
    let env = env_with_manifest();
    run(&env, &["apply", "--auto-approve"], &[]).success();
    // Each variable, set to `1`, where it changes what the command does.
    let json = run(&env, &["validate"], &[("MLIB_JSON", "1")]);
    json.success();
    assert!(json.stdout.starts_with('{'), "{json}");
    let quiet = run(&env, &["validate"], &[("MLIB_QUIET", "yes")]);
    quiet.success();
    assert_eq!(quiet.stderr, "", "{quiet}");
    std::fs::remove_file(env.path("ComfyUI/models/loras/a.safetensors")).unwrap();
    run(&env, &["plan"], &[("MLIB_DETAILED_EXITCODE", "on")]).code(2);
    run(&env, &["plan"], &[("MLIB_DETAILED_EXITCODE", "off")]).code(0);
    run(&env, &["apply"], &[("MLIB_AUTO_APPROVE", "yes")]).success();
    run(&env, &["plan"], &[("MLIB_DETAILED_EXITCODE", "1")]).code(0);
    // Those whose effect needs remote sources or conflicts are tested elsewhere; here, that
    // each variable is read as a boolean: a word that is not one is refused, naming it.
    let variables = [
        ("validate", "MLIB_JSON"),
        ("validate", "MLIB_QUIET"),
        ("validate", "MLIB_NO_PROGRESS"),
        ("plan", "MLIB_DETAILED_EXITCODE"),
        ("plan", "MLIB_ADOPT"),
        ("plan", "MLIB_LOCKED"),
        ("plan", "MLIB_OFFLINE"),
        ("plan", "MLIB_ALLOW_UNPINNED"),
        ("plan", "MLIB_ALLOW_HTTP"),
        ("apply", "MLIB_AUTO_APPROVE"),
    ];
    for (command, variable) in variables {
        run(
            &env,
            &[command],
            &[(variable, "1"), ("MLIB_AUTO_APPROVE", "1")],
        )
        .success();
        let empty = run(&env, &[command], &[(variable, "")]);
        assert_ne!(empty.code, 2, "{variable}= is unset, not an error\n{empty}");
        run(&env, &[command], &[(variable, "sometimes")])
            .code(2)
            .stderr_has(&format!("(from {variable})"));
    }
}

#[test]
fn every_flag_has_a_variable_but_the_ones_the_readme_names() {
    let env = TestEnv::new();
    // The flags that have none, and why, are in the README's "Global flags" paragraph.
    let without = [
        "--verbose",
        "--out",
        // The one bundle an apply provisions from: a file named per run, not a setting.
        "--from-bundle",
        "--force",
        "--all",
        "--keep-file",
        "--keep-links",
        "--include-foreign",
        "--fix",
        "--app",
        "--name",
        "--type",
        "--family",
        "--workflow",
        "--move",
        "--into-store",
        "--from-workflow",
        "--check",
        "--from",
        "--to",
        "--from-bundle",
        "--models",
        "--help",
        "--version",
    ];
    for command in [
        "validate",
        "plan",
        "apply",
        "status",
        "verify",
        "env list",
        "scan",
        "lock",
        "update",
        "relocate",
        "force-unlock",
        "rm",
        "gc",
        "du",
        "doctor",
        "env forget",
        "inspect",
        "init",
        "add",
        "import",
        "enrich",
        "bundle create",
        "bundle ls",
    ] {
        let mut args: Vec<&str> = command.split(' ').collect();
        args.push("--help");
        let help = env.mlib(&args);
        help.success();
        // Each option's block starts with its flags (`  -f, --file <FILE>`), and lists its
        // variable (`[env: MLIB_FILE=]`) before the next block.
        let mut options: Vec<String> = Vec::new();
        let after_options = help
            .stdout
            .lines()
            .skip_while(|line| *line != "Options:")
            .skip(1);
        for line in after_options {
            // `  -f, --file` or, without a short flag, `      --lock-timeout`.
            let indent = line.len() - line.trim_start().len();
            if line.trim_start().starts_with('-') && (indent == 2 || indent == 6) {
                options.push(String::new());
            } else if !line.is_empty() && !line.starts_with(' ') {
                options.push(String::new()); // a section heading ends the block
                continue;
            }
            if let Some(block) = options.last_mut() {
                block.push_str(line);
                block.push('\n');
            }
        }
        let options: Vec<&String> = options
            .iter()
            .filter(|b| b.trim_start().starts_with('-'))
            .collect();
        assert!(options.len() > 3, "{}", help.stdout);
        for option in options {
            let long = option
                .split_whitespace()
                .find(|w| w.starts_with("--"))
                .unwrap_or_else(|| panic!("no long flag in {option}"));
            let long = long.trim_end_matches(',').trim_end_matches("...");
            if without.contains(&long) {
                assert!(
                    !option.contains("[env: "),
                    "{long} has a variable now: {option}"
                );
            } else {
                assert!(
                    option.contains("[env: MLIB_"),
                    "`mlib {command}`: {long} has no MLIB_* variable:\n{option}"
                );
            }
        }
    }
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    for flag in [
        "`-v`",
        "`-o`",
        "`--force`",
        "`verify --all`",
        "`--keep-file`",
        "`--keep-links`",
        "`--include-foreign`",
        "`doctor --fix`",
        "`init --app`",
        "`add --name`",
        "`plan --workflow`",
        "`import --move`",
        "`init --into-store`",
        "`relocate --from`",
        "`apply --from-bundle`",
        "`--models`",
    ] {
        assert!(readme.contains(flag), "the README does not name {flag}");
    }
}

#[test]
fn an_empty_variable_is_unset() {
    let env = env_with_manifest();
    // MLIB_LOCK_TIMEOUT= is the default (5m), MLIB_JOBS= chooses by disk, MLIB_COLOR= is auto.
    run(
        &env,
        &["apply", "--auto-approve"],
        &[
            ("MLIB_LOCK_TIMEOUT", ""),
            ("MLIB_JOBS", ""),
            ("MLIB_COLOR", ""),
            ("MLIB_FILE", ""),
        ],
    )
    .success();
}

#[test]
fn lock_timeouts_are_durations_with_a_maximum() {
    let env = env_with_manifest();
    for ok in ["30s", "5m", "1h30m", "250ms", "2", "PT1M", "24h"] {
        run(
            &env,
            &["apply", "--auto-approve", "--lock-timeout", ok],
            &[],
        )
        .success();
        run(
            &env,
            &["apply", "--auto-approve"],
            &[("MLIB_LOCK_TIMEOUT", ok)],
        )
        .success();
    }
    run(
        &env,
        &[
            "apply",
            "--auto-approve",
            "--lock-timeout",
            "99999999999999999999999h",
        ],
        &[],
    )
    .code(2)
    .stderr_has("invalid value '99999999999999999999999h' for '--lock-timeout <LOCK_TIMEOUT>'");
    run(
        &env,
        &["apply", "--auto-approve", "--lock-timeout", "25h"],
        &[],
    )
    .code(2)
    .stderr_has("25h is longer than the maximum, 24h");
    run(
        &env,
        &["apply", "--auto-approve", "--lock-timeout=-5m"],
        &[],
    )
    .code(2)
    .stderr_has("a duration cannot be negative");
    run(
        &env,
        &["apply", "--auto-approve"],
        &[("MLIB_LOCK_TIMEOUT", "soon")],
    )
    .code(2)
    .stderr_has("try 30s, 5m or 1h");
}

#[test]
fn no_value_of_any_option_makes_mlib_panic() {
    let env = env_with_manifest();
    run(&env, &["apply", "--auto-approve"], &[]).success();
    env.write("plan-dir/.keep", "");
    let long = "é".repeat(5000);
    let odd: Vec<String> = [
        "",
        " ",
        "0",
        "-1",
        "-99999999999999999999999",
        "99999999999999999999999",
        "18446744073709551616",
        "99999999999999999999999h",
        "1e308",
        "NaN",
        "-",
        "--",
        "５",
        "模型",
        "🦀",
        "a\u{0}b",
        "\u{202e}txt.yaml",
        "../../../../../../etc/passwd",
        "plan-dir",
        "/dev/zero",
        "/dev/null",
        "%s%n",
        "${HOME}",
        long.as_str(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // (args before the value, option, args after): each value is given as `OPTION=VALUE`
    // (so values starting with `-` are values) or as an argument.
    let options: &[(&[&str], &str)] = &[
        (&["validate"], "--file"),
        (&["status"], "--color"),
        (&["status"], "--env"),
        (&["status"], "--state-dir"),
        (&["apply", "--auto-approve"], "--lock-timeout"),
        (&["apply", "--auto-approve"], "--jobs"),
        (&["plan"], "--out"),
        (&["apply"], ""),
        (&["verify"], ""),
        (&["update"], ""),
        (&["force-unlock"], ""),
    ];
    for value in &odd {
        if value.contains('\0') {
            continue; // an argument cannot hold a NUL byte; tested as a variable below
        }
        for (before, option) in options {
            let mut args: Vec<String> = before.iter().map(|s| s.to_string()).collect();
            if option.is_empty() {
                args.push("--".into());
                args.push(value.clone());
            } else {
                args.push(format!("{option}={value}"));
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let r = run(&env, &args, &[]);
            assert!(
                r.code == 0 || r.code == 1 || r.code == 2,
                "mlib {args:?}: exit {}\n{r}",
                r.code
            );
            assert!(!r.stderr.contains("panicked"), "mlib {args:?}\n{r}");
        }
    }
    let variables = [
        ("status", "MLIB_FILE"),
        ("status", "MLIB_COLOR"),
        ("status", "MLIB_ENV"),
        ("status", "MLIB_STATE_DIR"),
        ("apply", "MLIB_LOCK_TIMEOUT"),
        ("apply", "MLIB_JOBS"),
        ("apply", "MLIB_AUTO_APPROVE"),
        ("status", "MLIB_JSON"),
        ("status", "RUST_LOG"),
    ];
    for value in &odd {
        let value = value.replace('\0', ""); // the environment cannot hold NUL either
        for (command, variable) in variables {
            let r = run(&env, &[command, "-vv"], &[(variable, &value)]);
            assert!(
                [0, 1, 2].contains(&r.code) && !r.stderr.contains("panicked"),
                "{variable}={value:?} mlib {command}: exit {}\n{r}",
                r.code
            );
        }
    }
    // Whatever was thrown at it, the store and apps are as they were.
    run(&env, &["plan", "--detailed-exitcode"], &[]).code(0);
}

#[test]
fn verbose_counts_and_help_says_so() {
    let env = TestEnv::new();
    let help = env.mlib(&["--help"]);
    help.success();
    let flat: String = help.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        "-v details",
        "-vv also debug traces",
        "-vvv every trace",
        "RUST_LOG",
    ] {
        assert!(
            flat.contains(needle),
            "--help lacks {needle:?}\n{}",
            help.stdout
        );
    }
}

#[test]
fn jobs_are_bounded() {
    let env = env_with_manifest();
    run(&env, &["apply", "--auto-approve", "-j", "64"], &[]).success();
    for bad in ["0", "65", "100000", "-1", "four"] {
        run(
            &env,
            &["apply", "--auto-approve", &format!("--jobs={bad}")],
            &[],
        )
        .code(2);
        run(&env, &["apply", "--auto-approve"], &[("MLIB_JOBS", bad)]).code(2);
    }
}
