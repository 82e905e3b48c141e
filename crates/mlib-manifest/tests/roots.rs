//! Where the store, the state folder and app roots may be: never `/`, a system folder or the
//! home folder itself.

mod common;

use common::{assert_at, ok, only};
use mlib_manifest::DiagnosticKind;

#[test]
fn the_filesystem_root_system_folders_and_home_are_refused() {
    let d = only("version: 1\nstore: /\n");
    assert_at(&d, DiagnosticKind::UnsafeRoot, 2, 8);
    assert_eq!(d.message, "`store` is `/`, the root of the filesystem");
    assert_eq!(
        d.hint,
        "use a folder of its own, e.g. `store: ~/models`: mlib creates and removes files and \
         links under it"
    );

    // After expansion, `..` and trailing slashes.
    let d = only("version: 1\nstore: ${MODELS}/../../usr/local/\n");
    assert_eq!(d.message, "`store` is `/usr/local`, a system folder");

    let d = only("version: 1\nstore: /s\nstate: /proc/self\n");
    assert_at(&d, DiagnosticKind::UnsafeRoot, 3, 8);
    assert_eq!(
        d.message,
        "`state` `/proc/self` is inside `/proc`, a system folder"
    );
    assert!(d.hint.contains("`state: ~/.local/state/mlib`"), "{d:#?}");

    let d = only("version: 1\nstore: /s\napps:\n  c:\n    preset: comfyui\n    root: ~/\n");
    assert_at(&d, DiagnosticKind::UnsafeRoot, 6, 11);
    assert_eq!(
        d.message,
        "app `c`: `root` is `/home/tester`, your home folder itself"
    );
    assert!(d.hint.contains("`root: ~/ComfyUI`"), "{d:#?}");
}

#[test]
fn folders_of_their_own_are_fine_even_in_system_places() {
    ok("
        version: 1
        store: /dev/shm/models
        state: /tmp/mlib-state
        apps:
          c:
            preset: comfyui
            root: ~/ComfyUI
          f:
            preset: forge
            root: /usr/local/forge
        ");
}
