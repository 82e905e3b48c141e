//! Filesystem primitives shared by every mlib crate.
//!
//! mlib promises that a kill at any moment leaves nothing it cannot recognise and finish or
//! undo. That rests on three things kept here, in one place:
//!
//! - **One temporary name.** Everything mlib writes under a temporary name is called
//!   `.{name}.mlib-tmp-{pid}-{start}-{n}` ([`temp`]): hidden from apps, recognisable by its
//!   pattern, and naming the process that wrote it (its pid and start time, so a reused pid
//!   is not mistaken for the writer). The next run removes those whose writer is gone.
//! - **One way to replace a file.** [`AtomicFile`] writes under such a name, fsyncs the file,
//!   renames it over the destination and fsyncs the folder, so a reader (or a crash) sees the
//!   old file or the new one, never half of one, and the rename survives a power cut.
//! - **Who is alive.** [`Process`] identifies a process by pid and start time, for temporary
//!   names and for the apply lock's holder.
//!
//! Also [`FileStamp`] (what says a file is unchanged without reading it) and
//! [`is_network_fs`] (where SQLite's WAL must not be used).
//!
//! [`direct`] writes a file without the page cache (downloads, large copies into the store).
//!
//! And [`platform`]: every call into the operating system that std does not make portably
//! (`std::os::unix`, `rustix`), so that a port to another system touches that one module.

mod atomic;
pub mod direct;
pub mod par;
pub mod platform;
mod process;
mod stamp;
pub mod temp;

pub use atomic::{AtomicFile, parent_dir, write_atomic};
pub use platform::{is_network_fs, is_writable, mount_id, sync_dir};
pub use process::Process;
pub use stamp::FileStamp;
