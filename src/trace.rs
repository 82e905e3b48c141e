//! The tracing subscriber: off unless `-vv`, `-vvv` or `RUST_LOG` asked for traces (see
//! `settings.rs`), then plain lines on stderr, with the time since the start, so traces never
//! mix with `--json` events or a plan's JSON on stdout.
//!
//! The libraries trace what explains their decisions without a debugger (which reader read the
//! manifest, where a model's lock entry came from, a download's retries and resume
//! offset, where the state folder is); they never trace a token or an expanded `${VAR}` value
//! (messages go through the same redaction as errors). Other crates' `log` records are not
//! bridged (ureq logs request headers).

use tracing_subscriber::EnvFilter;

/// Installs the subscriber for `filter` (`EnvFilter` directives); `None`: no traces at all.
/// Directives that do not parse are skipped, so a mistyped `RUST_LOG` never stops a command.
pub fn init(filter: Option<&str>) {
    let Some(filter) = filter else {
        return;
    };
    let filter = EnvFilter::builder().parse_lossy(filter);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_timer(tracing_subscriber::fmt::time::uptime())
        .try_init();
}
