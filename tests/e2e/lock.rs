//! One apply at a time per store.

use std::time::{Duration, Instant};

use crate::apply::two_models;
use crate::support::{TestEnv, tree};

#[test]
fn an_apply_waits_for_the_lock_then_fails_naming_the_holder() {
    let env = TestEnv::new();
    two_models(&env);
    let state = env.path("store/.mlib");
    std::fs::create_dir_all(&state).unwrap();
    let held = mlib_registry::ApplyLock::acquire(
        &state,
        "test holder",
        Duration::from_secs(1),
        &mut |_| {},
    )
    .unwrap();
    let holder = mlib_registry::ApplyLock::holder(&state).unwrap().unwrap();

    let started = Instant::now();
    let run = env.mlib(&["apply", "--auto-approve", "--lock-timeout", "1500ms"]);
    run.code(1)
        .stderr_has("waiting for lock held by")
        .stderr_has("test holder")
        .stderr_has(&holder.id);
    assert!(started.elapsed() >= Duration::from_millis(1400));
    assert!(!env.path("ComfyUI").exists());

    // The holder (this test process) is alive on this host: force-unlock refuses...
    env.mlib(&["force-unlock", &holder.id])
        .code(1)
        .stderr_has("is still running (pid ")
        .stderr_has("`mlib force-unlock --force ID` releases its lock anyway");
    env.mlib(&["apply", "--auto-approve", "--lock-timeout", "0s"])
        .code(1);
    // ...unless told it hangs: then the store is free for the next apply.
    env.mlib(&["force-unlock", "--force", &holder.id]).success();
    env.mlib(&["apply", "--auto-approve", "--lock-timeout", "2s"])
        .success();
    drop(held);
}

#[test]
fn two_concurrent_applies_serialize_and_leave_a_consistent_state() {
    let env = TestEnv::new();
    two_models(&env);
    let spawn = || {
        env.command()
            .args(["apply", "--auto-approve"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    let first = first.wait_with_output().unwrap();
    let second = second.wait_with_output().unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );

    let links: Vec<String> = tree(&env.root)
        .into_iter()
        .filter(|l| l.contains(" -> "))
        .collect();
    assert_eq!(links.len(), 4, "{links:#?}");
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
    let registry = rusqlite::Connection::open(env.path("store/.mlib/registry.db")).unwrap();
    let rows: i64 = registry
        .query_row("SELECT count(*) FROM links", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 4);
}
