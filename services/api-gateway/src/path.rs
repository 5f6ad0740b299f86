//! Path normalisation: the path the gateway matches and forwards is resolved
//! first, so `.` and `..` segments, percent-encoded or not, can never reach
//! a path (such as `/internal/...`) that a plain request could not.

use std::borrow::Cow;

/// Why a path is refused. Every variant is answered 404, which tells a prober
/// nothing about which rule fired.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The path is not absolute.
    NotAbsolute,
    /// A segment decodes to a slash, backslash or NUL: after one decoding
    /// step (by the upstream or anything between) it would split differently.
    EncodedSeparator,
    /// The resolved path is under `/internal/`, which is never public.
    Internal,
}

/// Resolves dot segments (RFC 3986 section 5.2.4, also when written as
/// `%2e`), drops empty segments, and refuses internal or ambiguous paths.
/// Segments keep their original percent-encoding.
pub fn resolve(path: &str) -> Result<String, Refused> {
    let rest = path.strip_prefix('/').ok_or(Refused::NotAbsolute)?;
    let trailing_slash = path.len() > 1 && path.ends_with('/');
    let mut segments: Vec<&str> = Vec::new();
    let mut decoded_first: Option<Cow<'_, [u8]>> = None;
    for segment in rest.split('/') {
        if segment.is_empty() {
            continue;
        }
        // Most segments have no escape and need no decoded copy.
        let decoded: Cow<'_, [u8]> = if segment.contains('%') {
            let decoded = percent_decode(segment);
            if decoded.iter().any(|b| matches!(b, b'/' | b'\\' | 0)) {
                return Err(Refused::EncodedSeparator);
            }
            Cow::Owned(decoded)
        } else if segment.contains('\\') {
            return Err(Refused::EncodedSeparator);
        } else {
            Cow::Borrowed(segment.as_bytes())
        };
        match &*decoded {
            b"." => {}
            b".." => {
                segments.pop();
                if segments.is_empty() {
                    decoded_first = None;
                }
            }
            _ => {
                if segments.is_empty() {
                    decoded_first = Some(decoded);
                }
                segments.push(segment);
            }
        }
    }
    if decoded_first.is_some_and(|first| first.eq_ignore_ascii_case(b"internal")) {
        return Err(Refused::Internal);
    }
    let mut out = String::with_capacity(path.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() || (trailing_slash && !segments.is_empty()) {
        out.push('/');
    }
    Ok(out)
}

/// Decodes `%XX` escapes; malformed escapes stay as they are.
fn percent_decode(segment: &str) -> Vec<u8> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// True when `path` is `prefix` itself or below it (`/api/v1/orders` covers
/// `/api/v1/orders/1` but not `/api/v1/ordersx`).
pub fn is_under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_unchanged() {
        assert_eq!(resolve("/api/v1/orders/1").unwrap(), "/api/v1/orders/1");
        assert_eq!(resolve("/api/v1/orders/").unwrap(), "/api/v1/orders/");
        assert_eq!(resolve("/").unwrap(), "/");
        assert_eq!(resolve("/a/%41b").unwrap(), "/a/%41b");
    }

    #[test]
    fn dot_segments_are_resolved_in_any_spelling() {
        assert_eq!(
            resolve("/api/v1/./orders/x/../1").unwrap(),
            "/api/v1/orders/1"
        );
        assert_eq!(
            resolve("/api/v1/orders/%2e%2E/products").unwrap(),
            "/api/v1/products"
        );
        assert_eq!(
            resolve("/api/v1/orders/.%2e/../v1/orders").unwrap(),
            "/api/v1/orders"
        );
        assert_eq!(resolve("/../../api").unwrap(), "/api");
        assert_eq!(resolve("//api//v1").unwrap(), "/api/v1");
    }

    #[test]
    fn nothing_resolves_into_internal() {
        for path in [
            "/internal/reservations",
            "/internal",
            "/INTERNAL/x",
            "/%69nternal/x",
            "/api/v1/orders/../../../internal/reservations",
            "/api/v1/orders/%2e%2e/%2e%2e/%2e%2e/internal/payments",
            "/api/v1/orders/%2E%2E/%2E%2E/%2e./internal/x",
            "//internal//x",
            "/./internal/x",
        ] {
            assert_eq!(resolve(path), Err(Refused::Internal), "{path}");
        }
    }

    #[test]
    fn encoded_separators_are_refused() {
        for path in [
            "/api/v1/orders/..%2F..%2Finternal",
            "/api/v1/orders/..%5c..%5cinternal",
            "/api/v1/orders/a%00b",
        ] {
            assert_eq!(resolve(path), Err(Refused::EncodedSeparator), "{path}");
        }
    }

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(is_under("/api/v1/orders", "/api/v1/orders"));
        assert!(is_under("/api/v1/orders/1", "/api/v1/orders"));
        assert!(!is_under("/api/v1/ordersx", "/api/v1/orders"));
        assert!(!is_under("/api/v1", "/api/v1/orders"));
    }
}
