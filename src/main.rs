//! The `br-serve` binary: the command line in, a built-in application served (the demo
//! app, or static files with `--static DIR`), an exit code out. Everything else lives in
//! the library.

use std::process::ExitCode;

use br_serve::app::demo::Demo;
use br_serve::app::static_files::StaticFiles;

fn main() -> ExitCode {
    br_serve::run_main(|config| match &config.static_root {
        // The root was checked at start-up; failing here means it vanished since, and the
        // master's crash-loop backoff reports it.
        Some(root) => match StaticFiles::from_config(root, config) {
            Ok(files) => Box::new(files),
            Err(err) => panic!("--static {}: {err}", root.display()),
        },
        None => Box::new(Demo::boot()),
    })
}
