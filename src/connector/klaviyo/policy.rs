//! Klaviyo's rate limits: each endpoint ferry calls is its own group,
//! paced by its documented burst (a second) and steady (a minute) rate.

use anyhow::Result;

use crate::connector::saas::HttpOptions;
use crate::connector::Options;
use crate::http::{Group, Policy, RateLimit};

/// One endpoint's documented limits: `burst` a second, `steady` a minute.
fn endpoint(name: &str, methods: &[&str], path: &str, burst: u32, steady: u32) -> Group {
    Group {
        name: name.into(),
        methods: methods.iter().map(|m| m.to_string()).collect(),
        path: path.into(),
        limit: RateLimit {
            rps: f64::from(steady - burst) / 60.0,
            burst,
            max_in_flight: burst.min(8) as usize,
        },
    }
}

/// Every endpoint ferry calls, with its `x-klaviyo-ratelimit`.
fn groups() -> Vec<Group> {
    vec![
        endpoint("getProfiles", &["GET"], "/api/profiles", 75, 750),
        endpoint("getProfile", &["GET"], "/api/profiles/*", 75, 750),
        endpoint("createProfile", &["POST"], "/api/profiles", 75, 750),
        endpoint("updateProfile", &["PATCH"], "/api/profiles/*", 75, 750),
        endpoint("upsertProfile", &["POST"], "/api/profile-import", 75, 750),
        endpoint(
            "bulkImport",
            &["POST"],
            "/api/profile-bulk-import-jobs",
            10,
            150,
        ),
        endpoint(
            "bulkImportJobs",
            &["GET"],
            "/api/profile-bulk-import-jobs/**",
            10,
            150,
        ),
        endpoint(
            "deleteProfile",
            &["POST"],
            "/api/data-privacy-deletion-jobs",
            3,
            60,
        ),
        endpoint("getLists", &["GET"], "/api/lists", 75, 750),
        endpoint("createList", &["POST"], "/api/lists", 10, 150),
        endpoint(
            "addToList",
            &["POST"],
            "/api/lists/*/relationships/profiles",
            10,
            150,
        ),
        endpoint(
            "removeFromList",
            &["DELETE"],
            "/api/lists/*/relationships/profiles",
            10,
            150,
        ),
    ]
}

/// The rate limits of docs/connectors/klaviyo.md §2–§4, per endpoint.
pub(super) fn policy(options: &Options, http: &HttpOptions) -> Result<Policy> {
    let mut policy = Policy {
        source: options.source().to_string(),
        // Requests that match no endpoint below get tier M (10/s, 150/m).
        default: RateLimit {
            rps: 140.0 / 60.0,
            burst: 10,
            max_in_flight: 8,
        },
        groups: groups(),
        ..Policy::default()
    };
    http.apply_to(&mut policy)?;
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_endpoint_has_its_own_limit_and_no_minute_exceeds_the_steady_rate() {
        let p = Policy {
            groups: groups(),
            ..Policy::default()
        };
        let name = |m: &str, path: &str| p.group_index(m, path).map(|i| p.groups[i].name.as_str());
        assert_eq!(name("GET", "/api/profiles"), Some("getProfiles"));
        assert_eq!(name("GET", "/api/profiles/01GD"), Some("getProfile"));
        assert_eq!(name("PATCH", "/api/profiles/01GD"), Some("updateProfile"));
        assert_eq!(name("POST", "/api/profile-import"), Some("upsertProfile"));
        assert_eq!(
            name("GET", "/api/profile-bulk-import-jobs/J/import-errors"),
            Some("bulkImportJobs")
        );
        assert_eq!(
            name("POST", "/api/data-privacy-deletion-jobs"),
            Some("deleteProfile")
        );
        assert_eq!(name("POST", "/api/lists"), Some("createList"));
        assert_eq!(
            name("POST", "/api/lists/L1/relationships/profiles"),
            Some("addToList")
        );
        assert_eq!(
            name("DELETE", "/api/lists/L1/relationships/profiles"),
            Some("removeFromList")
        );
        assert_eq!(name("GET", "/api/accounts"), None);
        let upsert = &p.groups[4].limit;
        assert_eq!((upsert.burst, upsert.rps), (75, 11.25));
        // A full burst, then a minute at the steady rate, stays within 750.
        assert!(f64::from(upsert.burst) + upsert.rps * 60.0 <= 750.0);
        let delete = &p.groups[7].limit;
        assert!(f64::from(delete.burst) + delete.rps * 60.0 <= 60.0);
    }
}
