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
//!
//! `JSON_API_UPLOAD_FROM` (comma-separated IP addresses) lists the only clients whose
//! uploads it takes; any other's is refused with 403 on its head, before its body is
//! read (`Handler::before_body`, which the client's address is shown in):
//!
//!     cargo run --release --example json_api -- -e JSON_API_UPLOAD_FROM=192.0.2.7
//!     curl --data 'hello' localhost:8000/api/length   # {"error":"no uploads from 127.0.0.1"}

use std::net::IpAddr;
use std::process::ExitCode;

use br_serve::{Handler, Request, RequestHead, Response};

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

/// One worker's application: its settings, read from the environment as it boots.
struct Api {
    /// The name `/api/echo` greets when the request names none.
    default_name: String,
    /// The clients whose uploads are taken; anyone's when unset.
    upload_from: Option<Vec<IpAddr>>,
}

impl Api {
    /// Reads the settings once per worker, after fork: `--env` has set them by then. An
    /// entry of `JSON_API_UPLOAD_FROM` that is no address admits no one, so that a typo
    /// refuses a client rather than letting everyone in.
    fn from_env() -> Api {
        let default_name =
            std::env::var("JSON_API_DEFAULT_NAME").unwrap_or_else(|_| "world".to_string());
        let upload_from = std::env::var("JSON_API_UPLOAD_FROM").ok().map(|list| {
            let entries = list.split(',').map(|entry| entry.trim().parse::<IpAddr>());
            entries.flatten().map(|ip| ip.to_canonical()).collect()
        });
        Api {
            default_name,
            upload_from,
        }
    }
}

impl Handler for Api {
    fn handle(&mut self, req: &Request) -> Response {
        api(req, &self.default_name)
    }

    /// Refuses an upload from a client not listed before its body is read. The head
    /// carries the client's address (behind `--proxy-protocol`, the one the balancer
    /// names); a client on a Unix socket has none, so is not listed.
    fn before_body(&mut self, head: &RequestHead) -> Option<Response> {
        let allowed = self.upload_from.as_ref()?;
        // An IPv4 client of a `[::]` bind shows as `::ffff:a.b.c.d`.
        let client = head.peer_addr().map(|peer| peer.ip().to_canonical());
        if client.is_some_and(|ip| allowed.contains(&ip)) {
            return None;
        }
        let who = client.map_or("a Unix socket".to_string(), |ip| ip.to_string());
        Some(json(403, format!(r#"{{"error":"no uploads from {who}"}}"#)))
    }
}

fn main() -> ExitCode {
    // `json_api --version`, `--help`, errors and the log name this program, not br-serve.
    br_serve::identify_as("json_api", "1.0.0");
    br_serve::run_main(|_config| Box::new(Api::from_env()))
}
