//! AIP-158 page tokens: opaque to clients, bound to the list they came from (RPC, tenant and
//! filters) by an HMAC-SHA256 under a key every replica derives from the same configuration, so a
//! token from one list, tenant or query is refused by any other.

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
}

type Mac = hmac::Hmac<sha2::Sha256>;

/// The MAC of `payload` for the list `binding` names.
fn mac(key: &[u8; 32], binding: &str, payload: &[u8]) -> Mac {
    use hmac::Mac as _;
    let mut mac = <Mac as hmac::Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(binding.as_bytes());
    mac.update(&[0]);
    mac.update(payload);
    mac
}

impl PageRequest {
    /// Decodes the request into a store query fetching one extra row (to know if more follow).
    /// `binding` names the list (see `Service::bind_page`); `key` is the replicas' shared key.
    pub(crate) fn query(&self, binding: &str, key: &[u8; 32]) -> Result<PageQuery, Error> {
        let size = match self.page_size {
            n if n < 0 => return Err(Error::invalid("page_size", "must not be negative")),
            0 => DEFAULT_PAGE_SIZE,
            n => u64::try_from(n).unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE),
        };
        let after = if self.page_token.is_empty() {
            None
        } else {
            let bad = || {
                Error::invalid(
                    "page_token",
                    "is not a token this list returned for these filters",
                )
            };
            let (payload, tag) = self.page_token.split_once('.').ok_or_else(bad)?;
            let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| bad())?;
            let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| bad())?;
            hmac::Mac::verify_slice(mac(key, binding, &payload), &tag).map_err(|_| bad())?;
            let token: Token = serde_json::from_slice(&payload).map_err(|_| bad())?;
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
    binding: &str,
    mac_key: &[u8; 32],
    key: impl Fn(&T) -> String,
) -> Page<T> {
    let size = usize::try_from(query.limit - 1).unwrap_or(usize::MAX);
    let next_page_token = if items.len() > size {
        items.truncate(size);
        items.last().map(|last| {
            let payload = serde_json::to_vec(&Token { a: key(last) }).unwrap_or_default();
            let tag = hmac::Mac::finalize(mac(mac_key, binding, &payload)).into_bytes();
            format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(&payload),
                URL_SAFE_NO_PAD.encode(tag)
            )
        })
    } else {
        None
    };
    Page {
        items,
        next_page_token,
    }
}

impl super::Service {
    /// What a page token is bound to: the RPC, the caller's tenant and the list's filters.
    pub(super) fn bind_page(&self, caller: &crate::domain::Caller, filters: &str) -> String {
        format!("{}\n{}\n{}", caller.rpc, caller.tenant, filters)
    }
}

/// The page-token key every replica derives alike from its configuration: the HS256 secret
/// when there is one, else the database URL (which carries its credentials).
pub fn page_token_key(material: &[&[u8]]) -> [u8; 32] {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"warden page tokens v1");
    for part in material {
        hasher.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn request(token: &str) -> PageRequest {
        PageRequest {
            page_size: 2,
            page_token: token.to_owned(),
        }
    }

    #[test]
    fn tokens_round_trip_and_only_continue_their_own_list() {
        let first = request("").query("ListRoles\nacme\np=", &KEY).unwrap();
        assert_eq!(first.limit, 3);
        let page = page(
            vec!["a", "b", "c"],
            &first,
            "ListRoles\nacme\np=",
            &KEY,
            |s| (*s).to_owned(),
        );
        assert_eq!(page.items, vec!["a", "b"]);
        let token = page.next_page_token.unwrap();
        let next = request(&token).query("ListRoles\nacme\np=", &KEY).unwrap();
        assert_eq!(next.after.as_deref(), Some("b"));
        // Another filter, tenant, RPC or key: refused.
        for binding in [
            "ListRoles\nacme\np=x",
            "ListRoles\nother\np=",
            "ListPermissions\nacme\np=",
        ] {
            assert!(request(&token).query(binding, &KEY).is_err(), "{binding}");
        }
        assert!(
            request(&token)
                .query("ListRoles\nacme\np=", &[8; 32])
                .is_err()
        );
        // A token edited to skip elsewhere: refused.
        let (_, tag) = token.split_once('.').unwrap();
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(br#"{"a":"zzz"}"#));
        assert!(request(&forged).query("ListRoles\nacme\np=", &KEY).is_err());
        assert!(
            request("garbage!")
                .query("ListRoles\nacme\np=", &KEY)
                .is_err()
        );
    }

    #[test]
    fn page_sizes_are_bounded() {
        let size = |n| {
            PageRequest {
                page_size: n,
                page_token: String::new(),
            }
            .query("", &KEY)
        };
        assert!(size(-1).is_err());
        assert_eq!(size(5000).unwrap().limit, 1001);
        assert_eq!(size(0).unwrap().limit, 51);
    }
}
