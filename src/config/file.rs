//! The configuration file (`-c FILE`): TOML whose keys are the flags' long names, with
//! gunicorn-style underscores accepted too (`limit_request_line`).
//!
//! Precedence is file < environment < command line. Rather than merging three sources by
//! hand, the file's settings become command-line arguments placed *before* the real ones,
//! and only for the flags that clap reports as not set by the command line or the
//! environment. clap then validates file values exactly as it validates flags; the values
//! of the settings left out are checked by a parse of their own.

use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use toml::Value;

use super::cli::Kind;
use crate::error::Error;

/// Flags that describe what to do with a configuration, not the configuration itself.
const META: &[&str] = &["config", "check-config", "print-config", "help", "version"];

/// Reads `path` and returns the arguments its settings stand for, each value checked
/// alone and named by its key when it is bad. A setting that the command line or the
/// environment overrides is left out, but its value is checked all the same: the file
/// must not break the day the override is dropped.
pub fn args(path: &Path, matches: &ArgMatches, command: &Command) -> Result<Vec<OsString>, Error> {
    let shown = path.display();
    let table: toml::Table = read(path)?
        .parse()
        .map_err(|e| Error::Config(format!("{shown}: {e}")))?;
    let mut args = Vec::new();
    // The key each setting was given by: `max_requests` and `max-requests` are one.
    let mut keys = std::collections::HashMap::new();
    for (key, value) in &table {
        let name = key.replace('_', "-");
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(name.as_str()) && !META.contains(&name.as_str()))
            .ok_or_else(|| Error::Config(format!("{shown}: unknown setting '{key}'")))?;
        if let Some(first) = keys.insert(name.clone(), key) {
            return Err(Error::Config(format!(
                "{shown}: '{first}' and '{key}' are the same setting: give it once"
            )));
        }
        // Each value is checked alone first, so that a bad one is named by its key (the
        // full parse names only the flag it stands for).
        let setting = arguments(arg, &name, value)
            .and_then(|setting| {
                parse_alone(arg, &setting).map_err(|err| super::render(&err))?;
                match set_elsewhere(matches, arg) {
                    true => match name == "bind" {
                        true => binds_clash(&setting, reuse_port(&table, matches)),
                        false => Ok(()),
                    }
                    .map(|()| Vec::new()),
                    false => Ok(setting),
                }
            })
            .map_err(|why| Error::Config(format!("{shown}: setting '{key}': {why}")))?;
        args.extend(setting);
    }
    Ok(args)
}

/// The most a configuration file may hold: far more than every setting needs.
const MOST_BYTES: u64 = 1 << 20;

/// The file's text, if it is a file (or a device) of at most [`MOST_BYTES`]. The master
/// reads it again at each HUP, so it must not wait on a FIFO put in its place for a
/// writer that never comes (opened non-blocking, then refused), nor read `/dev/zero`
/// until memory runs out.
fn read(path: &Path) -> Result<String, Error> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let shown = path.display();
    let failed = |e| Error::io(format!("reading configuration file {shown}"), e);
    let not_a_file = || {
        Error::Config(format!(
            "{shown}: not a regular file (a directory, FIFO or socket)"
        ))
    };
    // A socket cannot be opened at all (ENXIO, "No such device or address").
    if std::fs::metadata(path).is_ok_and(|meta| meta.file_type().is_socket()) {
        return Err(not_a_file());
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(failed)?;
    // A device reads at once, or fails (EAGAIN), or is endless (`/dev/zero`, cut below):
    // `-c /dev/null`, an empty configuration, is a gunicorn idiom.
    let kind = file.metadata().map_err(failed)?.file_type();
    if !(kind.is_file() || kind.is_char_device()) {
        return Err(not_a_file());
    }
    let mut text = String::new();
    file.take(MOST_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(failed)?;
    match text.len() as u64 > MOST_BYTES {
        true => Err(Error::Config(format!(
            "{shown}: larger than {MOST_BYTES} bytes, which no configuration is"
        ))),
        false => Ok(text),
    }
}

/// Whether the command line or the environment sets `arg`, overriding the file.
fn set_elsewhere(matches: &ArgMatches, arg: &Arg) -> bool {
    let id = arg.get_id().as_str();
    let by_clap = matches!(
        matches.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    );
    // clap does not read BR_SERVE_BIND (see `cli::bind_env`).
    by_clap || (id == "bind" && super::cli::bind_env().is_some())
}

/// A `bind` that the command line or the environment overrides is still checked for
/// addresses that clash (`super::clash`), as its values are: the day the override goes,
/// its addresses are listened on. `setting` is its `--bind=ADDRESS` arguments, already
/// parsed cleanly.
fn binds_clash(setting: &[OsString], reuse_port: bool) -> Result<(), String> {
    let binds: Vec<_> = setting
        .iter()
        .filter_map(|arg| arg.to_str()?.strip_prefix("--bind="))
        .filter_map(|value| super::cli::parse_bind(value).ok())
        .collect();
    super::clash(&binds, reuse_port).map_or(Ok(()), Err)
}

/// Whether `--reuse-port` would apply to the file's addresses: as the command line or
/// the environment sets it (`BR_SERVE_REUSE_PORT=false` too), else as the file does.
fn reuse_port(table: &toml::Table, matches: &ArgMatches) -> bool {
    let elsewhere = matches!(
        matches.value_source("reuse_port"),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    );
    match elsewhere {
        true => matches
            .get_one::<bool>("reuse_port")
            .copied()
            .unwrap_or(false),
        false => ["reuse-port", "reuse_port"]
            .iter()
            .any(|key| table.get(*key) == Some(&Value::Boolean(true))),
    }
}

/// Checks one setting's arguments as the full parse would, with a command that has only
/// that setting's argument, and without its environment variable. With the whole command,
/// every `BR_SERVE_*` variable would be parsed too, and a bad one (even one that a flag
/// overrides) would be blamed on the file.
fn parse_alone(arg: &Arg, setting: &[OsString]) -> Result<(), clap::Error> {
    let alone = Command::new("br-serve").arg(arg.clone().env(None::<&str>));
    let argv = std::iter::once(OsString::from("br-serve")).chain(setting.iter().cloned());
    alone.try_get_matches_from(argv).map(drop)
}

/// Settings written in octal on the command line (`--umask 027`). In TOML an integer is a
/// number (`umask = 0o027` is 23), so it is passed on in octal, and printed as a string.
const OCTAL: &[&str] = &["umask"];

/// `key = value` as the arguments it stands for. A switch takes `true` (a bare `--key`)
/// or `false` (nothing); any other setting takes `--key=value`, repeated for each item of
/// an array where its flag repeats (`bind`). A boolean where a value is expected is
/// refused, not dropped: `workers = false` would have started the default count; so is
/// an empty array.
fn arguments(arg: &Arg, name: &str, value: &Value) -> Result<Vec<OsString>, String> {
    if !arg.get_action().takes_values() {
        return match value {
            Value::Boolean(true) => Ok(vec![format!("--{name}").into()]),
            Value::Boolean(false) => Ok(Vec::new()),
            _ => Err(format!("expected true or false, not {value}")),
        };
    }
    let items = match value {
        // `bind = []` would have listened on the default address instead.
        Value::Array(items) if repeats(arg) && items.is_empty() => {
            return Err("an empty array: give at least one value, or leave the setting out".into());
        }
        Value::Array(items) if repeats(arg) => items.as_slice(),
        _ => std::slice::from_ref(value),
    };
    let typed = |item| text(arg, item).map(|text| format!("--{name}={text}").into());
    items.iter().map(typed).collect()
}

/// One value of a setting, as it would be typed after its flag.
fn text(arg: &Arg, value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Integer(n) if OCTAL.contains(&arg.get_id().as_str()) => octal(arg, *n),
        Value::Integer(n) => Ok(n.to_string()),
        Value::Float(f) => Ok(f.to_string()),
        Value::Boolean(_) | Value::Array(_) | Value::Datetime(_) | Value::Table(_) => {
            Err(format!("expected {}, not {value}", expected(arg)))
        }
    }
}

/// A TOML number for a setting whose flag reads octal, in octal (`umask = 0o027` is
/// `0o27`). A number the flag refuses is named as the file has it, not by those digits:
/// `umask = -1` was refused as "invalid value '0o1777777777777777777777'". A negative
/// number is passed on in decimal, the only way TOML writes one.
fn octal(arg: &Arg, n: i64) -> Result<String, String> {
    let (digits, shown) = match n {
        0.. => (format!("0o{n:o}"), format!("{n} (0o{n:o})")),
        _ => (n.to_string(), n.to_string()),
    };
    let flag = arg.get_long().unwrap_or_default();
    let Err(err) = parse_alone(arg, &[format!("--{flag}={digits}").into()]) else {
        return Ok(digits);
    };
    let why = std::error::Error::source(&err);
    let why = why.map_or_else(|| super::render(&err), |why| why.to_string());
    Err(format!("invalid value {shown} for '{arg}': {why}"))
}

/// Whether a flag may be given more than once, each time adding a value.
fn repeats(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
}

/// What a setting that takes a value expects, for a message.
fn expected(arg: &Arg) -> &'static str {
    match (Kind::of(arg), repeats(arg)) {
        (Kind::Integer, _) => "a number",
        (Kind::Seconds, _) => "a number of seconds",
        (Kind::Text, false) => "a string",
        (Kind::Text, true) => "a string or an array of strings",
    }
}

/// The effective settings, as a configuration file that reads back to the same thing.
pub fn print(matches: &ArgMatches, command: &Command, effective: &[(&str, Value)]) -> String {
    let mut out = format!("# {} effective configuration\n", crate::program().0);
    for arg in command.get_arguments() {
        let Some(name) = arg.get_long().filter(|n| !META.contains(n)) else {
            continue;
        };
        let id = arg.get_id().as_str();
        let value = match effective.iter().find(|(key, _)| *key == name) {
            Some((_, value)) => value.clone(),
            // An on/off flag, as parsed: its environment variable may say `1` or `yes`.
            None if !arg.get_action().takes_values() => Value::Boolean(matches.get_flag(id)),
            None => match raw_value(matches, arg) {
                Some(value) => value,
                None => continue,
            },
        };
        out.push_str(&format!("{name} = {value}\n"));
    }
    out
}

/// What clap holds for an argument (from the command line, environment or default), as
/// a TOML value of the type the flag takes: the text as typed would not read back the
/// same (`--pid 0123` printed bare is the number 123, `--access-logfile true` a boolean).
fn raw_value(matches: &ArgMatches, arg: &Arg) -> Option<Value> {
    let mut values: Vec<Value> = matches
        .get_raw(arg.get_id().as_str())?
        .map(|v| printed(arg, &v.to_string_lossy()))
        .collect();
    match values.len() {
        1 => values.pop(),
        _ => Some(Value::Array(values)),
    }
}

/// One value of `arg`, as clap received and accepted it, in the TOML type the flag takes.
fn printed(arg: &Arg, raw: &str) -> Value {
    let text = || Value::String(raw.to_string());
    if OCTAL.contains(&arg.get_id().as_str()) {
        return text();
    }
    match Kind::of(arg) {
        // A size with a unit (`64K`) stays a string.
        Kind::Integer => raw.trim().parse().map_or_else(|_| text(), Value::Integer),
        Kind::Seconds => match raw.trim().parse::<f64>() {
            // Whole seconds print as an integer, so that `1e1` and `10.0` read back as
            // `10`, the way they are printed again.
            Ok(s) if s.fract() == 0.0 && s.abs() < 1e15 => Value::Integer(s as i64),
            Ok(s) if s.is_finite() => Value::Float(s),
            _ => text(),
        },
        Kind::Text => text(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_become_arguments() {
        let command = super::super::cli::command();
        let arguments = |key: &str, value: &str| {
            let value: toml::Table = format!("v = {value}").parse().unwrap();
            let arg = command.get_arguments().find(|a| a.get_long() == Some(key));
            let args = arguments(arg.expect(key), key, &value["v"])?;
            let args = args.into_iter().map(|a| a.into_string().unwrap());
            Ok::<_, String>(args.collect::<Vec<_>>().join(" "))
        };
        // (key, value) -> arguments, or None for a refusal
        let cases = [
            (("workers", "3"), Some("--workers=3")),
            (
                ("bind", r#"["127.0.0.1:1", "unix:/tmp/x.sock"]"#),
                Some("--bind=127.0.0.1:1 --bind=unix:/tmp/x.sock"),
            ),
            (("bind", r#""127.0.0.1:1""#), Some("--bind=127.0.0.1:1")),
            (("graceful-timeout", "2.5"), Some("--graceful-timeout=2.5")),
            (("umask", "0o027"), Some("--umask=0o27")),
            (("access-log-json", "true"), Some("--access-log-json")),
            (("access-log-json", "false"), Some("")),
            (("workers", "false"), None),
            (("workers", "true"), None),
            (("workers", "[1, 2]"), None),
            (("bind", "false"), None),
            (("bind", "[[1]]"), None),
            (("bind", "[false]"), None),
            (("bind", "[]"), None),
            (("timeout", "1979-05-27T07:32:00Z"), None),
            (("access-log-json", r#""yes""#), None),
            (("access-log-json", "1"), None),
        ];
        for ((key, value), want) in cases {
            let got = arguments(key, value);
            assert_eq!(got.as_deref().ok(), want, "{key} = {value}: {got:?}");
        }
    }

    #[test]
    fn values_print_with_the_type_their_flag_takes() {
        let command = super::super::cli::command();
        let arg = |name: &str| {
            let arg = command.get_arguments().find(|a| a.get_long() == Some(name));
            arg.expect(name)
        };
        let int = Value::Integer;
        let text = |s: &str| Value::String(s.into());
        // (flag, as typed) -> printed
        let cases = [
            (("access-logfile", "true"), text("true")),
            (("access-logformat", "007"), text("007")),
            (("pid", "0123"), text("0123")),
            (("error-logfile", "1"), text("1")),
            (("umask", "027"), text("027")),
            (("log-level", "warning"), text("warning")),
            (("max-requests-jitter", "007"), int(7)),
            (("backlog", "64"), int(64)),
            (
                ("max-requests", "18446744073709551615"),
                text("18446744073709551615"),
            ),
            (("limit-request-body", "64K"), text("64K")),
            (("limit-request-body", "65536"), int(65536)),
            (("timeout", "30"), int(30)),
            (("keep-alive", "1e1"), int(10)),
            (("graceful-timeout", "2.50"), Value::Float(2.5)),
            (("static-max-age", "0.25"), Value::Float(0.25)),
        ];
        for ((flag, raw), want) in cases {
            assert_eq!(printed(arg(flag), raw), want, "--{flag} {raw}");
        }
    }
}
