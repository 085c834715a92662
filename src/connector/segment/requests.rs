//! Pure request building for the Segment Profile API
//! (docs/connectors/segment.md §2–§5): the listing of a space's profiles
//! `/v1/spaces/{space}/collections/users/profiles`, the per-profile routes
//! under `…/profiles/{type}:{value}/`, HTTP basic auth with the access token
//! as the user and an empty password, and the identifiers profiles are
//! looked up by.

use anyhow::Result;
use base64::Engine as _;

use crate::error::usage;
use crate::http::RequestSpec;

/// The identifier types a lookup may name: the vendor's examples, and
/// `segment_id`, the profile's own id that the listing answers (and that
/// Voucherify's initial-sync script reads profiles by).
pub const LOOKUP_TYPES: &[&str] = &[
    "user_id",
    "anonymous_id",
    "email",
    "phone_number",
    "segment_id",
];

/// The identifier types that may become the record id (`idField`).
pub const ID_TYPES: &[&str] = &["user_id", "email", "anonymous_id"];

/// External ids asked for per call: the documented maximum page size.
pub const EXTERNAL_IDS_PAGE: u32 = 100;

/// The listing cursor of the first page: what Voucherify's initial-sync
/// script sends (`next=0`), the only use of the listing route on record.
pub const FIRST_PAGE: &str = "0";

/// A profile's address in the API: `type:value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub kind: String,
    pub value: String,
}

impl Lookup {
    /// `TYPE:VALUE` when TYPE is a known identifier type, else the whole
    /// text is a value of `default_kind` (so a user id holding a colon
    /// stays whole).
    pub fn parse(text: &str, default_kind: &str) -> Result<Lookup> {
        let text = text.trim();
        if text.is_empty() {
            return Err(usage("an empty profile identifier")
                .hint("pass one: --id user_id:u1, --id email:a@example.com, or a plain value of idField")
                .into());
        }
        if let Some((kind, value)) = text.split_once(':') {
            if LOOKUP_TYPES.contains(&kind) {
                if value.is_empty() {
                    return Err(usage(format!(
                        "identifier \"{text}\" has no value after the colon"
                    ))
                    .hint(format!("write it as {kind}:VALUE"))
                    .into());
                }
                return Ok(Lookup {
                    kind: kind.to_string(),
                    value: value.to_string(),
                });
            }
        }
        Ok(Lookup {
            kind: default_kind.to_string(),
            value: text.to_string(),
        })
    }

    /// As written in records and messages: `user_id:u1`.
    pub fn shown(&self) -> String {
        format!("{}:{}", self.kind, self.value)
    }

    /// As written in a URL path.
    fn path(&self) -> String {
        format!(
            "{}:{}",
            self.kind,
            // Percent-encoded (a `+` in a phone number must be `%2B`, and
            // the vendor warns that unescaped characters may answer 500).
            crate::http::segment(&self.value)
        )
    }
}

/// Where requests go and how they authenticate.
#[derive(Debug, Clone)]
pub struct Api {
    pub base_url: String,
    pub space_id: String,
    pub access_token: String,
}

impl Api {
    /// `…/v1/spaces/{space}/collections/users/profiles`: the listing, and
    /// the prefix of every per-profile route.
    fn profiles_url(&self) -> String {
        format!(
            "{}/v1/spaces/{}/collections/users/profiles",
            self.base_url.trim_end_matches('/'),
            crate::http::segment(&self.space_id),
        )
    }

    fn request(&self, lookup: &Lookup, route: &str, query: &[(&str, String)]) -> RequestSpec {
        self.get(
            format!("{}/{}/{route}", self.profiles_url(), lookup.path()),
            query,
        )
    }

    /// A GET of `url` with `query`, authenticated.
    fn get(&self, mut url: String, query: &[(&str, String)]) -> RequestSpec {
        if !query.is_empty() {
            let q = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())))
                .finish();
            url.push('?');
            url.push_str(&q);
        }
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:", self.access_token));
        RequestSpec::new("GET", url)
            .header("Authorization", format!("Basic {basic}"))
            .header("Accept", "application/json")
    }

    /// `GET …/collections/users/profiles?limit=L&next=CURSOR`: one page of
    /// the space's profiles, `{"data": [{"segment_id"}], "cursor"}`.
    pub fn list(&self, limit: u32, next: &str) -> RequestSpec {
        self.get(
            self.profiles_url(),
            &[("limit", limit.to_string()), ("next", next.to_string())],
        )
    }

    /// `GET .../traits?limit=N`: up to N traits in one call.
    pub fn traits(&self, lookup: &Lookup, limit: u32) -> RequestSpec {
        self.request(lookup, "traits", &[("limit", limit.to_string())])
    }

    /// `GET .../external_ids?limit=100[&next=CURSOR]`.
    pub fn external_ids(&self, lookup: &Lookup, next: Option<&str>) -> RequestSpec {
        let mut q = vec![("limit", EXTERNAL_IDS_PAGE.to_string())];
        if let Some(n) = next {
            q.push(("next", n.to_string()));
        }
        self.request(lookup, "external_ids", &q)
    }

    /// `GET .../metadata`: the cheapest route, used by `check`.
    pub fn metadata(&self, lookup: &Lookup) -> RequestSpec {
        self.request(lookup, "metadata", &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::http::build::has_header;

    #[test]
    fn lookups_take_a_known_type_or_the_default() {
        let l = Lookup::parse("email:ada@example.com", "user_id").unwrap();
        assert_eq!(
            (l.kind.as_str(), l.value.as_str()),
            ("email", "ada@example.com")
        );
        let l = Lookup::parse(" google:123 ", "user_id").unwrap();
        assert_eq!(
            (l.kind.as_str(), l.value.as_str()),
            ("user_id", "google:123")
        );
        let l = Lookup::parse("segment_id:use_1", "user_id").unwrap();
        assert_eq!((l.kind.as_str(), l.value.as_str()), ("segment_id", "use_1"));
        assert!(Lookup::parse("  ", "user_id").is_err());
        assert!(Lookup::parse("email:", "user_id").is_err());
    }

    #[test]
    fn requests_escape_values_and_use_basic_auth_with_an_empty_password() {
        let api = Api {
            base_url: "https://profiles.segment.com/".into(),
            space_id: "spa_1".into(),
            access_token: "tok".into(),
        };
        let r = api.traits(
            &Lookup::parse("phone_number:+15555550123", "user_id").unwrap(),
            20,
        );
        assert_eq!(
            r.url,
            "https://profiles.segment.com/v1/spaces/spa_1/collections/users/profiles/phone_number:%2B15555550123/traits?limit=20"
        );
        // base64("tok:")
        assert!(has_header(&r, "Authorization", "Basic dG9rOg=="));
        let r = api.external_ids(&Lookup::parse("u1", "user_id").unwrap(), Some("map_x"));
        assert!(r
            .url
            .ends_with("/profiles/user_id:u1/external_ids?limit=100&next=map_x"));
        let r = api.list(50, "cur/2");
        assert_eq!(
            r.url,
            "https://profiles.segment.com/v1/spaces/spa_1/collections/users/profiles?limit=50&next=cur%2F2"
        );
        assert!(has_header(&r, "Authorization", "Basic dG9rOg=="));
    }
}
