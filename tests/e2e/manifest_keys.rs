//! Errors about where a manifest puts things and what it names: the store, the state folder,
//! app roots, the environment's name. Each is refused by the real binary with its place.

use crate::support::TestEnv;

#[test]
fn a_bad_environment_name_is_refused_at_its_place() {
    let env = TestEnv::new();
    env.manifest("version: 1\nstore: ./store\nenvironment: ../up\n");
    env.mlib(&["validate"]).code(1).stderr_line(
        "× models.yaml:3:16: the environment name `../up` contains `/`: a name cannot hold a \
         path separator",
    );
}
