//! The `br-serve` binary: the command line in, the demo app served (or, with `--static
//! DIR`, the files under DIR, which the library serves in place of any program's
//! application), an exit code out. Everything else lives in the library.

use std::process::ExitCode;

use br_serve::app::demo::Demo;

fn main() -> ExitCode {
    br_serve::run_main(|_config| Box::new(Demo::boot()))
}
