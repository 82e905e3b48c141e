//! Where the store, the state folder and app roots may be: never `/`, a system folder or the
//! home folder itself, and the store never overlapping an app's folders.

mod common;

use common::{assert_at, errors, ok, only};
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

#[test]
fn a_store_holding_an_apps_folders_is_refused() {
    let all = errors(
        "
        version: 1
        store: ./ComfyUI/models
        layout: flat
        apps:
          comfyui:
            preset: comfyui
            root: ./ComfyUI
        ",
    );
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_at(&all[0], DiagnosticKind::NestedStore, 2, 8);
    assert_eq!(
        all[0].message,
        "app `comfyui`'s folder `models/animatediff_models` (for `animatediff_models`) and 37 \
         more are inside `store`"
    );
    assert_eq!(
        all[0].hint,
        "keep the store out of app `comfyui`'s model folders, e.g. `store: ~/models`: mlib links \
         each model from the store into those folders"
    );
}

#[test]
fn a_store_that_is_or_lies_inside_an_apps_folder_is_refused() {
    let d = only(
        "
        version: 1
        store: /c/models/loras/
        apps:
          comfyui:
            preset: comfyui
            root: /c
        ",
    );
    assert_eq!(
        d.message,
        "`store` is app `comfyui`'s folder `models/loras` (for `loras`)"
    );
    // `folders:` overrides count, joined onto the root.
    let d = only(
        "
        version: 1
        store: /data/shared/store
        apps:
          tool:
            root: /data
            folders: { loras: ./shared }
        ",
    );
    assert_eq!(
        d.message,
        "`store` is inside app `tool`'s folder `./shared` (for `loras`)"
    );
    // One folder inside the store.
    let d = only(
        "
        version: 1
        store: /data
        apps:
          tool:
            root: /data/tool
            folders: { loras: lora }
        ",
    );
    assert_eq!(
        d.message,
        "app `tool`'s folder `lora` (for `loras`) is inside `store`"
    );
}

#[test]
fn a_store_beside_the_model_folders_is_fine() {
    ok("
        version: 1
        store: ./ComfyUI/store
        apps:
          comfyui:
            preset: comfyui
            root: ./ComfyUI
          tool:
            root: ./ComfyUI
            folders: { loras: models/loras }
        ");
}
