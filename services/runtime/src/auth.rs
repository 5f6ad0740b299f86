//! The admin bearer token that guards write and listing endpoints.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::{header, request::Parts};
use subtle::ConstantTimeEq;

use crate::problem::Problem;

/// The admin token, from the deployment's secret (`ADMIN_TOKEN`).
#[derive(Clone)]
pub struct AdminToken(std::sync::Arc<str>);

impl AdminToken {
    /// Wraps a token; an empty token would let anyone in, so it is refused.
    pub fn new(token: impl Into<String>) -> Result<Self, String> {
        let token = token.into();
        if token.trim().is_empty() {
            return Err("ADMIN_TOKEN must not be empty".into());
        }
        Ok(AdminToken(token.into()))
    }

    /// True when the `Authorization` header carries this token. The comparison
    /// takes the same time wherever the first differing byte is.
    pub fn allows(&self, parts: &Parts) -> bool {
        let Some(presented) = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
        else {
            return false;
        };
        presented.as_bytes().ct_eq(self.0.as_bytes()).into()
    }
}

/// The credentials of `Authorization: Bearer <token>`; the scheme name is
/// case-insensitive (RFC 9110 section 11.1), the spaces after it any number.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

impl std::str::FromStr for AdminToken {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AdminToken::new(s)
    }
}

/// Extractor that admits only requests carrying the admin token; others get
/// 401 `unauthorized`. Put it first in a handler's arguments.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl<S> FromRequestParts<S> for Admin
where
    AdminToken: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if AdminToken::from_ref(state).allows(parts) {
            Ok(Admin)
        } else {
            Err(Problem::unauthorized())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(auth: Option<&str>) -> Parts {
        let mut b = Request::builder();
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn only_the_exact_bearer_token_is_allowed() {
        let t = AdminToken::new("s3cret").unwrap();
        assert!(t.allows(&parts(Some("Bearer s3cret"))));
        assert!(!t.allows(&parts(Some("Bearer s3cre"))));
        assert!(!t.allows(&parts(Some("Bearer s3cret2"))));
        assert!(!t.allows(&parts(Some("s3cret"))));
        assert!(!t.allows(&parts(None)));
    }

    #[test]
    fn the_scheme_name_is_case_insensitive() {
        let t = AdminToken::new("s3cret").unwrap();
        for auth in ["bearer s3cret", "BEARER s3cret", "BeArEr  s3cret"] {
            assert!(t.allows(&parts(Some(auth))), "{auth}");
        }
        assert!(!t.allows(&parts(Some("Basic s3cret"))));
        assert!(!t.allows(&parts(Some("Bearers3cret"))));
    }

    #[test]
    fn empty_token_is_refused() {
        assert!(AdminToken::new("  ").is_err());
    }
}
