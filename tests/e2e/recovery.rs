//! Recovery after a kill at one chosen moment (the crash test, `crash.rs`, kills at random
//! ones): each test kills `mlib apply` in a window it can wait for, then checks that the next
//! apply finishes the job.

use std::process::Stdio;
use std::time::{Duration, Instant};

use mlib_testserver::{Blob, TestServer};

use crate::support::{Run, TestEnv, model_bytes, sha256};

const MIB: usize = 1 << 20;

/// A copy app, a local model whose source changes, and a slow download fetched alongside.
struct Site {
    env: TestEnv,
    server: TestServer,
}

impl Site {
    fn new() -> Site {
        Site {
            env: TestEnv::new(),
            server: TestServer::start(),
        }
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = self.env.command();
        cmd.args(args)
            .env("HF_HUB_CACHE", self.env.path("hf-cache"));
        cmd
    }

    fn mlib(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run mlib"))
    }

    /// Waits (up to 20 s) for `ready`, panicking with `what` if it never comes.
    fn wait_for(&self, what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready() {
            assert!(Instant::now() < deadline, "never happened: {what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

#[test]
fn a_copy_of_a_model_replaced_in_the_store_before_a_kill_is_copied_again() {
    let site = Site::new();
    let env = &site.env;
    let shas: Vec<String> = (1..=2)
        .map(|v| env.model_file(&format!("src/m-{v}.safetensors"), &format!("m-{v}"), MIB))
        .collect();
    let fast = model_bytes("remote-1", 1000);
    let slow = model_bytes("remote-2", 2 * MIB);
    let urls = [
        site.server.add_blob("/files/1/r.pth", fast.clone()),
        // Slow enough that the apply is still downloading long after the local model is in.
        site.server.add(
            "/files/2/r.pth",
            Blob::new(slow.clone()).throttle(MIB as u64 / 4),
        ),
    ];
    let manifest = |v: usize, remote_sha: &str| {
        env.manifest(&format!(
            "version: 1\nstore: ./store\nmodels:\n  m:\n    source: ./src/m-{v}.safetensors\n    sha256: {}\n    file: m.safetensors\n    type: loras\n  r:\n    source: {}\n    sha256: {remote_sha}\n    type: upscale_models\napps:\n  comfy:\n    preset: comfyui\n    root: ./ComfyUI\n    link: copy\n",
            shas[v - 1],
            urls[v - 1],
        ))
    };
    manifest(1, &sha256(&fast));
    site.mlib(&["apply", "--auto-approve"]).success();
    let copy = env.path("ComfyUI/models/loras/m.safetensors");
    assert_eq!(sha256(&std::fs::read(&copy).unwrap()), shas[0]);

    // The next apply replaces `m` in the store at once, then waits for the download before
    // it makes any link: it is killed in between.
    manifest(2, &sha256(&slow));
    let mut child = site
        .command(&["apply", "--auto-approve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let metadata = env.path("store/loras/unknown/m/metadata.json");
    site.wait_for("m replaced in the store", || {
        std::fs::read_to_string(&metadata).is_ok_and(|m| m.contains(&shas[1]))
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        sha256(&std::fs::read(&copy).unwrap()),
        shas[0],
        "killed before copying m again"
    );

    site.server.set_faults("/files/2/r.pth", Default::default());
    let run = site.mlib(&["apply", "--auto-approve"]);
    run.success();
    assert_eq!(
        sha256(&std::fs::read(&copy).unwrap()),
        shas[1],
        "the copy has the new bytes\n{run}"
    );
    site.mlib(&["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn a_lock_file_half_written_by_a_killed_mlib_is_removed_by_the_next_apply() {
    let env = TestEnv::new();
    let sha = env.model_file("src/m.safetensors", "m", 1000);
    env.manifest(&format!(
        "version: 1\nstore: ./store\nmodels:\n  m:\n    source: ./src/m.safetensors\n    sha256: {sha}\n    type: loras\napps:\n  comfy:\n    preset: comfyui\n    root: ./ComfyUI\n"
    ));
    env.mlib(&["apply", "--auto-approve"]).success();
    // `mlib lock` (which has no apply run) or an apply after its run, killed while replacing
    // models.lock: what is left is its temporary file, written by a process now gone.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let temp = env.write(&format!(".models.lock.mlib-tmp-{pid}-1-0"), "[models]\n");
    let users = env.write(".models.lock.mine", "not mlib's");

    env.mlib(&["apply", "--auto-approve"])
        .success()
        .stderr_has("No changes.");
    assert!(
        !temp.exists(),
        "the killed writer's temporary file is removed"
    );
    assert!(users.exists());
}

#[test]
fn a_copied_folder_being_unlinked_when_killed_is_never_half_there() {
    let env = TestEnv::new();
    env.model_file("src/pipe/unet/model.safetensors", "unet", 5000);
    env.write("src/pipe/model_index.json", "{}");
    let manifest = |models: &str| {
        env.manifest(&format!(
            "version: 1\nstore: ./store\nmodels:\n  pipe:\n    source: ./src/pipe\n    type: diffusers\napps:\n  comfy:\n    preset: comfyui\n    root: ./ComfyUI\n    link: copy\n    models: {models}\n"
        ))
    };
    manifest("[pipe]");
    env.mlib(&["apply", "--auto-approve"]).success();
    let folder = env.path("ComfyUI/models/diffusers");
    let target = folder.join("pipe");
    // Many files deep in the copy (its own stat, which the registry keeps, is unchanged):
    // removing it takes long enough to be killed in the middle.
    let many = target.join("unet/cache");
    std::fs::create_dir(&many).unwrap();
    const FILES: usize = 20_000;
    for n in 0..FILES {
        std::fs::write(many.join(n.to_string()), b"").unwrap();
    }
    let count = || std::fs::read_dir(&many).map_or(0, |r| r.count());
    // As if mlib had copied them: a copy someone added files to is theirs and never removed,
    // so the record is given the tree as it is now.
    let tree = mlib_registry::FileStat::tree(&target).unwrap();
    rusqlite::Connection::open(env.path("store/.mlib/registry.db"))
        .unwrap()
        .execute(
            "UPDATE links SET mtime_ns = ?1, size = ?2 WHERE target = ?3",
            rusqlite::params![tree.mtime_ns, tree.size as i64, target.to_str().unwrap()],
        )
        .unwrap();

    manifest("[]");
    let mut child = env
        .command()
        .args(["apply", "--auto-approve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while target.exists() && count() == FILES {
        assert!(Instant::now() < deadline, "the copy was never removed");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !target.exists() || (count() == FILES && target.join("model_index.json").exists()),
        "a kill left half of the copy where the app looks"
    );

    env.mlib(&["apply", "--auto-approve"]).success();
    let left: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in the app folder: {left:?}");
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
}

/// What a kill leaves while `import --move` renames a file in: the file in a work folder of
/// the staging area (with a temporary metadata file of mlib's), and a note of where it came
/// from. Plan says the source waits there, doctor says --fix puts it back, and apply puts it
/// back (saying so, not "quarantined"), keeping nothing of mlib's in the quarantine.
#[test]
fn a_file_a_killed_move_left_in_staging_is_put_back_and_said_so() {
    let env = TestEnv::new();
    let sha = env.model_file("dl/a.safetensors", "a", 1000);
    env.manifest(&format!(
        "version: 1\nstore: ./store\nmodels:\n  a:\n    source: ./dl/a.safetensors\n    sha256: {sha}\n    type: loras\napps:\n  comfy:\n    preset: comfyui\n    root: ./ComfyUI\n"
    ));
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let work = env.path(&format!("store/.mlib/tmp/.move.mlib-tmp-{pid}-1-0"));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::rename(env.path("dl/a.safetensors"), work.join("a.safetensors")).unwrap();
    env.write(
        &format!("store/.mlib/tmp/.move.mlib-tmp-{pid}-1-0/.metadata.json.mlib-tmp-{pid}-1-2"),
        "{",
    );
    let note = serde_json::json!({
        "work": work,
        "from": env.path("dl/a.safetensors"),
        "entry": "a.safetensors",
    });
    env.write(
        &format!("store/.mlib/tmp/.moved.mlib-tmp-{pid}-1-1"),
        note.to_string(),
    );

    env.mlib(&["plan"])
        .code(1)
        .stderr_has("a killed mlib was moving it into the store: it waits in the store's staging folder, and `mlib apply` or `mlib doctor --fix` puts it back");
    env.mlib(&["doctor"])
        .stderr_has("a person's file a killed mlib was moving into the store")
        .stderr_has("--fix puts the file back where it was");
    let run = env.mlib(&["apply", "--auto-approve"]);
    run.success()
        .stderr_has("was being moved into the store when mlib was killed: put back where it was");
    assert!(!run.stderr.contains("quarantine"), "{run}");
    assert_eq!(
        std::fs::read(env.path("dl/a.safetensors")).unwrap().len(),
        1000
    );
    assert!(env.path("ComfyUI/models/loras/a.safetensors").exists());
    let quarantine = env.path("store/.mlib/quarantine");
    assert!(
        std::fs::read_dir(&quarantine).map_or(true, |mut d| d.next().is_none()),
        "nothing quarantined"
    );
}
