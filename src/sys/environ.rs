//! Setting the environment for the application (`--env KEY=VALUE`).
//!
//! `std::env::set_var` is unsafe: another thread reading the environment at the same
//! moment (getenv in a C library, DNS resolution) may see it half-changed. Here it runs
//! only in a single-threaded process: a worker right after fork, before its application
//! is built, or the master around a preloaded build, and each function checks that.

use std::ffi::OsString;

use crate::sys::fork;

/// What [`set`] replaced, for [`restore`]: each key with its value before, if it had one.
pub type Saved = Vec<(String, Option<OsString>)>;

/// Sets each `KEY=VALUE` in order (a later one for the same key wins), and returns what
/// they replaced. Nothing is set in a process with threads running: the caller's start
/// then fails on that anyway ([`crate::master`] refuses to fork from one).
pub fn set(vars: &[(String, String)]) -> Saved {
    if vars.is_empty() || fork::threads() != 1 {
        return Saved::new();
    }
    let saved = vars
        .iter()
        .map(|(key, _)| (key.clone(), std::env::var_os(key)))
        .collect();
    for (key, value) in vars {
        // SAFETY: the process has one thread (checked above), so nothing reads the
        // environment meanwhile; the key is not empty and neither holds `=` in the key
        // or a NUL byte (the flag's parser refuses them, and `Config::check` in a
        // configuration built in code), so set_var does not panic.
        unsafe { std::env::set_var(key, value) };
    }
    saved
}

/// Puts back what [`set`] replaced, last first (so a key set twice gets its first value
/// back), in a process still single-threaded; with threads running it is left.
pub fn restore(saved: Saved) {
    if fork::threads() != 1 {
        return;
    }
    for (key, value) in saved.into_iter().rev() {
        // SAFETY: single-threaded (checked above), as for `set`; the key was accepted
        // by `set`.
        unsafe {
            match value {
                Some(value) => std::env::set_var(&key, value),
                None => std::env::remove_var(&key),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The harness runs tests beside other threads, so this is the case of a program
    /// that started threads before `run_main`: nothing is set, nothing restored. Setting
    /// and restoring are exercised by the integration tests, in workers and a preload.
    #[test]
    fn nothing_is_set_while_threads_run() {
        let key = format!("BR_SERVE_ENVIRON_TEST_{}", std::process::id());
        let vars = [(key.clone(), "value".to_string())];
        let _other = std::thread::spawn(std::thread::park);
        assert!(set(&vars).is_empty());
        assert_eq!(std::env::var_os(&key), None);
        restore(vec![(key.clone(), Some("put back".into()))]);
        assert_eq!(std::env::var_os(&key), None);
    }
}
