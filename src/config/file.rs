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
use clap::{Arg, ArgMatches, Command};
use toml::Value;

use super::cli::Kind;
use crate::error::Error;

/// Flags that describe what to do with a configuration, not the configuration itself.
const META: &[&str] = &["config", "check-config", "print-config", "help", "version"];

/// Reads `path` and returns the arguments its settings stand for. A setting that the
/// command line or the environment overrides is left out, but its value is checked all
/// the same: the file must not break the day the override is dropped.
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
        let set_elsewhere = set_elsewhere(matches, arg);
        let mut setting = Vec::new();
        push_setting(&mut setting, &name, value)
            .and_then(|()| match set_elsewhere {
                true => parse_alone(arg, &setting),
                false => Ok(()),
            })
            .map_err(|why| Error::Config(format!("{shown}: setting '{key}': {why}")))?;
        if !set_elsewhere {
            args.extend(setting);
        }
    }
    Ok(args)
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

/// Checks one setting's arguments as the full parse would, with a command that has only
/// that setting's argument, and without its environment variable. With the whole command,
/// every `BR_SERVE_*` variable would be parsed too, and a bad one (even one that a flag
/// overrides) would be blamed on the file.
fn parse_alone(arg: &Arg, setting: &[OsString]) -> Result<(), String> {
    let alone = Command::new("br-serve").arg(arg.clone().env(None::<&str>));
    let argv = std::iter::once(OsString::from("br-serve")).chain(setting.iter().cloned());
    alone
        .try_get_matches_from(argv)
        .map(drop)
        .map_err(|err| super::render(&err))
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
