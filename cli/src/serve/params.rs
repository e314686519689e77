//! Query-string parameters, checked strictly: an unknown or repeated
//! parameter is a 400, not silently ignored, so a typo such as
//! `?dihedal=true` cannot quietly change what is matched.

use std::collections::BTreeMap;

use hashgate::QuerySet;

use super::error::ApiError;

/// The parameters of one request.
#[derive(Debug, Default)]
pub struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    /// Parses `query` (without the `?`), accepting only `allowed` names.
    pub fn parse(query: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut values = BTreeMap::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name)?;
            let value = decode(value)?;
            if !allowed.contains(&name.as_str()) {
                return Err(ApiError::bad_query(format!(
                    "unknown parameter {name:?} (known: {})",
                    allowed.join(", ")
                )));
            }
            if values.insert(name.clone(), value).is_some() {
                return Err(ApiError::bad_query(format!(
                    "parameter {name:?} given twice"
                )));
            }
        }
        Ok(Params { values })
    }

    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A boolean parameter: `true`/`1`/empty or `false`/`0`; `default` when
    /// absent.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some("" | "true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(other) => Err(ApiError::bad_query(format!(
                "{name}={other:?}: expected true or false"
            ))),
        }
    }

    /// A query set (`own`, `dihedral`, `all`); `default` when absent.
    pub fn query_set(&self, name: &str, default: QuerySet) -> Result<QuerySet, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|e: String| ApiError::bad_query(format!("{name}: {e}"))),
        }
    }

    /// A number no larger than `max`; `default` when absent.
    pub fn number(&self, name: &str, default: u32, max: u32) -> Result<u32, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(text) => match text.parse::<u32>() {
                Ok(n) if n <= max => Ok(n),
                _ => Err(ApiError::bad_query(format!(
                    "{name}={text:?}: expected a whole number from 0 to {max}"
                ))),
            },
        }
    }
}

/// Percent-decodes one name or value (`+` is a space). Written here rather
/// than with `form_urlencoded` (which the `url` crate brings): that parser
/// is lenient by design (a bad escape stays as text, bytes that are not
/// UTF-8 become U+FFFD), and these parameters are strict: either is a 400.
fn decode(text: &str) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        ApiError::bad_query(format!("bad percent escape in {text:?}"))
                    })?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ApiError::bad_query("parameters must be UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decodes_and_is_strict() {
        let p = Params::parse(
            Some("lists=a%2Cb+c&dihedral&threshold=10"),
            &["lists", "dihedral", "threshold"],
        )
        .unwrap();
        assert_eq!(p.get("lists"), Some("a,b c"));
        assert_eq!(p.flag("dihedral", false), Ok(true));
        assert_eq!(p.flag("other", false), Ok(false));
        assert_eq!(p.number("threshold", 31, 31), Ok(10));
        assert_eq!(p.number("missing", 31, 31), Ok(31));

        assert!(Params::parse(Some("dihedal=true"), &["dihedral"]).is_err());
        assert!(Params::parse(Some("a=1&a=2"), &["a"]).is_err());
        assert!(Params::parse(Some("a=%zz"), &["a"]).is_err());
        assert!(Params::parse(Some("a=%ff"), &["a"]).is_err());
        let p = Params::parse(Some("t=32&f=yes"), &["t", "f"]).unwrap();
        assert!(p.number("t", 0, 31).is_err());
        assert!(p.flag("f", false).is_err());
        assert!(Params::parse(None, &[]).unwrap().get("x").is_none());
    }
}
