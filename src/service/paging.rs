//! AIP-158 page tokens: opaque to clients, bound to the query they came from.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::domain::{Error, Page};
use crate::store::PageQuery;

const DEFAULT_PAGE_SIZE: u64 = 50;
const MAX_PAGE_SIZE: u64 = 1000;

/// A list request's paging fields, as received.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub page_size: i32,
    pub page_token: String,
}

#[derive(Serialize, Deserialize)]
struct Token {
    /// The last key of the previous page.
    a: String,
    /// The query's filters; a token only continues the query that produced it.
    q: String,
}

impl PageRequest {
    /// Decodes the request into a store query fetching one extra row (to know if more follow).
    pub(crate) fn query(&self, filters: &str) -> Result<PageQuery, Error> {
        let size = match self.page_size {
            n if n < 0 => return Err(Error::invalid("page_size", "must not be negative")),
            0 => DEFAULT_PAGE_SIZE,
            n => u64::try_from(n).unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE),
        };
        let after = if self.page_token.is_empty() {
            None
        } else {
            let bad = || Error::invalid("page_token", "is not a token this list returned");
            let bytes = URL_SAFE_NO_PAD
                .decode(&self.page_token)
                .map_err(|_| bad())?;
            let token: Token = serde_json::from_slice(&bytes).map_err(|_| bad())?;
            if token.q != filters {
                return Err(Error::invalid(
                    "page_token",
                    "belongs to a list with other filters",
                ));
            }
            Some(token.a)
        };
        Ok(PageQuery {
            after,
            limit: size + 1,
        })
    }
}

/// Cuts the extra row off and makes the next token from the last key.
pub(crate) fn page<T>(
    mut items: Vec<T>,
    query: &PageQuery,
    filters: &str,
    key: impl Fn(&T) -> String,
) -> Page<T> {
    let size = usize::try_from(query.limit - 1).unwrap_or(usize::MAX);
    let next_page_token = if items.len() > size {
        items.truncate(size);
        items.last().map(|last| {
            let token = Token {
                a: key(last),
                q: filters.to_owned(),
            };
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
        })
    } else {
        None
    };
    Page {
        items,
        next_page_token,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_are_bound_to_their_filters() {
        let first = PageRequest {
            page_size: 2,
            page_token: String::new(),
        }
        .query("p=")
        .unwrap();
        assert_eq!(first.limit, 3);
        let page = page(vec!["a", "b", "c"], &first, "p=", |s| (*s).to_owned());
        assert_eq!(page.items, vec!["a", "b"]);
        let token = page.next_page_token.unwrap();
        let next = PageRequest {
            page_size: 2,
            page_token: token.clone(),
        }
        .query("p=")
        .unwrap();
        assert_eq!(next.after.as_deref(), Some("b"));
        assert!(
            PageRequest {
                page_size: 2,
                page_token: token
            }
            .query("p=x")
            .is_err()
        );
        assert!(
            PageRequest {
                page_size: 2,
                page_token: "garbage!".into()
            }
            .query("p=")
            .is_err()
        );
        assert!(
            PageRequest {
                page_size: -1,
                page_token: String::new()
            }
            .query("")
            .is_err()
        );
        assert_eq!(
            PageRequest {
                page_size: 5000,
                page_token: String::new()
            }
            .query("")
            .unwrap()
            .limit,
            1001
        );
    }
}
