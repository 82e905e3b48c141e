//! Ctrl-C: mlib does not catch SIGINT, so the signal ends it at once (a shell reports 130),
//! like a kill, and the next apply finishes what it was doing (apply is crash-safe).

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use mlib_testserver::{Blob, TestServer};

use crate::support::{TestEnv, model_bytes, sha256};

#[test]
fn ctrl_c_during_a_download_ends_apply_by_the_signal_and_the_next_apply_converges() {
    let (env, server) = (TestEnv::new(), TestServer::start());
    let size = 4 << 20;
    let bytes = model_bytes("slow", size);
    let path = "/files/slow.safetensors";
    let url = server.add(path, Blob::new(bytes.clone()).throttle(1 << 20));
    let local = env.model_file("src/local.safetensors", "local", 8192);
    env.manifest(&format!(
        "version: 1\nstore: ./store\nmodels:\n  slow:\n    source: {url}\n    sha256: {}\n    type: checkpoints\n  local:\n    source: ./src/local.safetensors\n    sha256: {local}\n    type: loras\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n",
        sha256(&bytes)
    ));

    // `env --default-signal=INT`: the test must not depend on whether whoever started it
    // ignores SIGINT (a child inherits that).
    let mut child = env
        .command_for("env".as_ref())
        .arg("--default-signal=INT")
        .arg(env!("CARGO_BIN_EXE_mlib"))
        .args(["apply", "--auto-approve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let staging = env.path("store/.mlib/tmp");
    let deadline = Instant::now() + Duration::from_secs(30);
    while part_bytes(&staging) < 256 << 10 {
        assert!(Instant::now() < deadline, "the download never started");
        assert!(child.try_wait().unwrap().is_none(), "apply ended early");
        std::thread::sleep(Duration::from_millis(10));
    }
    let interrupt = env
        .command_for("kill".as_ref())
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupt.success());
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(2),
        "ended by SIGINT (a shell shows 130), not an exit code: {status:?}"
    );
    assert!(
        part_bytes(&staging) < size as u64,
        "interrupted in the middle of the download"
    );

    server.set_faults(path, Default::default());
    env.mlib(&["apply", "--auto-approve"]).success();
    assert_eq!(
        std::fs::read(env.path("ComfyUI/models/checkpoints/slow.safetensors")).unwrap(),
        bytes
    );
    assert!(env.path("ComfyUI/models/loras/local.safetensors").exists());
    env.mlib(&["plan", "--detailed-exitcode"])
        .code(0)
        .stderr_has("No changes");
    assert_eq!(
        part_bytes(&staging),
        0,
        "nothing left in the staging folder"
    );
}

/// Bytes in `.part` files under `dir`.
fn part_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}
