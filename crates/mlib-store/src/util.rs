//! Small filesystem helpers shared by the store modules.

pub(crate) use mlib_fs::platform::make_read_only;
pub(crate) use mlib_fs::sync_dir;
pub(crate) use mlib_fs::temp::remove_tree as remove_any;
