//! A handler built once in the master, before the workers are forked
//! (`br_serve::run_main_preloaded`, gunicorn's `--preload`): a large read-only table is
//! computed once, and every worker reads the master's copy through copy-on-write pages
//! instead of building its own. HUP starts new workers from the same copy; a table that
//! cannot be built stops the start before anything is bound, instead of every worker
//! failing in turn.
//!
//!     cargo run --release --example preloaded_table -- --bind 127.0.0.1:8000 --workers 4
//!     curl localhost:8000/square?n=1234    # 1522756
//!     curl localhost:8000/built            # the pid that built the table: the master's
//!
//! `TABLE_ENTRIES` sets the table's size (default 4 Mi entries, 32 MiB).

use std::process::ExitCode;

use br_serve::{Request, Response};

/// The table's size when `TABLE_ENTRIES` is not set: large enough that a copy per worker
/// would show in the memory figures.
const DEFAULT_ENTRIES: usize = 4 << 20;

/// The squares of 0..entries: the stand-in for a model or a lookup table.
fn build_table() -> Vec<u64> {
    let entries = match std::env::var("TABLE_ENTRIES") {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("TABLE_ENTRIES={value:?} is not a number of entries")),
        Err(_) => DEFAULT_ENTRIES,
    };
    (0..entries as u64).map(|n| n * n).collect()
}

fn main() -> ExitCode {
    // `preloaded_table --version`, `--help`, errors and the log name this program.
    br_serve::identify_as("preloaded_table", "1.0.0");
    br_serve::run_main_preloaded(|_config| {
        let built_by = std::process::id();
        let squares = build_table();
        log::info!(
            "built a table of {} entries in pid {built_by}",
            squares.len()
        );
        Box::new(move |req: &Request| match req.path() {
            "/square" => {
                let n = req.query_param("n").and_then(|n| n.parse::<usize>().ok());
                match n.and_then(|n| squares.get(n)) {
                    Some(square) => Response::text(200, format!("{square}\n")),
                    None => Response::text(404, "n must be an index into the table\n"),
                }
            }
            "/built" => Response::text(200, format!("{built_by}\n")),
            _ => Response::text(404, "try /square?n=12 or /built\n"),
        })
    })
}
