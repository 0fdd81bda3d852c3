//! Query strings and list pages: `?limit=` (default 20, at most 100) and `?starting_after=<id>`,
//! answered as `{"data": [...], "has_more": bool}`. Lists are paged by key (the id, which sorts by
//! creation time), newest first, never by offset.

use crate::error::Error;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A query string parsed into `T`; a malformed one is `400 invalid_query`.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|err| {
                let param = err.path().to_string();
                let inner = err.into_inner().to_string();
                let mut e = Error::invalid(
                    "invalid_query",
                    format!("The query string is invalid: {inner}."),
                );
                if !param.is_empty() && param != "." {
                    e.param = Some(param);
                } else if let Some(field) = inner
                    .strip_prefix("unknown field `")
                    .and_then(|r| r.split('`').next())
                {
                    e.param = Some(field.to_owned());
                }
                e
            })
    }
}

/// The query of a list that takes none (it answers whole): any parameter is refused
/// (`400 invalid_query`), as lists refuse what they do not take.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// The paging parameters of the lists that page. A list that takes only these refuses any
/// other parameter (`400 invalid_query`), as lists with filters of their own do.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// How many items (1 to 100, default 20).
    pub limit: Option<i64>,
    /// An id from the previous page: items created before it come next.
    pub starting_after: Option<String>,
}

/// Checked paging parameters.
#[derive(Debug, Clone)]
pub struct Page {
    pub limit: i64,
    pub starting_after: Option<String>,
}

impl PageParams {
    pub fn parse(self) -> Result<Page, Error> {
        let limit = self.limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return Err(
                Error::invalid("limit_out_of_range", "limit must be between 1 and 100.")
                    .param("limit"),
            );
        }
        if let Some(after) = &self.starting_after
            && (after.is_empty()
                || after.len() > 64
                || !after
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            return Err(Error::invalid(
                "invalid_cursor",
                "starting_after must be an id from a previous page.",
            )
            .param("starting_after"));
        }
        Ok(Page {
            limit,
            starting_after: self.starting_after,
        })
    }
}

impl Page {
    /// The first page of `limit` items (for pages that show one screenful).
    pub fn first(limit: i64) -> Page {
        Page {
            limit: limit.clamp(1, 100),
            starting_after: None,
        }
    }

    /// The cursor for SQL, as `($n IS NULL OR id < $n)`: newest first, from the top when absent.
    pub fn cursor(&self) -> Option<String> {
        self.starting_after.clone()
    }

    /// Asks the database for one more than the page holds, to learn whether there are more.
    pub fn fetch_limit(&self) -> i64 {
        self.limit + 1
    }

    /// Trims the extra row and says whether there was one.
    pub fn finish<T>(&self, mut rows: Vec<T>) -> List<T> {
        let has_more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        List {
            data: rows,
            has_more,
        }
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

impl<T> List<T> {
    /// A list answered whole, never paged: there is no next page.
    pub fn whole(data: Vec<T>) -> List<T> {
        List {
            data,
            has_more: false,
        }
    }
}
