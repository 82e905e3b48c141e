//! Team mirrors through the CLI: a real S3-compatible server (moto's, from PyPI) and the
//! project's test server on loopback, the origin stopped or serving, objects corrupted on
//! purpose, credentials looked for in everything mlib prints or writes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mlib_testserver::TestServer;

use crate::assert_run;
use crate::support::{Run, TestEnv, model_bytes, sha256};

const KEY_ID: &str = "AKIAMLIBTESTKEY00042";
const SECRET: &str = "mlib-test-SECRET-key-do-not-print-0123456789";
const BUCKET: &str = "team-models";

/// moto's S3 server on 127.0.0.1, stopped when dropped. Its absence fails the test with what
/// to install: a mirror test that silently passed without a server would test nothing.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start moto_server ({e}): the S3 mirror tests need moto's server on \
                     PATH. Install it with `pip install 'moto[server]'` (.ci/run does)."
                )
            });
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while moto.raw("GET", "/", b"").is_none() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not start in 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// One unsigned request (moto accepts them): how the tests make buckets and corrupt
    /// objects behind mlib's back. Returns the status line's code.
    pub fn raw(&self, method: &str, path: &str, body: &[u8]) -> Option<u16> {
        let addr = self.endpoint.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).ok()?;
        s.write_all(body).ok()?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).ok()?;
        let text = String::from_utf8_lossy(&answer);
        text.split_whitespace().nth(1)?.parse().ok()
    }

    pub fn make_bucket(&self, bucket: &str) {
        assert_eq!(self.raw("PUT", &format!("/{bucket}"), b""), Some(200));
    }

    /// The environment that points mlib's `s3://` mirrors at this server.
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET.into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One machine of the team: its own folder, sharing the origin and the mirror.
struct Machine {
    env: TestEnv,
}

impl Machine {
    fn new(manifest: &str) -> Machine {
        let env = TestEnv::new();
        env.manifest(manifest);
        Machine { env }
    }

    fn mlib(&self, args: &[&str], vars: &[(&str, String)]) -> Run {
        let mut cmd = self.env.command();
        cmd.args(args);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        Run::from(cmd.output().unwrap())
    }

    fn stored(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.env.path(rel)).unwrap()
    }

    /// No credential in what was printed, nor in anything mlib wrote.
    fn assert_no_credentials(&self, run: &Run) {
        for secret in [KEY_ID, SECRET] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "a credential was printed\n{run}"
            );
            for file in ["models.lock", "store/.mlib/registry.db"] {
                if let Ok(bytes) = std::fs::read(self.env.path(file)) {
                    assert!(
                        !String::from_utf8_lossy(&bytes).contains(secret),
                        "a credential was written into {file}"
                    );
                }
            }
        }
    }
}

/// A URL model (pinned) and a HuggingFace folder model whose small JSON file has no published
/// hash: the second needs the mirror's model index.
struct Origin {
    server: TestServer,
    single: Vec<u8>,
    unet: Vec<u8>,
}

impl Origin {
    fn start() -> Origin {
        let server = TestServer::start();
        let single = model_bytes("mirror-single", 300_000);
        let unet = model_bytes("mirror-unet", 200_000);
        server.add_blob("/files/detail.safetensors", single.clone());
        server
            .hf_repo("org/pipe")
            .small("model_index.json", br#"{"_class_name": "Pipe"}"#.to_vec())
            .lfs("unet/diffusion_pytorch_model.safetensors", unet.clone())
            .publish();
        Origin {
            server,
            single,
            unet,
        }
    }

    fn manifest(&self, mirrors: &str) -> String {
        format!(
            "version: 1\nstore: ./store\nmirrors: {mirrors}\nmodels:\n  detail:\n    source: {}/files/detail.safetensors\n    sha256: {}\n    type: loras\n  pipe:\n    source: hf://org/pipe\n    type: diffusers\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n",
            self.server.url(),
            sha256(&self.single),
        )
    }

    fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HF_ENDPOINT", self.server.url()),
            ("HF_HUB_CACHE", "./hf-cache".into()),
        ]
    }
}

fn with(
    a: Vec<(&'static str, String)>,
    b: Vec<(&'static str, String)>,
) -> Vec<(&'static str, String)> {
    a.into_iter().chain(b).collect()
}

/// A second machine that gets the first one's lock as `mlib lock` wrote it (before any
/// download taught it the small file's hash): only the mirror's index knows that hash.
fn second_machine(first: &Machine, manifest: &str) -> Machine {
    let second = Machine::new(manifest);
    std::fs::copy(first.env.path("first.lock"), second.env.path("models.lock")).unwrap();
    second
}

fn first_machine(origin: &Origin, manifest: &str, vars: &[(&str, String)]) -> Machine {
    let first = Machine::new(manifest);
    first.mlib(&["lock"], vars).success();
    std::fs::copy(first.env.path("models.lock"), first.env.path("first.lock")).unwrap();
    first.mlib(&["apply", "--auto-approve"], vars).success();
    assert_eq!(
        first.stored("ComfyUI/models/loras/detail.safetensors"),
        origin.single
    );
    first
}

#[test]
fn push_then_pull_from_s3_with_the_origin_down() {
    let moto = Moto::start();
    moto.make_bucket(BUCKET);
    let origin = Origin::start();
    let manifest = origin.manifest("[s3://team-models/mlib]");
    let vars = with(origin.vars(), moto.aws_env());
    let first = first_machine(&origin, &manifest, &vars);

    let push = first.mlib(&["mirror", "push"], &vars);
    push.success();
    first.assert_no_credentials(&push);
    assert_run!(first.env, "mirror_push_s3", push);
    // Pushing again uploads nothing.
    first
        .mlib(&["mirror", "push"], &vars)
        .success()
        .stderr_has("0 files uploaded (0 B), 3 files already there");

    let second = second_machine(&first, &manifest);
    drop(origin.server);
    // One file at a time: the snapshot's lines keep one order.
    let run = second.mlib(&["apply", "--auto-approve", "-j", "1"], &vars);
    run.success();
    second.assert_no_credentials(&run);
    assert_run!(second.env, "mirror_pull_s3_origin_down", run);
    assert_eq!(
        second.stored("ComfyUI/models/loras/detail.safetensors"),
        origin.single
    );
    let pipe = "ComfyUI/models/diffusers/pipe";
    assert_eq!(
        second.stored(&format!("{pipe}/unet/diffusion_pytorch_model.safetensors")),
        origin.unet
    );
    assert_eq!(
        second.stored(&format!("{pipe}/model_index.json")),
        br#"{"_class_name": "Pipe"}"#
    );
    second.mlib(&["plan", "--detailed-exitcode"], &vars).code(0);

    let ls = second.mlib(&["mirror", "ls"], &vars);
    ls.success();
    assert_run!(second.env, "mirror_ls_s3", ls);
    let json = second.mlib(&["mirror", "ls", "--json"], &vars);
    let events = json.success().events();
    let models: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["type"] == "mirror_model")
        .map(|e| {
            (
                e["model"].as_str().unwrap().into(),
                e["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        models,
        [
            ("detail".into(), "covered".into()),
            ("pipe".into(), "covered".into())
        ]
    );
}

#[test]
fn a_corrupted_mirror_object_is_rejected_and_the_origin_serves() {
    let moto = Moto::start();
    moto.make_bucket(BUCKET);
    let origin = Origin::start();
    let manifest = origin.manifest("[s3://team-models]");
    let vars = with(origin.vars(), moto.aws_env());
    let first = first_machine(&origin, &manifest, &vars);
    // Same size, other bytes, already in the bucket under the right name: push trusts a name
    // and size it finds (it never reads objects back), so only the hash at download can tell.
    // (moto refuses an unsigned overwrite, so the bad object goes in first.)
    let mut bad = origin.single.clone();
    bad[1000] ^= 0xff;
    let key = format!("/{BUCKET}/sha256/{}", sha256(&origin.single));
    assert_eq!(moto.raw("PUT", &key, &bad), Some(200));
    first
        .mlib(&["mirror", "push", "detail"], &vars)
        .success()
        .stderr_has("0 files uploaded (0 B), 1 file already there");
    origin.server.clear_requests();

    let second = Machine::new(&manifest);
    std::fs::copy(
        first.env.path("models.lock"),
        second.env.path("models.lock"),
    )
    .unwrap();
    let run = second.mlib(&["apply", "--auto-approve", "-j", "1"], &vars);
    run.success()
        .stderr_has("served detail with the wrong bytes");
    assert_run!(second.env, "mirror_corrupted_object", run);
    assert_eq!(
        second.stored("ComfyUI/models/loras/detail.safetensors"),
        origin.single
    );
    assert!(
        origin
            .server
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/files/detail.safetensors")),
        "the origin served the file"
    );
}

#[test]
fn a_missing_bucket_is_said_once_and_the_origin_serves() {
    let moto = Moto::start();
    let origin = Origin::start();
    let manifest = origin.manifest("[s3://no-such-bucket/x]");
    let vars = with(origin.vars(), moto.aws_env());
    let m = Machine::new(&manifest);
    let run = m.mlib(&["apply", "--auto-approve", "-vvv"], &vars);
    run.success();
    m.assert_no_credentials(&run);
    assert_eq!(
        run.stderr
            .matches("warning: mirror s3://no-such-bucket/x")
            .count(),
        1,
        "{run}"
    );
    assert!(run.stderr.contains("NoSuchBucket"), "{run}");
    assert_eq!(
        m.stored("ComfyUI/models/loras/detail.safetensors"),
        origin.single
    );
    // Whatever the origin received, it was not an S3 credential or signature.
    for request in origin.server.requests() {
        let seen = format!("{request:?}");
        assert!(!seen.contains(KEY_ID) && !seen.contains("X-Amz"), "{seen}");
    }
}

#[test]
fn credentials_are_never_printed_even_when_refused() {
    let moto = Moto::start();
    moto.make_bucket(BUCKET);
    let origin = Origin::start();
    let manifest = origin.manifest("[s3://team-models]");
    let vars = with(origin.vars(), moto.aws_env());
    let m = first_machine(&origin, &manifest, &vars);
    for args in [
        &["mirror", "push", "-vvv"][..],
        &["mirror", "ls", "--json", "-vvv"],
        &["mirror", "push", "--to", "s3://no-such-bucket"],
        &["mirror", "ls", "--from", "s3://no-such-bucket", "-vvv"],
    ] {
        let run = m.mlib(args, &vars);
        m.assert_no_credentials(&run);
    }
    let refused = m.mlib(&["mirror", "push", "--to", "s3://no-such-bucket"], &vars);
    refused.code(1).stderr_has("NoSuchBucket");
    // Without any credential, an s3:// mirror is a configuration error said once; the
    // instance metadata service is never asked.
    let fresh = Machine::new(&manifest);
    let run = fresh.mlib(&["apply", "--auto-approve"], &origin.vars());
    run.success();
    assert_eq!(run.stderr.matches("no AWS credentials").count(), 1, "{run}");
}

#[test]
fn an_https_mirror_serves_by_sha256_and_a_miss_falls_back() {
    let origin = Origin::start();
    let mirror = TestServer::start();
    let base = format!("{}/team", mirror.url());
    let manifest = origin.manifest(&format!("[\"{base}\"]"));
    let vars = origin.vars();
    let first = first_machine(&origin, &manifest, &vars);
    origin.server.clear_requests();
    // What `mirror push` to the bucket behind a CDN would have left there.
    mirror.add_blob(
        &format!("/team/sha256/{}", sha256(&origin.single)),
        origin.single.clone(),
    );
    let second = Machine::new(&manifest);
    std::fs::copy(
        first.env.path("models.lock"),
        second.env.path("models.lock"),
    )
    .unwrap();
    let run = second.mlib(&["apply", "--auto-approve", "-v"], &vars);
    run.success()
        .stderr_has(&format!("detail: from mirror {base}"))
        .stderr_has("not on mirror");
    assert_eq!(
        second.stored("ComfyUI/models/loras/detail.safetensors"),
        origin.single
    );
    assert!(
        !origin
            .server
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/files/detail")),
        "the mirror had it: the origin was not asked"
    );

    // A mirror that is down is said once, and the origin serves.
    drop(mirror);
    let third = Machine::new(&manifest);
    std::fs::copy(first.env.path("models.lock"), third.env.path("models.lock")).unwrap();
    let run = third.mlib(&["apply", "--auto-approve"], &vars);
    run.success();
    assert_eq!(run.stderr.matches("warning: mirror").count(), 1, "{run}");
    assert_eq!(
        third.stored("ComfyUI/models/loras/detail.safetensors"),
        origin.single
    );
}

#[test]
fn mirrors_env_replaces_the_manifest_list_and_bad_ones_are_refused() {
    let env = TestEnv::new();
    env.manifest(
        "version: 1\nstore: ./store\nmirrors:\n  - s3://team-models/ok\n  - s3://Bad_Bucket/x\n  - https://user:pw@cdn.example.com/m\nmodels: {}\napps: {}\n",
    );
    let run = env.mlib(&["validate"]);
    assert_run!(env, "mirror_manifest_errors", run);
    env.manifest(
        "version: 1\nstore: ./store\nmirrors: [s3://team-models/ok]\nmodels: {}\napps: {}\n",
    );
    let run = Run::from(
        env.command()
            .args(["mirror", "ls"])
            .env("MLIB_MIRRORS", "s3://NOPE")
            .output()
            .unwrap(),
    );
    run.code(2).stderr_has("MLIB_MIRRORS");
}
