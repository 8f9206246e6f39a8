//! The `Date` header value (RFC 9110 §6.6.1), formatted by hand and cached per second.
//!
//! Owns: [`format_imf_fixdate`] and [`DateCache`]. Does not own: the clock of the event
//! loop (the worker calls [`DateCache::get`] when it writes a response head).
//!
//! One cache per worker, no thread-local and no background thread: workers are
//! single-threaded processes (hyper keeps the same 29 bytes in a thread-local; may_minihttp
//! updates a global from another coroutine, a data race by design).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Formats `unix_secs` as an IMF-fixdate (RFC 9110 §5.6.7), e.g.
/// `Sun, 06 Nov 1994 08:49:37 GMT`: always 29 bytes.
///
/// The one date format a server may send, in `Date`, `Last-Modified`, `Expires` and
/// `Retry-After`. Returned by value on the stack: no allocation. Seconds past the end of
/// year 9999 are written as its last second.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
///
/// use br_serve::Response;
/// use br_serve::http::format_imf_fixdate;
///
/// assert_eq!(&format_imf_fixdate(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
/// assert_eq!(&format_imf_fixdate(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
///
/// // An Expires field one hour from now.
/// let later = SystemTime::now() + Duration::from_secs(3600);
/// let secs = later.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
/// let expires = format_imf_fixdate(secs);
/// let resp = Response::text(200, "cached\n")
///     .with_header("Expires", std::str::from_utf8(&expires).unwrap());
/// assert_eq!(resp.headers().last().map(|(_, v)| v.len()), Some(29));
/// ```
pub fn format_imf_fixdate(unix_secs: u64) -> [u8; 29] {
    imf_fixdate(i64::try_from(unix_secs).unwrap_or(i64::MAX))
}

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the span a four-digit year can write.
const MIN_HTTP_DATE: i64 = -62_167_219_200;
const MAX_HTTP_DATE: i64 = 253_402_300_799;

/// [`format_imf_fixdate`] for any second, before 1970 included (file times can be);
/// clamped to the years 0000 to 9999.
pub(crate) fn imf_fixdate(secs: i64) -> [u8; 29] {
    let secs = secs.clamp(MIN_HTTP_DATE, MAX_HTTP_DATE);
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u32);
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday; index 0 is Sunday.
    let weekday = DAY_NAMES[(days + 4).rem_euclid(7) as usize].as_bytes();
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(weekday);
    put2(&mut out[5..7], day);
    out[8..11].copy_from_slice(MONTHS[month as usize - 1].as_bytes());
    put2(&mut out[12..14], (year / 100) as u32);
    put2(&mut out[14..16], (year % 100) as u32);
    put2(&mut out[17..19], of_day / 3600);
    put2(&mut out[20..22], of_day / 60 % 60);
    put2(&mut out[23..25], of_day % 60);
    out
}

/// Writes `n % 100` as two ASCII digits.
fn put2(out: &mut [u8], n: u32) {
    let digits = [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8];
    out.copy_from_slice(&digits);
}

/// The current IMF-fixdate, recomputed only when the wall-clock second changes.
///
/// Every response carries a `Date`, and a busy worker sends many per second; formatting
/// once per second instead of once per response is the saving. Each worker owns one (no
/// locking, no background thread), and [`write_head`](super::write_head) takes its value.
///
/// # Examples
///
/// ```
/// use br_serve::http::DateCache;
///
/// let mut dates = DateCache::new();
/// let now = dates.get();
/// assert_eq!(now.len(), 29);
/// assert!(now.ends_with(b" GMT"));
///
/// // For a caller that has already read the clock (and for tests): a fixed second.
/// assert_eq!(dates.get_at(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
/// assert_eq!(dates.get_at(784_111_778), b"Sun, 06 Nov 1994 08:49:38 GMT");
/// ```
#[derive(Debug, Clone)]
pub struct DateCache {
    /// The Unix second `value` was formatted for.
    secs: u64,
    value: [u8; 29],
    /// For [`get_at_instant`](Self::get_at_instant): before this instant the wall-clock
    /// second cannot have changed, so the clock need not be read.
    fresh_until: Option<Instant>,
}

impl DateCache {
    /// A cache holding the current second.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{SystemTime, UNIX_EPOCH};
    ///
    /// use br_serve::http::{DateCache, format_imf_fixdate};
    ///
    /// let secs = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    /// let before = secs();
    /// let mut dates = DateCache::new(); // one per worker, kept for its whole life
    /// let date = dates.get().to_vec();
    /// assert!((before..=secs()).any(|s| format_imf_fixdate(s) == date[..]));
    /// ```
    pub fn new() -> Self {
        let secs = now_secs();
        DateCache {
            secs,
            value: format_imf_fixdate(secs),
            fresh_until: None,
        }
    }

    /// The Date value for now: 29 bytes, no CRLF.
    ///
    /// # Examples
    ///
    /// The value [`write_head`](super::write_head) takes:
    ///
    /// ```
    /// use br_serve::http::{DateCache, ResponseMeta, write_head};
    /// use br_serve::{Response, Version};
    ///
    /// let mut dates = DateCache::new();
    /// let meta = ResponseMeta { version: Version::Http11, keep_alive: true, head_request: false };
    /// let mut out = Vec::new();
    /// write_head(&mut out, &Response::new(204), &meta, dates.get());
    /// let date_line = out.split(|&b| b == b'\n').nth(2).unwrap();
    /// assert!(date_line.starts_with(b"Date: ") && date_line.ends_with(b" GMT\r"));
    /// assert_eq!(date_line.len(), "Date: ".len() + 29 + 1);
    /// ```
    pub fn get(&mut self) -> &[u8] {
        self.get_at(now_secs())
    }

    /// The Date value at `now`, a monotonic reading the caller already took: the wall
    /// clock is read once per second at most, when `now` reaches the instant the cached
    /// second ends. A server answering thousands of requests a second saves a clock read
    /// on each; a wall clock stepped meanwhile shows within a second.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use br_serve::http::DateCache;
    ///
    /// let mut dates = DateCache::new();
    /// let now = Instant::now();
    /// assert_eq!(dates.get_at_instant(now).to_vec(), dates.get_at_instant(now).to_vec());
    /// ```
    pub fn get_at_instant(&mut self, now: Instant) -> &[u8] {
        if self.fresh_until.is_none_or(|until| now >= until) {
            let wall = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let left = Duration::from_secs(1) - Duration::from_nanos(wall.subsec_nanos().into());
            self.fresh_until = Some(now + left);
            self.get_at(wall.as_secs());
        }
        &self.value
    }

    /// The Date value for `unix_secs`, reformatted only if it differs from the cached
    /// second (for callers that already read the clock, and for tests).
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::DateCache;
    ///
    /// let mut dates = DateCache::new();
    /// assert_eq!(dates.get_at(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
    /// assert_eq!(dates.get_at(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT"); // cached
    /// // Any other second is formatted anew, an earlier one too (a clock stepped back).
    /// assert_eq!(dates.get_at(784_111_776), b"Sun, 06 Nov 1994 08:49:36 GMT");
    /// ```
    pub fn get_at(&mut self, unix_secs: u64) -> &[u8] {
        if unix_secs != self.secs {
            self.secs = unix_secs;
            self.value = format_imf_fixdate(unix_secs);
        }
        &self.value
    }
}

impl Default for DateCache {
    fn default() -> Self {
        Self::new()
    }
}

/// Seconds since the epoch; a clock set before 1970 reads as 1970.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

const DAY_NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const LONG_DAY_NAMES: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
/// Month names as HTTP-dates and the Common Log Format spell them.
pub(crate) const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parses an HTTP-date in any of the three formats a recipient must accept (§5.6.7):
/// IMF-fixdate, obsolete RFC 850 and asctime. `now` resolves RFC 850's two-digit year.
/// Names are case-sensitive, as the grammar says; the weekday is checked for spelling
/// only. Returns seconds since the epoch, or `None` for anything invalid.
pub(crate) fn parse_http_date(value: &str, now: i64) -> Option<i64> {
    let b = value.as_bytes();
    match b.len() {
        29 => parse_imf_fixdate(b),
        24 => parse_asctime(b),
        _ => parse_rfc850(b, now),
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`
fn parse_imf_fixdate(b: &[u8]) -> Option<i64> {
    let layout = b[3] == b',' && b[4] == b' ' && b[7] == b' ' && b[11] == b' ' && b[16] == b' ';
    if !layout || !is_name(&b[..3], &DAY_NAMES) || &b[25..] != b" GMT" {
        return None;
    }
    let year = i64::from(number(&b[12..16])?);
    timestamp(year, month(&b[8..11])?, number(&b[5..7])?, &b[17..25])
}

/// `Sun Nov  6 08:49:37 1994`
fn parse_asctime(b: &[u8]) -> Option<i64> {
    let layout = b[3] == b' ' && b[7] == b' ' && b[10] == b' ' && b[19] == b' ';
    if !layout || !is_name(&b[..3], &DAY_NAMES) {
        return None;
    }
    // The day is two digits or a space and one digit.
    let day = match b[8] {
        b' ' => number(&b[9..10])?,
        _ => number(&b[8..10])?,
    };
    timestamp(
        i64::from(number(&b[20..24])?),
        month(&b[4..7])?,
        day,
        &b[11..19],
    )
}

/// `Sunday, 06-Nov-94 08:49:37 GMT`. A two-digit year more than 50 years in the future
/// means the most recent past year with those digits (§5.6.7).
fn parse_rfc850(b: &[u8], now: i64) -> Option<i64> {
    let comma = b.iter().position(|&c| c == b',')?;
    let (name, rest) = (&b[..comma], &b[comma + 1..]);
    let layout = rest.len() == 23
        && rest[0] == b' '
        && rest[3] == b'-'
        && rest[7] == b'-'
        && rest[10] == b' ';
    if !layout || !is_name(name, &LONG_DAY_NAMES) || &rest[19..] != b" GMT" {
        return None;
    }
    let this_year = civil_from_days(now.div_euclid(86_400)).0;
    let mut year = this_year - this_year.rem_euclid(100) + i64::from(number(&rest[8..10])?);
    if year > this_year + 50 {
        year -= 100;
    }
    timestamp(
        year,
        month(&rest[4..7])?,
        number(&rest[1..3])?,
        &rest[11..19],
    )
}

fn is_name(b: &[u8], names: &[&str]) -> bool {
    names.iter().any(|name| name.as_bytes() == b)
}

fn month(b: &[u8]) -> Option<u32> {
    let index = MONTHS.iter().position(|name| name.as_bytes() == b)?;
    u32::try_from(index + 1).ok()
}

/// ASCII digits only (no sign, no space) as a number.
fn number(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Seconds since the epoch for a checked calendar date and an `HH:MM:SS` time.
fn timestamp(year: i64, month: u32, day: u32, time: &[u8]) -> Option<i64> {
    if time.len() != 8 || time[2] != b':' || time[5] != b':' {
        return None;
    }
    let (hour, minute, second) = (
        number(&time[..2])?,
        number(&time[3..5])?,
        number(&time[6..])?,
    );
    // Second 60 is a leap second; it counts as the first second of the next minute.
    if day == 0 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let clock = i64::from(hour * 3600 + minute * 60 + second);
    Some(days_from_civil(year, month, day) * 86_400 + clock)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month 1-12, day 1-31): Howard
/// Hinnant's `civil_from_days` (<https://howardhinnant.github.io/date_algorithms.html>).
/// Eras are 400-year cycles (146 097 days) starting on March 1st, so the leap day is the
/// last day of a "year" and needs no special case.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The inverse of [`civil_from_days`] (Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `get_at_instant` reads the wall clock only once the cached second is over.
    #[test]
    fn date_for_an_instant_rereads_the_clock_once_a_second() {
        let mut dates = DateCache::new();
        let now = Instant::now();
        dates.get_at_instant(now);
        // Poison the cache with 1970: within the second, the cached value is used ...
        dates.get_at(0);
        assert_eq!(dates.get_at_instant(now), b"Thu, 01 Jan 1970 00:00:00 GMT");
        // ... and once the second has surely ended, the clock is read again.
        let later = dates.get_at_instant(now + Duration::from_secs(1)).to_vec();
        assert_ne!(later, b"Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn known_dates() {
        let cases: &[(u64, &str)] = &[
            // The epoch, a Thursday.
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            // RFC 9110 §5.6.7's own example.
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            // Leap day in a year divisible by 400, and the day after.
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (951_868_800, "Wed, 01 Mar 2000 00:00:00 GMT"),
            // Leap day in an ordinary leap year.
            (1_709_164_800, "Thu, 29 Feb 2024 00:00:00 GMT"),
            // Year boundary: last second of a year, first of the next.
            (1_704_067_199, "Sun, 31 Dec 2023 23:59:59 GMT"),
            (1_704_067_200, "Mon, 01 Jan 2024 00:00:00 GMT"),
            // 2100 is not a leap year: Feb 28 is followed by Mar 1.
            (4_107_456_000, "Sun, 28 Feb 2100 00:00:00 GMT"),
            (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"),
            // i32 overflow second (2038) is nothing special here.
            (2_147_483_648, "Tue, 19 Jan 2038 03:14:08 GMT"),
            // The last representable second, and clamping beyond it.
            (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT"),
            (u64::MAX, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ];
        for (secs, want) in cases {
            let got = format_imf_fixdate(*secs);
            assert_eq!(std::str::from_utf8(&got), Ok(*want), "{secs}");
        }
    }

    #[test]
    fn cache_recomputes_per_second() {
        let mut cache = DateCache::new();
        assert_eq!(cache.get().len(), 29);
        assert_eq!(cache.get_at(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        // Same second: same bytes; next second: new bytes.
        assert_eq!(cache.get_at(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(cache.get_at(1), b"Thu, 01 Jan 1970 00:00:01 GMT");
    }

    #[test]
    fn signed_dates_are_clamped_to_four_digit_years() {
        let cases = [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_709_164_800, "Thu, 29 Feb 2024 00:00:00 GMT"),
            (-1, "Wed, 31 Dec 1969 23:59:59 GMT"),
            (MAX_HTTP_DATE, "Fri, 31 Dec 9999 23:59:59 GMT"),
            (i64::MAX, "Fri, 31 Dec 9999 23:59:59 GMT"),
            (i64::MIN, "Sat, 01 Jan 0000 00:00:00 GMT"),
        ];
        for (secs, text) in cases {
            assert_eq!(&imf_fixdate(secs)[..], text.as_bytes(), "{secs}");
        }
    }

    #[test]
    fn http_dates_round_trip() {
        // Every 7 days plus an odd number of seconds, across four centuries and leap days.
        let mut secs = -2_208_988_800; // 1900-01-01
        while secs < 10_413_792_000 {
            // 2300-01-01
            let text = String::from_utf8_lossy(&imf_fixdate(secs)).into_owned();
            assert_eq!(parse_http_date(&text, 0), Some(secs), "{text}");
            secs += 7 * 86_400 + 3_607;
        }
    }

    #[test]
    fn parse_http_date_table() {
        let now = 1_780_000_000; // 2026
        let cases: &[(&str, Option<i64>)] = &[
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(784_111_777)),
            ("Sunday, 06-Nov-94 08:49:37 GMT", Some(784_111_777)),
            ("Sun Nov  6 08:49:37 1994", Some(784_111_777)),
            ("Wed Nov 16 08:49:37 1994", Some(784_975_777)),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(0)),
            ("Tue, 29 Feb 2000 00:00:00 GMT", Some(951_782_400)),
            ("Sat, 31 Dec 2016 23:59:60 GMT", Some(1_483_228_800)),
            ("Tuesday, 01-Jan-30 00:00:00 GMT", Some(1_893_456_000)),
            ("Saturday, 01-Jan-77 00:00:00 GMT", Some(220_924_800)),
            ("Sun, 06 Nov 1994 08:49:37 UTC", None),
            ("sun, 06 Nov 1994 08:49:37 GMT", None),
            ("Sun, 06 nov 1994 08:49:37 GMT", None),
            ("Sun, 06 Nov 1994 08:49:37 gmt", None),
            ("Xyz, 06 Nov 1994 08:49:37 GMT", None),
            ("Sun, 31 Feb 1994 08:49:37 GMT", None),
            ("Thu, 29 Feb 1900 00:00:00 GMT", None),
            ("Sun, 00 Nov 1994 08:49:37 GMT", None),
            ("Sun, 06 Nov 1994 24:00:00 GMT", None),
            ("Sun, 06 Nov 1994 08:60:00 GMT", None),
            ("Sun, 06 Nov 1994 08:49:61 GMT", None),
            ("Sun, 06 Nov 1994 08-49-37 GMT", None),
            ("Sun, +6 Nov 1994 08:49:37 GMT", None),
            ("Sun, 6 Nov 1994 08:49:37 GMT", None),
            ("Sun,  06 Nov 1994 08:49:37 GMT", None),
            ("Sun, 06 Nov 1994 08:49:37 GMT ", None),
            (" Sun, 06 Nov 1994 08:49:37 GMT", None),
            ("Sun, 06-Nov-94 08:49:37 GMT", None),
            ("Sunday, 06 Nov 1994 08:49:37 GMT", None),
            ("Sun Nov 6 08:49:37 1994", None),
            ("Sun Nov  6 08:49:37   94", None),
            ("Sün, 06 Nov 1994 08:49:37 GM", None),
            ("1994-11-06T08:49:37Z", None),
            ("784111777", None),
            ("yesterday", None),
            (",", None),
            ("", None),
        ];
        for &(text, expected) in cases {
            assert_eq!(parse_http_date(text, now), expected, "{text:?}");
        }
    }
}
