//! Range checks for the numbers ferry reads from files and flags. A number
//! outside what the code can use (a timeout of 1e20 seconds overflows a
//! `Duration`, a rate of 1e-300 requests per second a token bucket's period)
//! must be a configuration error naming where it came from, the key and the
//! allowed range, never a panic or a silent clamp. The ranges themselves
//! live next to the code that uses the number; this module only words the
//! checks once.

use crate::error::{usage, Failure};

/// Where a number came from: a file and its JSON path
/// (`account.json`, `timeoutSecs.total`), or a flag (`""`, `--rate-limit`).
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    pub source: &'a str,
    pub key: &'a str,
}

impl<'a> At<'a> {
    /// A key of a file.
    pub fn file(source: &'a str, key: &'a str) -> At<'a> {
        At { source, key }
    }

    /// A command-line flag.
    pub fn flag(flag: &'a str) -> At<'a> {
        At {
            source: "",
            key: flag,
        }
    }

    /// `problem` ("1e20 is out of range") with the key, the range and a fix.
    fn error(&self, problem: &str, min: &str, max: &str, unit: &str) -> Failure {
        let prefix = if self.source.is_empty() {
            String::new()
        } else {
            format!("{}: ", self.source)
        };
        let unit = if unit.is_empty() {
            String::new()
        } else {
            format!(" {unit}")
        };
        let fix = if self.source.is_empty() {
            format!("pass {} a number from {min} to {max}", self.key)
        } else {
            format!(
                "set {} in {} to a number from {min} to {max}",
                self.key, self.source
            )
        };
        usage(format!(
            "{prefix}{}: {problem}: expected {min} to {max}{unit}",
            self.key
        ))
        .hint(fix)
    }
}

/// A number as a message shows it: `1e20` rather than 21 digits.
fn show(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v != 0.0 && !(1e-4..1e15).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// `value` if it is a finite number from `min` to `max` (inclusive).
pub fn float(value: f64, at: At, min: f64, max: f64, unit: &str) -> Result<f64, Failure> {
    if value >= min && value <= max {
        Ok(value)
    } else {
        let problem = format!("{} is out of range", show(value));
        Err(at.error(&problem, &show(min), &show(max), unit))
    }
}

/// `value` as a whole number from `min` to `max`; a fraction is refused too.
pub fn whole(value: f64, at: At, min: u64, max: u64, unit: &str) -> Result<u64, Failure> {
    if value >= min as f64 && value <= max as f64 && value.fract() == 0.0 {
        Ok(value as u64)
    } else {
        let problem = if value.is_finite() && value.fract() != 0.0 {
            format!("{} is not a whole number", show(value))
        } else {
            format!("{} is out of range", show(value))
        };
        Err(at.error(&problem, &min.to_string(), &max.to_string(), unit))
    }
}

/// An integer `value` from `min` to `max`.
pub fn int(value: u64, at: At, min: u64, max: u64, unit: &str) -> Result<u64, Failure> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        let problem = format!("{value} is out of range");
        Err(at.error(&problem, &min.to_string(), &max.to_string(), unit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_numbers_name_the_key_and_the_range() {
        let at = At::file("account.json", "timeoutSecs");
        assert_eq!(float(3.0, at, 0.001, 86400.0, "seconds").unwrap(), 3.0);
        let e = float(1e20, at, 0.001, 86400.0, "seconds").unwrap_err();
        assert_eq!(
            e.message,
            "account.json: timeoutSecs: 1e20 is out of range: expected 0.001 to 86400 seconds"
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("set timeoutSecs in account.json to a number from 0.001 to 86400")
        );
        assert!(float(f64::NAN, at, 0.0, 1.0, "").is_err());
        assert!(float(f64::INFINITY, at, 0.0, 1.0, "").is_err());
        let e = float(
            1e-300,
            At::flag("--rate-limit"),
            0.001,
            1e5,
            "requests per second",
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "--rate-limit: 1e-300 is out of range: expected 0.001 to 100000 requests per second"
        );
        assert_eq!(whole(4.0, at, 1, 10, "").unwrap(), 4);
        let e = whole(2.5, At::file("a.json", "retry.maxAttempts"), 1, 10, "").unwrap_err();
        assert_eq!(
            e.message,
            "a.json: retry.maxAttempts: 2.5 is not a whole number: expected 1 to 10"
        );
        assert!(whole(-1.0, at, 0, 10, "").is_err());
        assert!(int(0, at, 1, 10, "").is_err());
    }
}
