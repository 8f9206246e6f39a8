//! A small JSON API served by br-serve: routing on method and path, reading a request
//! body, answering with `application/json`. No JSON crate is needed for a sketch this
//! small; a real service would use serde_json inside the same handler.
//!
//!     cargo run --release --example json_api -- --bind 127.0.0.1:8000
//!     curl localhost:8000/api/health   # {"status":"ok","pid":4242,"scheme":"http","listener":"127.0.0.1:8000"}
//!     curl -X POST --data 'hello' localhost:8000/api/length
//!     curl 'localhost:8000/api/echo?name=ada'    # letters and digits only: not decoded
//!
//! Its own settings come from the environment, read by the factory in each worker, and
//! br-serve's `--env` sets them (gunicorn's `-e`), from the command line or `env = [...]`
//! in a configuration file, which a HUP reloads:
//!
//!     cargo run --release --example json_api -- -e JSON_API_DEFAULT_NAME=ada
//!     curl localhost:8000/api/echo                # {"hello":"ada"}

use std::process::ExitCode;

use br_serve::{Request, Response};

fn json(status: u16, body: String) -> Response {
    Response::bytes(status, "application/json", body.into_bytes())
}

/// The routes and the methods each takes. HEAD is answered wherever GET is (the server
/// sends the head only), as RFC 9110 §9.3.2 expects.
const ROUTES: &[(&str, &str)] = &[
    ("/api/health", "GET, HEAD"),
    ("/api/echo", "GET, HEAD"),
    ("/api/length", "POST"),
];

/// The API, with the name `/api/echo` greets when the request names none.
fn api(req: &Request, default_name: &str) -> Response {
    let method = match req.method() {
        "HEAD" => "GET",
        method => method,
    };
    match (method, req.path()) {
        ("GET", "/api/health") => {
            // Which listener answered: the address the client connected to.
            let listener = req
                .local_addr()
                .map_or("null".into(), |a| format!(r#""{a}""#));
            // How the client reached the proxy in front, as that proxy says (https when a
            // proxy --forwarded-allow-ips trusts sends X-Forwarded-Proto: https).
            let scheme = req.scheme();
            let pid = std::process::id();
            let fields = format!(r#""pid":{pid},"scheme":"{scheme}","listener":{listener}"#);
            json(200, format!(r#"{{"status":"ok",{fields}}}"#))
        }
        ("POST", "/api/length") => json(200, format!(r#"{{"bytes":{}}}"#, req.body().len())),
        ("GET", "/api/echo") => {
            let name = req.query_param("name").unwrap_or(default_name);
            // Only letters and digits go into the JSON string, so no escaping is needed.
            let safe: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
            json(200, format!(r#"{{"hello":"{safe}"}}"#))
        }
        (_, path) => match ROUTES.iter().find(|(route, _)| *route == path) {
            // A known route, another method: 405 with the methods it takes (§15.5.6).
            Some((_, allow)) => {
                json(405, r#"{"error":"method not allowed"}"#.into()).with_header("Allow", allow)
            }
            None => json(404, r#"{"error":"not found"}"#.into()),
        },
    }
}

fn main() -> ExitCode {
    // `json_api --version`, `--help`, errors and the log name this program, not br-serve.
    br_serve::identify_as("json_api", "1.0.0");
    br_serve::run_main(|_config| {
        // Read once per worker, after fork: `--env` has set it by then.
        let default_name =
            std::env::var("JSON_API_DEFAULT_NAME").unwrap_or_else(|_| "world".to_string());
        Box::new(move |req: &Request| api(req, &default_name))
    })
}
