//! End-to-end tests: the real `mlib` binary on temp directories (and, for remote sources,
//! real HTTP servers on 127.0.0.1). One test binary with modules keeps link time down.

mod support;

mod add;
mod apply;
mod bulk;
mod bundle;
mod conflicts;
mod containers;
mod crash;
mod environments;
mod examples;
mod fast_path;
mod flags;
mod folder_links;
mod hostile;
mod import;
mod init;
mod inspect;
mod integrity;
mod interrupt;
mod link_modes;
mod listing;
mod lock;
mod lock_files;
mod manifest;
mod manifest_keys;
mod mirrors;
mod output;
mod ownership;
mod plan_checks;
mod recovery;
mod relocate;
mod remote;
mod saved_plan;
mod shell_help;
mod state;
mod traces;
mod upgrade;
mod upkeep;
mod url_secrets;
mod versions;
mod workflow;
