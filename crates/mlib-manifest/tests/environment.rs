//! `environment:`, `state:` and the variables that identify an environment.

mod common;

use std::path::PathBuf;

use common::{assert_at, ok, only};
use mlib_manifest::DiagnosticKind;

#[test]
fn environment_and_state_are_read_and_optional() {
    let m = ok("
        version: 1
        store: /s
        state: ${MODELS}/state
        environment: pod-1.team
        ");
    assert_eq!(m.environment.as_deref(), Some("pod-1.team"));
    assert_eq!(m.state, Some(PathBuf::from("/mnt/models/state")));

    let m = ok("
        version: 1
        store: /s
        state: ./state
        ");
    assert_eq!(m.state, Some(PathBuf::from("/work/proj/state")));
    assert_eq!(m.environment, None);

    let m = ok("version: 1\nstore: /s\n");
    assert_eq!((m.state, m.environment), (None, None));
}

#[test]
fn an_environment_name_follows_the_name_rules() {
    let d = only("version: 1\nstore: /s\nenvironment: my env\n");
    assert_at(&d, DiagnosticKind::BadName, 3, 16);
    assert_eq!(
        d.message,
        "the environment name `my env` contains ` `: names use letters, digits, `.`, `_` and `-`"
    );
}

#[test]
fn a_state_path_expands_like_store() {
    let d = only("version: 1\nstore: /s\nstate: ${NOPE}/state\n");
    assert_at(&d, DiagnosticKind::UnsetVariable, 3, 8);
}

#[test]
fn identity_vars_are_the_variables_store_and_roots_looked_up() {
    let m = ok("
        version: 1
        store: ${MODELS}/store
        state: ${STATE_ONLY:-/st}
        models:
          a:
            source: ${SOURCE_ONLY:-/src}/a.safetensors
            type: loras
        apps:
          comfyui:
            preset: comfyui
            root: /srv/${WS_USER:-nobody}/ComfyUI
          forge:
            preset: forge
            root: ~/forge
          other:
            preset: forge
            root: ${MODELS}/../forge2
        ");
    assert_eq!(
        m.identity_vars,
        vec![
            ("HOME".to_owned(), Some("/home/tester".to_owned())),
            ("MODELS".to_owned(), Some("/mnt/models".to_owned())),
            ("WS_USER".to_owned(), None),
        ]
    );
    // A literal store and roots look nothing up.
    let m = ok("version: 1\nstore: /s\napps:\n  c:\n    preset: comfyui\n    root: /c\n");
    assert!(m.identity_vars.is_empty());
}
