//! The configuration file (`-c FILE`): TOML whose keys are the flags' long names, with
//! gunicorn-style underscores accepted too (`limit_request_line`).
//!
//! Precedence is file < environment < command line. Rather than merging three sources by
//! hand, the file's settings become command-line arguments placed *before* the real ones,
//! and only for the flags that clap reports as not set by the command line or the
//! environment. clap then validates file values exactly as it validates flags.

use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgMatches, Command};
use toml::Value;

use crate::error::Error;

/// Flags that describe what to do with a configuration, not the configuration itself.
const META: &[&str] = &["config", "check-config", "print-config", "help", "version"];

/// Reads `path` and returns the arguments its settings stand for.
pub fn args(path: &Path, matches: &ArgMatches, command: &Command) -> Result<Vec<OsString>, Error> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading configuration file {shown}"), e))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| Error::Config(format!("{shown}: {e}")))?;
    let mut args = Vec::new();
    for (key, value) in &table {
        let name = key.replace('_', "-");
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(name.as_str()) && !META.contains(&name.as_str()))
            .ok_or_else(|| Error::Config(format!("{shown}: unknown setting '{key}'")))?;
        let set_elsewhere = matches!(
            matches.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        if !set_elsewhere {
            push_setting(&mut args, &name, value)
                .map_err(|why| Error::Config(format!("{shown}: setting '{key}': {why}")))?;
        }
    }
    Ok(args)
}

/// Settings written in octal on the command line (`--umask 027`). In TOML an integer is a
/// number (`umask = 0o027` is 23), so it is passed on in octal, and printed as a string.
const OCTAL: &[&str] = &["umask"];

/// `key = value` as `--key=value`; arrays repeat the flag; `true` is a bare switch.
fn push_setting(args: &mut Vec<OsString>, name: &str, value: &Value) -> Result<(), String> {
    match value {
        Value::Boolean(true) => args.push(format!("--{name}").into()),
        Value::Boolean(false) => {}
        Value::Array(items) => {
            for item in items {
                if matches!(item, Value::Array(_) | Value::Table(_)) {
                    return Err("nested arrays and tables are not settings".into());
                }
                push_setting(args, name, item)?;
            }
        }
        Value::String(s) => args.push(format!("--{name}={s}").into()),
        Value::Integer(n) if OCTAL.contains(&name) => args.push(format!("--{name}=0o{n:o}").into()),
        Value::Integer(n) => args.push(format!("--{name}={n}").into()),
        Value::Float(f) => args.push(format!("--{name}={f}").into()),
        Value::Datetime(_) | Value::Table(_) => {
            return Err("expected a string, number, boolean or array".into());
        }
    }
    Ok(())
}

/// The effective settings, as a configuration file that reads back to the same thing.
pub fn print(matches: &ArgMatches, command: &Command, effective: &[(&str, Value)]) -> String {
    let mut out = String::from("# br-serve effective configuration\n");
    for arg in command.get_arguments() {
        let Some(name) = arg.get_long().filter(|n| !META.contains(n)) else {
            continue;
        };
        let id = arg.get_id().as_str();
        let value = match effective.iter().find(|(key, _)| *key == name) {
            Some((_, value)) => value.clone(),
            // An on/off flag, as parsed: its environment variable may say `1` or `yes`.
            None if !arg.get_action().takes_values() => Value::Boolean(matches.get_flag(id)),
            None => match raw_value(matches, id) {
                Some(value) => value,
                None => continue,
            },
        };
        out.push_str(&format!("{name} = {value}\n"));
    }
    out
}

/// What clap holds for an argument (from the command line, environment or default), as
/// a TOML value: numbers and booleans bare, everything else a string.
fn raw_value(matches: &ArgMatches, id: &str) -> Option<Value> {
    let raw: Vec<String> = matches
        .get_raw(id)?
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    let one = |s: &String| -> Value {
        if OCTAL.contains(&id) {
            return Value::String(s.clone());
        }
        if let Ok(b) = s.parse::<bool>() {
            return Value::Boolean(b);
        }
        s.parse::<i64>()
            .map(Value::Integer)
            .unwrap_or_else(|_| Value::String(s.clone()))
    };
    match raw.as_slice() {
        [single] => Some(one(single)),
        many => Some(Value::Array(many.iter().map(one).collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_become_arguments() {
        let table: toml::Table = r#"
            workers = 3
            bind = ["127.0.0.1:1", "unix:/tmp/x.sock"]
            graceful_timeout = 2.5
            access-log-json = true
            max-requests-jitter = false
        "#
        .parse()
        .unwrap();
        let mut args = Vec::new();
        for (key, value) in &table {
            push_setting(&mut args, &key.replace('_', "-"), value).unwrap();
        }
        let args: Vec<String> = args.into_iter().map(|a| a.into_string().unwrap()).collect();
        assert_eq!(
            args,
            [
                "--access-log-json",
                "--bind=127.0.0.1:1",
                "--bind=unix:/tmp/x.sock",
                "--graceful-timeout=2.5",
                "--workers=3"
            ]
        );
        let nested: toml::Table = "bind = [[1]]".parse().unwrap();
        assert!(push_setting(&mut Vec::new(), "bind", &nested["bind"]).is_err());
    }
}
