//! Credentials in URL sources: written literally they are refused (and never echoed); as
//! `${VAR}` they are expanded only for the request, kept as written everywhere else, and
//! redacted from whatever a server echoes back.

use crate::support::TestEnv;

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
