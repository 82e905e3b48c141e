//! What is in an app's folder before it becomes one link to the store's (`link: folder`):
//! only the placeholder files the app ships, which may go, or anything else, which is kept
//! under a backup name.
//!
//! The placeholders, as each app's repository has them:
//! - ComfyUI (Comfy-Org/ComfyUI a125cd84) and Fooocus (lllyasviel/Fooocus 59f183ab): an empty
//!   `put_*_here` file in each type's folder (`models/checkpoints/put_checkpoints_here`,
//!   `models/vae_approx/put_taesd_encoder_pth_and_taesd_decoder_pth_here`).
//! - Forge (lllyasviel/stable-diffusion-webui-forge dfdcbab6): `Put Stable Diffusion
//!   checkpoints here.txt`, `Put VAE here.txt`, `put_text_encoders_here.txt`, `put svd
//!   here.txt`, and `models/ESRGAN/ESRGAN_here`.
//! - SD.Next (vladmandic/sdnext 058a7f0c): `models/.placeholder`.
//!
//! Files those repositories also keep under `models/` are not placeholders and are kept:
//! ComfyUI's and Fooocus's `configs/*.yaml`, Fooocus's prompt-expansion model, Forge's
//! `VAE-approx/model.pt`. A folder holding them is moved to a backup, never deleted.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The placeholders above are empty, or hold their own name and a newline (Forge's
/// `put_text_encoders_here.txt`, `ESRGAN_here`); anything else is someone's note.
const PLACEHOLDER_MAX_BYTES: u64 = 256;

/// Whether a name is one the apps give their placeholders.
fn placeholder_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    if matches!(lower.as_str(), ".placeholder" | ".gitkeep") {
        return true;
    }
    let stem = lower.strip_suffix(".txt").unwrap_or(&lower);
    let put_here = (stem.starts_with("put_") || stem.starts_with("put "))
        && (stem.ends_with("_here") || stem.ends_with(" here"));
    put_here || stem == "esrgan_here"
}

/// Whether the regular file at `path` (named `name`, `len` bytes long) is an app's
/// placeholder: a placeholder's name, and empty or holding just that name.
pub fn is_placeholder(path: &Path, name: &OsStr, len: u64) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    if !placeholder_name(name) || len > PLACEHOLDER_MAX_BYTES {
        return false;
    }
    if len == 0 {
        return true;
    }
    let stem = name.strip_suffix(".txt").unwrap_or(name);
    std::fs::read_to_string(path).is_ok_and(|text| text.trim_end() == stem)
}

/// What happens to a real folder where a whole-folder link goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "clear", rename_all = "snake_case")]
pub enum Clear {
    /// It holds only placeholders (and empty folders, and mlib's own links that the plan
    /// removes first): they are removed.
    Placeholders { files: Vec<PathBuf> },
    /// It holds something else (`because`, the first such path found): it is renamed to
    /// `to`, a name no earlier backup has.
    Backup { to: PathBuf, because: PathBuf },
}

/// Looks through the real folder `dir`; `ours` says which paths are mlib's own links that
/// are removed before the folder link is made.
pub fn clear_for(dir: &Path, ours: &dyn Fn(&Path) -> bool) -> io::Result<Clear> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let entry = entry?;
            let path = entry.path();
            if ours(&path) {
                continue;
            }
            let meta = entry.metadata()?;
            if meta.is_dir() {
                pending.push(path);
            } else if meta.is_file() && is_placeholder(&path, &entry.file_name(), meta.len()) {
                files.push(path);
            } else {
                return Ok(Clear::Backup {
                    to: backup_name(dir),
                    because: path,
                });
            }
        }
    }
    files.sort();
    Ok(Clear::Placeholders { files })
}

/// `models.backup`, or `models.backup.1`, `.2`, ...: the first name nothing has.
pub fn backup_name(dir: &Path) -> PathBuf {
    let base = {
        let mut name = dir.file_name().unwrap_or_default().to_os_string();
        name.push(".backup");
        dir.with_file_name(name)
    };
    if base.symlink_metadata().is_err() {
        return base;
    }
    (1u32..)
        .map(|n| {
            let mut name = base.file_name().unwrap_or_default().to_os_string();
            name.push(format!(".{n}"));
            base.with_file_name(name)
        })
        .find(|candidate| candidate.symlink_metadata().is_err())
        .expect("some numbered backup name is free")
}

/// Empties `dir` of what [`clear_for`] found there and removes it, or renames it to a fresh
/// backup name when it holds anything else now. Returns the backup's name when it made one.
/// Placeholders are checked again one by one: the folder may have changed since the plan.
pub fn clear(dir: &Path, ours: &dyn Fn(&Path) -> bool) -> io::Result<Option<PathBuf>> {
    if let Clear::Placeholders { files } = clear_for(dir, ours)? {
        for file in &files {
            std::fs::remove_file(file)?;
        }
        if remove_empty_tree(dir).is_ok() {
            return Ok(None);
        }
        // Something appeared meanwhile: keep it, with the folder, under a backup name.
    }
    loop {
        let to = backup_name(dir);
        match mlib_fs::platform::rename_noreplace(dir, &to) {
            Ok(()) => return Ok(Some(to)),
            // Another backup took the name between the look and the rename.
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
}

/// Removes `dir` and the folders under it, which must all be empty (rmdir fails otherwise).
fn remove_empty_tree(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_empty_tree(&entry.path())?;
        }
    }
    std::fs::remove_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apps_placeholders_are_recognised_and_a_persons_notes_are_not() {
        let tmp = tempfile::tempdir().unwrap();
        let check = |name: &str, text: &str| {
            let path = tmp.path().join(name);
            std::fs::write(&path, text).unwrap();
            is_placeholder(&path, OsStr::new(name), text.len() as u64)
        };
        for name in [
            "put_checkpoints_here",
            "put_taesd_encoder_pth_and_taesd_decoder_pth_here",
            "Put Stable Diffusion checkpoints here.txt",
            "Put VAE here.txt",
            "put svd here.txt",
            ".placeholder",
            ".gitkeep",
        ] {
            assert!(check(name, ""), "{name}");
        }
        // Forge's two placeholders that hold their own name.
        assert!(check(
            "put_text_encoders_here.txt",
            "put_text_encoders_here\n"
        ));
        assert!(check("ESRGAN_here", "ESRGAN_here\n"));
        for name in [
            "anything_v3.yaml",
            "model.pt",
            "put_here.safetensors",
            "here",
            ".keep",
        ] {
            assert!(!check(name, ""), "{name}");
        }
        assert!(
            !check("Put your notes here.txt", "the good lora is X\n"),
            "a placeholder's name with someone's words in it is theirs"
        );
        assert!(!check("put_loras_here", &"x".repeat(4096)));
    }

    #[test]
    fn a_folder_of_placeholders_is_removed_and_anything_else_backed_up() {
        let tmp = tempfile::tempdir().unwrap();
        let models = tmp.path().join("models");
        std::fs::create_dir_all(models.join("loras")).unwrap();
        std::fs::create_dir_all(models.join("empty")).unwrap();
        std::fs::write(models.join("loras/put_loras_here"), "").unwrap();
        let none = |_: &Path| false;
        assert!(matches!(
            clear_for(&models, &none).unwrap(),
            Clear::Placeholders { files } if files.len() == 1
        ));
        assert_eq!(clear(&models, &none).unwrap(), None);
        assert!(!models.exists());

        std::fs::create_dir_all(models.join("configs")).unwrap();
        std::fs::write(models.join("configs/v1.yaml"), "model: x").unwrap();
        std::fs::create_dir(tmp.path().join("models.backup")).unwrap();
        let backup = clear(&models, &none).unwrap().unwrap();
        assert_eq!(backup, tmp.path().join("models.backup.1"));
        assert!(backup.join("configs/v1.yaml").is_file());
        assert!(tmp.path().join("models.backup").is_dir(), "never replaced");
    }
}
