//! Content codings for precompressed files (`--static-precompressed`, nginx's
//! `gzip_static`): which of the codings that can be served from disk, `FILE.br` and
//! `FILE.gz`, a request's `Accept-Encoding` allows (RFC 9110 §12.5.3).

/// A coding a file may be stored in beside its plain self.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Coding {
    Br,
    Gzip,
}

impl Coding {
    /// The `Content-Encoding` value.
    pub(super) fn name(self) -> &'static str {
        match self {
            Coding::Br => "br",
            Coding::Gzip => "gzip",
        }
    }

    /// What the stored variant's file name adds to the plain one.
    pub(super) fn suffix(self) -> &'static str {
        match self {
            Coding::Br => ".br",
            Coding::Gzip => ".gz",
        }
    }
}

/// The codings an `Accept-Encoding` value allows, best first: by q-value, then brotli
/// before gzip (it is smaller). A coding is allowed when named with a q-value above 0,
/// or, when not named, by a `*` above 0. `accept` is the field whole, every line
/// joined ([`Request::header_list`](crate::Request::header_list)). No field, or one
/// that is not text (read as empty), allows none: the plain file is always acceptable
/// (§12.5.3), so nothing is lost.
pub(super) fn accepted(accept: Option<&str>) -> Vec<Coding> {
    let Some(value) = accept else {
        return Vec::new();
    };
    let (mut br, mut gzip, mut any) = (None, None, None);
    for element in value.split(',') {
        let mut parts = element.split(';');
        let name = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let Some(q) = qvalue(parts) else {
            continue;
        };
        match name.as_str() {
            "br" => br = Some(q),
            "gzip" | "x-gzip" => gzip = Some(q),
            "*" => any = Some(q),
            _ => {}
        }
    }
    let mut allowed: Vec<(Coding, f32)> = [(Coding::Br, br), (Coding::Gzip, gzip)]
        .into_iter()
        .filter_map(|(coding, q)| Some((coding, q.or(any)?)))
        .filter(|&(_, q)| q > 0.0)
        .collect();
    // Stable, so brotli stays ahead of gzip at equal q.
    allowed.sort_by(|a, b| b.1.total_cmp(&a.1));
    allowed.into_iter().map(|(coding, _)| coding).collect()
}

/// The `q` parameter among an element's parameters: 1 when absent, `None` when it is
/// not a qvalue (0 to 1, at most three decimals), which voids the element.
fn qvalue<'a>(params: impl Iterator<Item = &'a str>) -> Option<f32> {
    let mut q = 1.0;
    for param in params {
        let param = param.trim();
        let Some(value) = param
            .strip_prefix("q=")
            .or_else(|| param.strip_prefix("Q="))
        else {
            continue;
        };
        let well_formed = value.len() <= 5
            && value.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && (value.starts_with('0') || value.starts_with('1'));
        q = value
            .parse::<f32>()
            .ok()
            .filter(|q| well_formed && *q <= 1.0)?;
    }
    Some(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Coding::{Br, Gzip};

    #[test]
    fn accept_encoding_table() {
        let cases: &[(Option<&str>, &[Coding])] = &[
            (None, &[]),
            (Some(""), &[]),
            (Some("gzip"), &[Gzip]),
            (Some("GZIP"), &[Gzip]),
            (Some("x-gzip"), &[Gzip]),
            (Some("gzip, deflate, br"), &[Br, Gzip]),
            (Some("br;q=0.5, gzip"), &[Gzip, Br]),
            (Some("gzip;q=1.0, br;q=1"), &[Br, Gzip]),
            (Some("gzip;q=0"), &[]),
            (Some("gzip; q=0.000"), &[]),
            (Some("*"), &[Br, Gzip]),
            (Some("*;q=0.1, gzip;q=0"), &[Br]),
            (Some("identity"), &[]),
            (Some("deflate, gzip;Q=0.8"), &[Gzip]),
            // A malformed q voids its element only.
            (Some("gzip;q=bogus, br"), &[Br]),
            (Some("gzip;q=2"), &[]),
            (Some("gzip;q=0.12345"), &[]),
        ];
        for (value, want) in cases {
            assert_eq!(accepted(*value), *want, "{value:?}");
        }
    }

    #[test]
    fn names_and_suffixes() {
        assert_eq!((Br.name(), Br.suffix()), ("br", ".br"));
        assert_eq!((Gzip.name(), Gzip.suffix()), ("gzip", ".gz"));
    }
}
