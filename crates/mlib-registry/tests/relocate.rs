//! Relocation: every path under the old folder moves, by whole components, in one
//! transaction; a second run changes nothing.

use std::path::{Path, PathBuf};

use mlib_fs::FileStamp;
use mlib_registry::{
    FileStat, IndexEntry, LinkKind, NewEnvironment, NewLink, Registry, RelocatedRows, Relocation,
};

fn link(env: i64, target: &str, source: &str) -> NewLink {
    NewLink {
        env,
        model: "m".into(),
        app: "comfyui".into(),
        target: PathBuf::from(target),
        source: PathBuf::from(source),
        kind: LinkKind::Symlink,
        external: true,
        stat: FileStat::default(),
        source_ino: None,
        text: None,
    }
}

fn registry_with_rows(dir: &Path) -> Registry {
    let registry = Registry::open(&dir.join("registry.db")).unwrap();
    registry.set_store("/mnt/a/store").unwrap();
    let env = registry
        .record_environment(&NewEnvironment {
            key: "auto:old".into(),
            name: None,
            label: "/mnt/a/models.yaml".into(),
            manifest: "/mnt/a/models.yaml".into(),
            apps: [
                ("comfyui".to_string(), "/home/u/ComfyUI".to_string()),
                ("forge".to_string(), "/mnt/a/forge".to_string()),
            ]
            .into(),
            models: vec!["checkpoints/sdxl/base".into()],
        })
        .unwrap()
        .id;
    let other = registry
        .record_environment(&NewEnvironment {
            key: "auto:other".into(),
            name: None,
            label: "/mnt/ab/models.yaml".into(),
            manifest: "/mnt/ab/models.yaml".into(),
            apps: [("comfyui".to_string(), "/mnt/ab/ComfyUI".to_string())].into(),
            models: Vec::new(),
        })
        .unwrap()
        .id;
    registry
        .insert_links(&[
            link(
                env,
                "/home/u/ComfyUI/models/loras/x",
                "/mnt/a/store/loras/x",
            ),
            link(env, "/mnt/a/forge/models/Lora/x", "/mnt/a/store/loras/x"),
            link(other, "/mnt/ab/ComfyUI/models/loras/x", "/mnt/ab/store/x"),
        ])
        .unwrap();
    registry
        .journal_links(env, &[PathBuf::from("/mnt/a/forge/models/Lora/y")])
        .unwrap();
    let stamp = FileStamp {
        size: 1,
        mtime_ns: 1,
        ino: 1,
        ctime_ns: 1,
    };
    registry
        .index_put(&IndexEntry::new(
            "loras/x".into(),
            &stamp,
            "s".into(),
            "b".into(),
        ))
        .unwrap();
    registry
}

#[test]
fn every_path_under_the_old_folder_moves_once() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = registry_with_rows(tmp.path());
    let serial = registry.serial().unwrap();
    let forge_link = registry
        .link_at(Path::new("/mnt/a/forge/models/Lora/x"))
        .unwrap()
        .unwrap();
    let new_stat = FileStat {
        dev: 9,
        ino: 99,
        mtime_ns: 999,
        size: 20,
    };
    let stats = [(forge_link.id, new_stat)];
    let rekey = [("auto:old".to_string(), "auto:new".to_string())];
    let relocation = Relocation {
        from: Path::new("/mnt/a"),
        to: Path::new("/media/disk"),
        stats: &stats,
        rekey: &rekey,
    };
    let expected = RelocatedRows {
        meta_store: 1,
        environments_manifest: 1,
        environments_apps: 1,
        environments_key: 1,
        links_target: 1,
        links_source: 2,
        links_stat: 1,
        links_superseded: 0,
        // Index paths are relative to the store: a move never changes them.
        file_index_path: 0,
        pending_target: 1,
    };
    assert_eq!(registry.relocation_preview(&relocation).unwrap(), expected);
    assert_eq!(
        registry.serial().unwrap(),
        serial,
        "a preview writes nothing"
    );
    assert_eq!(registry.relocate(&relocation).unwrap(), expected);
    assert_eq!(registry.serial().unwrap(), serial + 1);

    assert_eq!(
        registry.store().unwrap().as_deref(),
        Some("/media/disk/store")
    );
    let env = registry.environment("auto:new").unwrap().expect("re-keyed");
    assert_eq!(env.manifest, "/media/disk/models.yaml");
    assert_eq!(env.apps["forge"], "/media/disk/forge");
    assert_eq!(env.apps["comfyui"], "/home/u/ComfyUI");
    let moved = registry
        .link_at(Path::new("/media/disk/forge/models/Lora/x"))
        .unwrap()
        .unwrap();
    assert_eq!(moved.id, forge_link.id);
    assert_eq!(moved.source, Path::new("/media/disk/store/loras/x"));
    assert_eq!(moved.stat, new_stat);
    let home = registry
        .link_at(Path::new("/home/u/ComfyUI/models/loras/x"))
        .unwrap()
        .unwrap();
    assert_eq!(home.source, Path::new("/media/disk/store/loras/x"));
    // `/mnt/ab` is not under `/mnt/a`.
    let other = registry
        .link_at(Path::new("/mnt/ab/ComfyUI/models/loras/x"))
        .unwrap()
        .unwrap();
    assert_eq!(other.source, Path::new("/mnt/ab/store/x"));
    assert_eq!(
        registry
            .environment("auto:other")
            .unwrap()
            .unwrap()
            .manifest,
        "/mnt/ab/models.yaml"
    );
    let pending: Vec<PathBuf> = registry
        .pending()
        .unwrap()
        .into_iter()
        .map(|p| p.target)
        .collect();
    assert_eq!(pending, [PathBuf::from("/media/disk/forge/models/Lora/y")]);

    // Again: nothing is left under the old folder.
    assert_eq!(
        registry.relocate(&relocation).unwrap(),
        RelocatedRows::default()
    );
    assert_eq!(registry.serial().unwrap(), serial + 1);
}

#[test]
fn a_record_already_at_the_new_path_supersedes_the_moved_one() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = registry_with_rows(tmp.path());
    let env = registry.environment("auto:old").unwrap().unwrap().id;
    // An apply after the move recorded the link at its new place already.
    registry
        .insert_link(&link(
            env,
            "/media/disk/forge/models/Lora/x",
            "/media/disk/store/loras/x",
        ))
        .unwrap();
    let relocation = Relocation {
        from: Path::new("/mnt/a"),
        to: Path::new("/media/disk"),
        stats: &[],
        rekey: &[],
    };
    let rows = registry.relocate(&relocation).unwrap();
    assert_eq!(rows.links_superseded, 1);
    assert_eq!(rows.links_target, 0);
    assert!(
        registry
            .link_at(Path::new("/mnt/a/forge/models/Lora/x"))
            .unwrap()
            .is_none()
    );
    assert_eq!(registry.links().unwrap().len(), 3);
}
