//! Credentials in URL sources: written literally they are refused (and never echoed); as
//! `${VAR}` they are expanded only for the request, kept as written everywhere else, and
//! redacted from whatever a server echoes back.

use mlib_testserver::{Blob, Credential, TestServer};

use crate::support::{Run, TestEnv, model_bytes, sha256};

fn manifest_with_source(env: &TestEnv, source: &str) {
    env.manifest(&format!(
        "version: 1\nstore: ./store\nmodels:\n  up:\n    source: {source}\n    sha256: {}\n    type: upscale_models\n",
        "0".repeat(64)
    ));
}

#[test]
fn each_literal_credential_form_is_refused_with_its_place_and_never_echoed() {
    let env = TestEnv::new();
    let cases = [
        (
            "https://host/x.pth?token=hunter2",
            "× models.yaml:5:{col}: model `up`: the URL holds a literal credential (`token=***`)",
            "`source: https://host/x.pth?token=${MY_TOKEN}`",
        ),
        (
            "https://me:hunter2@host/x.pth",
            "× models.yaml:5:{col}: model `up`: the URL holds a literal credential (`***@`)",
            "`source: https://me:${MY_PASSWORD}@host/x.pth`",
        ),
        (
            "https://hunter2@host/x.pth",
            "× models.yaml:5:{col}: model `up`: the URL holds a literal credential (`***@`)",
            "`source: https://${MY_TOKEN}@host/x.pth`",
        ),
        (
            "https://host/x.pth?download=1&API_KEY=hunter2",
            "× models.yaml:5:{col}: model `up`: the URL holds a literal credential (`API_KEY=***`)",
            "`source: https://host/x.pth?download=1&API_KEY=${MY_API_KEY}`",
        ),
        (
            "https://h/x.pth?X-Amz-Credential=hunter2&X-Goog-Signature=hunter2",
            "× models.yaml:5:{col}: model `up`: the URL holds literal credentials \
             (`X-Amz-Credential=***`, `X-Goog-Signature=***`)",
            "`source: https://h/x.pth?X-Amz-Credential=${MY_X_AMZ_CREDENTIAL}&X-Goog-Signature=${MY_X_GOOG_SIGNATURE}`",
        ),
        (
            "https://d.cloudfront.net/x.pth?Policy=hunter2&Signature=hunter2&Key-Pair-Id=hunter2",
            "× models.yaml:5:{col}: model `up`: the URL holds literal credentials (`Policy=***`, \
             `Signature=***`, `Key-Pair-Id=***`)",
            "`source: https://d.cloudfront.net/x.pth?Policy=${MY_POLICY}&Signature=${MY_SIGNATURE}&Key-Pair-Id=${MY_KEY_PAIR_ID}`",
        ),
    ];
    for (source, line, fix) in cases {
        manifest_with_source(&env, source);
        let run = env.mlib(&["validate"]);
        // The caret is on the first value (`    source: ` takes 12 columns).
        let col = 13 + source.find("hunter2").unwrap();
        run.code(1)
            .stderr_line(&line.replace("{col}", &col.to_string()));
        let flat: String = run.stderr.split_whitespace().collect();
        let fix: String = fix.split_whitespace().collect();
        assert!(flat.contains(&fix), "no {fix} in\n{run}");
        assert!(
            !run.stderr.contains("hunter2"),
            "the credential leaked\n{run}"
        );
        let json = env.mlib(&["validate", "--json"]);
        assert!(!json.stdout.contains("hunter2"), "{json}");
    }
}

#[test]
fn a_variable_elsewhere_in_a_url_is_refused() {
    let env = TestEnv::new();
    manifest_with_source(&env, "https://host/${DIR}/x.pth");
    env.mlib(&["validate"]).code(1).stderr_line(
        "× models.yaml:5:26: model `up`: `${DIR}` is in the path of the URL, where variables are \
         not expanded",
    );
}

const TOKEN: &str = "tok-SECRET-0123456789";

/// Every file under `dir` (recursively) whose bytes contain `needle`.
fn files_containing(dir: &std::path::Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            } else if std::fs::read(&path)
                .is_ok_and(|bytes| String::from_utf8_lossy(&bytes).contains(needle))
            {
                found.push(path);
            }
        }
    }
    found
}

fn run_with(env: &TestEnv, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut cmd = env.command();
    cmd.args(args);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    Run::from(cmd.output().unwrap())
}

fn url_manifest(env: &TestEnv, models: &[(&str, &str, &[u8])]) {
    let mut text = String::from("version: 1\nstore: ./store\nmodels:\n");
    for (name, source, bytes) in models {
        text.push_str(&format!(
            "  {name}:\n    source: {source}\n    sha256: {}\n    type: upscale_models\n",
            sha256(bytes)
        ));
    }
    text.push_str("apps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n");
    env.manifest(&text);
}

#[test]
fn a_token_variable_is_sent_but_stays_a_variable_everywhere_else() {
    let (env, server) = (TestEnv::new(), TestServer::start());
    let bytes = model_bytes("up", 50_000);
    let url = server.add(
        "/files/up.pth",
        Blob::new(bytes.clone()).require(Credential::Query {
            name: "token".into(),
            value: TOKEN.into(),
        }),
    );
    let source = format!("{url}?token=${{TOKEN}}");
    url_manifest(&env, &[("up", &source, &bytes)]);
    let vars = [("TOKEN", TOKEN)];

    let plan = run_with(&env, &["plan"], &vars);
    plan.success()
        .stderr_has(&format!("+ add      up from {source}, 48.8 KiB"));
    let plan_json = run_with(&env, &["plan", "--json"], &vars);
    plan_json.success();
    assert!(plan_json.stdout.contains(&source), "{plan_json}");
    let apply = run_with(&env, &["apply", "--auto-approve", "--json"], &vars);
    apply.success();
    assert!(apply.stdout.contains(&source), "{apply}");
    assert_eq!(
        std::fs::read(env.path("ComfyUI/models/upscale_models/up.pth")).unwrap(),
        bytes
    );

    // The server got the value...
    let sent = server.requests();
    assert!(
        sent.iter()
            .any(|r| r.path == format!("/files/up.pth?token={TOKEN}")),
        "{sent:#?}"
    );
    // ...and nothing written or shown has it: the lock and metadata.json keep `${TOKEN}`.
    for run in [&plan, &plan_json, &apply] {
        assert!(
            !run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN),
            "{run}"
        );
    }
    assert_eq!(
        files_containing(&env.root, TOKEN),
        Vec::<std::path::PathBuf>::new()
    );
    let lock = std::fs::read_to_string(env.path("models.lock")).unwrap();
    assert!(lock.contains(&format!("url = \"{source}\"")), "{lock}");
    let metadata = files_containing(&env.path("store"), &source);
    assert!(
        metadata.iter().any(|p| p.ends_with("metadata.json")),
        "{metadata:?}"
    );

    // Another value is the same source: the lock stays fresh and nothing is requested.
    server.clear_requests();
    run_with(
        &env,
        &["plan", "--locked", "--detailed-exitcode"],
        &[("TOKEN", "other")],
    )
    .code(0);
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
}

#[test]
fn an_unset_variable_is_named_when_the_request_is_made() {
    let (env, server) = (TestEnv::new(), TestServer::start());
    let bytes = model_bytes("up", 1000);
    let url = server.add_blob("/files/up.pth", bytes.clone());
    url_manifest(&env, &[("up", &format!("{url}?token=${{TOKEN}}"), &bytes)]);
    let source = format!("{url}?token=${{TOKEN}}");
    let unset = "environment variable TOKEN is not set, and the source URL of model up needs it.";
    // Validation needs no value: the variable is read only for the request.
    run_with(&env, &["validate"], &[]).success();
    run_with(&env, &["plan"], &[]).code(1).stderr_line(&format!(
        "error: cannot resolve model `up` ({source}): {unset}"
    ));
    assert!(server.requests().is_empty());
    // Locked while it was set, downloaded after it was unset: the same error, from the fetch.
    run_with(&env, &["lock"], &[("TOKEN", "x")]).success();
    server.clear_requests();
    run_with(&env, &["apply", "--auto-approve"], &[])
        .code(1)
        .stderr_line(&format!(
            "error: + add      up from {source}, 1000 B: {unset}"
        ));
    assert!(server.requests().is_empty());
}

#[test]
fn a_rejected_credential_the_server_echoes_is_redacted() {
    let (env, server) = (TestEnv::new(), TestServer::start());
    let bytes = model_bytes("up", 1000);
    let blob = Blob::new(bytes.clone());
    let url = server.add(
        "/files/up.pth",
        blob.clone().require(Credential::Query {
            name: "dl".into(),
            value: "right".into(),
        }),
    );
    let basic = server.add(
        "/files/basic.pth",
        blob.require(Credential::Basic {
            user: "alice".into(),
            password: "right".into(),
        }),
    );
    // A parameter whose name says nothing of a secret: its value is one all the same.
    url_manifest(&env, &[("up", &format!("{url}?dl=${{TOKEN}}"), &bytes)]);
    let run = run_with(&env, &["plan"], &[("TOKEN", TOKEN)]);
    run.code(1)
        .stderr_has("HTTP 403 from ")
        .stderr_has("invalid dl: ***");
    assert!(!run.stderr.contains(TOKEN), "{run}");

    let with_user = basic.replacen("http://", "http://${USER_NAME}:${PASSWORD}@", 1);
    url_manifest(&env, &[("basic", &with_user, &bytes)]);
    let password = "pw-SECRET-987654";
    let run = run_with(
        &env,
        &["plan"],
        &[("USER_NAME", "alice"), ("PASSWORD", password)],
    );
    run.code(1)
        .stderr_has("HTTP 403 from ")
        .stderr_has("invalid credentials *** (Authorization: Basic ***)");
    let encoded = "YWxpY2U6cHctU0VDUkVULTk4NzY1NA=="; // alice:pw-SECRET-987654
    for secret in [password, encoded, "alice:pw"] {
        assert!(!run.stderr.contains(secret), "{secret} leaked\n{run}");
    }
}

#[test]
fn user_info_becomes_basic_auth_for_its_own_host_only() {
    let (env, server) = (TestEnv::new(), TestServer::start());
    let (direct, moved) = (model_bytes("direct", 3000), model_bytes("moved", 3000));
    let password = "pw-SECRET-987654";
    let direct_url = server.add(
        "/files/direct.pth",
        Blob::new(direct.clone()).require(Credential::Basic {
            user: "alice".into(),
            password: password.into(),
        }),
    );
    let cdn = server.add_blob("/cdn/moved.pth", moved.clone());
    let moved_url = server.add_redirect("/files/moved.pth", &cdn);
    let userinfo = |url: &str| url.replacen("http://", "http://${USER_NAME}:${PASSWORD}@", 1);
    url_manifest(
        &env,
        &[
            ("direct", &userinfo(&direct_url), &direct),
            ("moved", &userinfo(&moved_url), &moved),
        ],
    );
    let vars = [("USER_NAME", "alice"), ("PASSWORD", password)];
    let run = run_with(&env, &["apply", "--auto-approve"], &vars);
    run.success();
    assert!(!run.stderr.contains(password), "{run}");
    for (name, bytes) in [("direct", &direct), ("moved", &moved)] {
        let linked = env.path(&format!("ComfyUI/models/upscale_models/{name}.pth"));
        assert_eq!(&std::fs::read(linked).unwrap(), bytes);
    }
    let requests = server.requests();
    let auth = |cdn: bool| {
        requests
            .iter()
            .filter(|r| r.cdn == cdn)
            .map(|r| r.header("authorization").is_some())
            .collect::<Vec<_>>()
    };
    assert!(
        auth(false).iter().all(|&a| a),
        "the main host always got it: {requests:#?}"
    );
    assert!(
        !auth(true).is_empty() && auth(true).iter().all(|&a| !a),
        "{requests:#?}"
    );
    assert!(
        requests.iter().all(|r| !r.path.contains('@')),
        "{requests:#?}"
    );
    assert_eq!(
        files_containing(&env.root, password),
        Vec::<std::path::PathBuf>::new()
    );
}
