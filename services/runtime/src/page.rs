//! Keyset pagination as every listing does it: a page size of 1 to
//! [`MAX_LIMIT`], one row more fetched than the page shows to tell whether
//! another page follows, and a cursor naming the last item shown.

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::Object;

use crate::error::Error;

/// Page size when a request names none.
pub const DEFAULT_LIMIT: i64 = 50;

/// Largest page size a request may ask for.
pub const MAX_LIMIT: i64 = 200;

/// A page of a listing, as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// At most the requested number of items.
    pub items: Vec<T>,
    /// The cursor of the next page; `None` on the last one.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The page of the first `limit` of `rows`, which were fetched with
    /// `LIMIT limit + 1`: when the extra row came, another page follows, and
    /// its cursor is `cursor` of the last item kept.
    pub fn new(mut rows: Vec<T>, limit: i64, cursor: impl FnOnce(&T) -> String) -> Self {
        let next_cursor = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(cursor)
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

/// The page size of a request that asked for `requested` items: the default
/// when it named none, a 422 naming `limit` when outside 1 to [`MAX_LIMIT`].
pub fn limit<E>(requested: Option<i64>) -> Result<i64, Error<E>> {
    let limit = requested.unwrap_or(DEFAULT_LIMIT);
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(Error::validation(
            "limit",
            format!("must be an integer from 1 to {MAX_LIMIT}"),
        ))
    }
}

/// The schema of a `limit` query parameter: 1 to [`MAX_LIMIT`].
pub fn limit_schema() -> Object {
    crate::openapi::integer(1, MAX_LIMIT)
}

/// The 422 for a cursor that this API did not hand out.
pub fn bad_cursor<E>() -> Error<E> {
    Error::validation("cursor", "is not a cursor this API returned")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    #[test]
    fn the_row_beyond_the_limit_is_dropped_and_the_cursor_names_the_last_kept() {
        let page = Page::new(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(page.items, [1, 2]);
        assert_eq!(page.next_cursor.as_deref(), Some("2"));
    }

    #[test]
    fn the_last_page_has_no_cursor() {
        let page = Page::new(vec![1, 2], 2, |n| n.to_string());
        assert_eq!(page.items, [1, 2]);
        assert_eq!(page.next_cursor, None);
    }

    #[test]
    fn a_limit_is_defaulted_and_bounded() {
        assert_eq!(limit::<Infallible>(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit::<Infallible>(Some(MAX_LIMIT)).unwrap(), MAX_LIMIT);
        for bad in [0, -1, MAX_LIMIT + 1] {
            let err = limit::<Infallible>(Some(bad)).unwrap_err();
            assert_eq!(err.to_string(), "limit: must be an integer from 1 to 200");
        }
    }
}
