//! The apply lock, across threads (flock is per open file, so two acquirers in one process
//! exclude each other) and across processes.

use std::path::Path;
use std::time::{Duration, Instant};

use mlib_registry::{ApplyLock, LockHolder, RegistryError};

fn no_wait(_: Option<&LockHolder>) {
    panic!("on_wait must not be called");
}

#[test]
fn holder_info_is_written_and_removed_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("store/.mlib");
    let lock =
        ApplyLock::acquire(&state, "mlib apply", Duration::from_secs(1), &mut no_wait).unwrap();
    let holder = ApplyLock::holder(&state).unwrap().unwrap();
    assert_eq!(&holder, lock.info());
    assert_eq!(holder.pid, std::process::id());
    assert_eq!(holder.command, "mlib apply");
    assert!(!holder.host.is_empty());
    assert_eq!(holder.id.len(), 16);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("apply.lock.json")).unwrap()).unwrap();
    assert_eq!(json["id"], holder.id.as_str());
    assert!(
        json["since"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .is_ok()
    );

    drop(lock);
    assert!(!state.join("apply.lock.json").exists());
    assert_eq!(ApplyLock::holder(&state).unwrap(), None);
    // Free again at once.
    let again = ApplyLock::acquire(&state, "mlib apply", Duration::ZERO, &mut no_wait).unwrap();
    assert_ne!(again.info().id, holder.id);
}

#[test]
fn second_acquirer_waits_then_times_out_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let held = ApplyLock::acquire(dir.path(), "first", Duration::ZERO, &mut no_wait).unwrap();
    let id = held.info().id.clone();

    let path = dir.path().to_owned();
    let waiter = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let start = Instant::now();
        let result = ApplyLock::acquire(&path, "second", Duration::from_millis(1300), &mut |h| {
            seen.push((start.elapsed(), h.cloned()))
        });
        (result.map(|_| ()), seen, start.elapsed())
    });
    let (result, seen, took) = waiter.join().unwrap();
    let err = result.unwrap_err();
    assert!(took >= Duration::from_millis(1300), "{took:?}");
    // Told once, after about a second, who holds it.
    assert_eq!(seen.len(), 1);
    assert!(seen[0].0 >= Duration::from_secs(1));
    assert_eq!(seen[0].1.as_ref().unwrap().id, id);
    match &err {
        RegistryError::LockTimeout { holder, .. } => {
            assert_eq!(holder.as_ref().unwrap().command, "first")
        }
        other => panic!("{other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&format!("mlib force-unlock {id}")),
        "{message}"
    );
    assert!(message.contains("first"), "{message}");
    drop(held);
}

#[test]
fn waiter_gets_the_lock_when_the_holder_drops_it() {
    let dir = tempfile::tempdir().unwrap();
    let held = ApplyLock::acquire(dir.path(), "first", Duration::ZERO, &mut no_wait).unwrap();
    let path = dir.path().to_owned();
    let waiter = std::thread::spawn(move || {
        let start = Instant::now();
        let lock = ApplyLock::acquire(&path, "second", Duration::from_secs(5), &mut no_wait);
        (lock.map(|l| l.info().command.clone()), start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    drop(held);
    let (command, took) = waiter.join().unwrap();
    assert_eq!(command.unwrap(), "second");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[test]
fn force_unlock_needs_the_holders_id() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let stuck = ApplyLock::acquire(state, "stuck", Duration::ZERO, &mut no_wait).unwrap();
    let id = stuck.info().id.clone();

    let err = ApplyLock::force_unlock(state, "0123456789abcdef", false).unwrap_err();
    assert!(
        matches!(err, RegistryError::LockIdMismatch { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("nothing was unlocked"), "{err}");
    assert_eq!(ApplyLock::holder(state).unwrap().unwrap().id, id);
    assert!(ApplyLock::acquire(state, "x", Duration::ZERO, &mut no_wait).is_err());

    // The holder is this very process, alive: refused without --force.
    let err = ApplyLock::force_unlock(state, &id, false).unwrap_err();
    assert!(matches!(err, RegistryError::HolderAlive { .. }), "{err:?}");
    assert!(err.to_string().contains("is still running"), "{err}");
    assert!(ApplyLock::acquire(state, "x", Duration::ZERO, &mut no_wait).is_err());

    // As if `stuck` hung: --force.
    let removed = ApplyLock::force_unlock(state, &id, true).unwrap();
    assert_eq!(removed.command, "stuck");
    let next = ApplyLock::acquire(state, "next", Duration::ZERO, &mut no_wait).unwrap();
    assert_eq!(ApplyLock::holder(state).unwrap().unwrap().command, "next");
    // The old lock going away must not remove the new holder's info.
    drop(stuck);
    assert_eq!(
        ApplyLock::holder(state).unwrap().unwrap().id,
        next.info().id
    );

    drop(next);
    let err = ApplyLock::force_unlock(state, &id, false).unwrap_err();
    assert!(matches!(err, RegistryError::NotLocked { .. }), "{err:?}");
}

#[test]
fn stale_holder_file_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    // A holder file left by a process that died: the kernel already released its flock.
    std::fs::write(state.join("apply.lock"), b"").unwrap();
    std::fs::write(
        state.join("apply.lock.json"),
        br#"{"id":"dead","pid":1,"host":"h","command":"c","since":"2020-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    assert_eq!(ApplyLock::holder(state).unwrap(), None);
    let lock = ApplyLock::acquire(state, "alive", Duration::ZERO, &mut no_wait).unwrap();
    assert_eq!(
        ApplyLock::holder(state).unwrap().unwrap().id,
        lock.info().id
    );
}

const CHILD_ENV: &str = "MLIB_TEST_LOCK_CHILD_DIR";

/// Not a test on its own: the body of the child process in `lock_held_by_another_process`.
#[test]
fn child_process_holding_the_lock() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let _lock =
        ApplyLock::acquire(dir, "child apply", Duration::from_secs(5), &mut |_| {}).unwrap();
    std::fs::write(dir.join("ready"), b"").unwrap();
    std::thread::sleep(Duration::from_secs(20));
}

#[test]
fn lock_held_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_holding_the_lock",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, state)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !state.join("ready").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "child never took the lock"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    let holder = ApplyLock::holder(state).unwrap().unwrap();
    assert_eq!(holder.pid, child.id());
    assert_eq!(holder.command, "child apply");
    let err =
        ApplyLock::acquire(state, "parent", Duration::from_millis(200), &mut no_wait).unwrap_err();
    assert!(err.to_string().contains(&holder.id), "{err}");

    // The kernel releases a dead process's flock: no force-unlock needed.
    child.kill().unwrap();
    child.wait().unwrap();
    let lock = ApplyLock::acquire(state, "parent", Duration::from_secs(2), &mut no_wait).unwrap();
    assert_eq!(
        ApplyLock::holder(state).unwrap().unwrap().id,
        lock.info().id
    );
}

#[test]
fn force_unlock_releases_the_lock_of_a_holder_that_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    // As on a network filesystem that kept a dead client's lock: the holder file names a
    // process of this host that has exited.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    std::fs::write(state.join("apply.lock"), b"").unwrap();
    std::fs::write(
        state.join("apply.lock.json"),
        format!(
            r#"{{"id":"gone","pid":{pid},"start":1,"host":"{host}","command":"c","since":"2020-01-01T00:00:00Z"}}"#
        ),
    )
    .unwrap();
    let removed = ApplyLock::force_unlock(state, "gone", false).unwrap();
    assert_eq!(removed.pid, pid);
    assert!(!state.join("apply.lock.json").exists());
}
