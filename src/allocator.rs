//! The global allocator: mimalloc (its v2 line), told to return freed memory at once.
//!
//! A no-op plan of a large manifest is hundreds of thousands of small allocations, and
//! mimalloc makes it about a quarter faster than glibc's malloc. By default it gives freed
//! memory back to the system 10 ms after it is freed; a plan frees most of what it read
//! (the parsed manifest, the link records, the snapshot) well before it ends, so that delay
//! made mimalloc's peak RSS 20 MiB larger than glibc's. Purging at once keeps its speed at
//! glibc's memory (docs/PERFORMANCE.md), whatever the system's transparent huge pages setting.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v2's `include/mimalloc.h` (the 16th `mi_option_t`;
/// `libmimalloc-sys` exports no constant for it). The test below holds this number to the
/// name mimalloc reads from the environment.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets the purge delay to 0, unless `MIMALLOC_PURGE_DELAY` is in the environment (mimalloc
/// has read it then, and the person who set it wins). Call first in `main`, before any
/// other thread exists: mimalloc's option setters are not thread safe.
#[allow(unsafe_code)]
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: one integer stored in mimalloc's option table, by the only thread there is
        // yet; every value of the purge delay is valid (0: purge at once).
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads option `PURGE_DELAY` in a copy of this test process started with
    /// `MIMALLOC_PURGE_DELAY=123`: mimalloc sets it from that variable only if it is the
    /// purge delay.
    #[test]
    fn the_option_number_is_the_purge_delay() {
        #[allow(unsafe_code)]
        // SAFETY: reads one integer from mimalloc's option table.
        let value = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        if std::env::var_os("MLIB_ALLOCATOR_CHILD").is_some() {
            println!("purge-delay={value}");
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "allocator::tests::the_option_number_is_the_purge_delay",
            ])
            .args(["--nocapture", "--test-threads", "1"])
            .env("MLIB_ALLOCATOR_CHILD", "1")
            .env("MIMALLOC_PURGE_DELAY", "123")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("purge-delay=123"),
            "option {PURGE_DELAY} is not mimalloc's purge delay:\n{stdout}"
        );
    }

    #[test]
    fn tuned_means_purged_at_once_unless_the_environment_says_otherwise() {
        tune();
        #[allow(unsafe_code)]
        // SAFETY: reads one integer from mimalloc's option table.
        let value = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        match std::env::var("MIMALLOC_PURGE_DELAY") {
            Ok(set) => assert_eq!(value.to_string(), set),
            Err(_) => assert_eq!(value, 0),
        }
    }
}
