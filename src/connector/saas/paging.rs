//! Paging a listing, and the one loop guard every listing shares.
//!
//! A listing goes on by an offset, a page number, an opaque cursor or a
//! next URL (a body field or a `Link` header). Whatever the strategy, an API
//! can go wrong in the same few ways, and each is an error rather than a
//! loop or an early end:
//!
//! - a page that says there is more but gives nothing to follow
//!   ([`Next::Missing`]);
//! - the cursor or URL a page was asked with, answered as the next one;
//! - an empty page that claims more;
//! - a cursor, URL or page met before at another offset ([`first_time`]:
//!   the same one at the same offset is a re-read, a retry or a resume).
//!
//! Vendor connectors check each page with [`step`]. Every check for a
//! cursor, URL or page met before goes through [`first_time`] on a [`Seen`]
//! the listing keeps: across the run for the manifest connector (which also
//! numbers pages and stops at a page limit) and Klaviyo's listing, within
//! one call for the getupdates searches (Intercom, Klaviyo) and Segment's
//! external ids, whose "offset" is the page number.

use std::collections::HashMap;

use anyhow::Result;

use crate::connector::{Page, Position, Record};
use crate::error::{failed, usage};
use crate::http::RequestSpec;

/// What a page says about the next one.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// The listing ends here.
    End,
    /// The next page's cursor (an opaque token).
    Cursor(String),
    /// The next page's URL, resolved against the base URL.
    Url(String),
    /// The page says there is more but gives nothing to follow: what is
    /// missing ("a paging.next.after cursor").
    Missing(&'static str),
}

impl Next {
    /// A cursor strategy's next page: `cursor`, or the end without one.
    pub fn cursor(cursor: Option<String>) -> Next {
        cursor.map_or(Next::End, Next::Cursor)
    }
}

/// The step from the page `req` answered (asked at `given`, a cursor or
/// for [`Next::Url`] the request's own URL) with `records` records of
/// `items` ("contacts") to the next: its cursor or URL, or `None` at the end.
pub fn step(
    req: &RequestSpec,
    given: Option<&str>,
    records: usize,
    items: &str,
    next: Next,
) -> Result<Option<String>> {
    let stop = |what: String, instead: &str| -> anyhow::Error {
        failed(format!(
            "{} {} {what}; stopping instead of {instead}",
            req.method,
            req.shown_url()
        ))
        .into()
    };
    let (next, again) = match next {
        Next::End => return Ok(None),
        Next::Missing(what) => {
            return Err(stop(
                format!("answered a next page without {what}"),
                "ending the listing early",
            ))
        }
        Next::Cursor(c) => (c, "answered the cursor it was given as the next one"),
        Next::Url(u) => (u, "answered itself as the next page"),
    };
    if given == Some(next.as_str()) {
        return Err(stop(again.to_string(), "looping"));
    }
    if records == 0 {
        return Err(stop(
            format!("answered no {items} but a next page"),
            "looping",
        ));
    }
    Ok(Some(next))
}

/// Refuse to start a listing that goes on by an opaque position (a cursor,
/// a time) at an offset without a checkpoint: it cannot jump ahead. `doing`
/// is what cannot start ("reading"); `hint` says what to do instead.
pub fn from_checkpoint(code: &str, doing: &str, from: &Position, hint: &str) -> Result<()> {
    if from.cursor.is_some() || from.offset == 0 {
        return Ok(());
    }
    Err(usage(format!(
        "connector {code} cannot start {doing} at offset {} without a checkpoint",
        from.offset
    ))
    .hint(hint.to_string())
    .into())
}

/// The page of `records` read at `from`: the next one starts after them,
/// at `next` (a cursor), unless the listing ended.
pub fn page(
    from: &Position,
    records: Vec<Record>,
    next: Option<String>,
    total: Option<u64>,
) -> Page {
    let n = records.len() as u64;
    Page {
        next: next.map(|cursor| Position {
            offset: from.offset + n,
            cursor: Some(cursor),
        }),
        records,
        total,
    }
}

/// The cursors, URLs and pages a listing has followed, each with the offset
/// it led to.
pub type Seen = HashMap<String, u64>;

/// Whether `key` leads somewhere new. Meeting it again at the same offset is
/// a re-read of the same page (a retry, a resume) and fine; meeting it at
/// another offset means the API is going round in circles.
pub fn first_time(seen: &mut Seen, key: String, offset: u64) -> bool {
    match seen.get(&key) {
        Some(&o) if o != offset => false,
        _ => {
            seen.insert(key, offset);
            true
        }
    }
}

/// The `rel="next"` URL of a `Link` header.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            p.trim()
                .replace(' ', "")
                .eq_ignore_ascii_case("rel=\"next\"")
                || p.trim().eq_ignore_ascii_case("rel=next")
        });
        is_next.then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> RequestSpec {
        RequestSpec::new("GET", "http://h/items?cursor=a")
    }

    fn err(r: Result<Option<String>>) -> String {
        format!("{:#}", r.unwrap_err())
    }

    #[test]
    fn a_step_ends_follows_or_refuses_to_loop() {
        assert_eq!(step(&req(), None, 0, "items", Next::End).unwrap(), None);
        let next = step(&req(), Some("a"), 2, "items", Next::Cursor("b".into()));
        assert_eq!(next.unwrap().as_deref(), Some("b"));
        let again = err(step(
            &req(),
            Some("a"),
            2,
            "items",
            Next::Cursor("a".into()),
        ));
        assert!(
            again.ends_with(
                "answered the cursor it was given as the next one; stopping instead of looping"
            ),
            "{again}"
        );
        let url = "http://h/items?cursor=a";
        let itself = err(step(&req(), Some(url), 2, "items", Next::Url(url.into())));
        assert!(
            itself.contains("answered itself as the next page"),
            "{itself}"
        );
        let empty = err(step(&req(), None, 0, "items", Next::Cursor("b".into())));
        assert!(
            empty.contains("answered no items but a next page"),
            "{empty}"
        );
        let missing = err(step(&req(), None, 1, "items", Next::Missing("a cursor")));
        assert!(
            missing.ends_with("without a cursor; stopping instead of ending the listing early"),
            "{missing}"
        );
    }

    #[test]
    fn a_key_met_again_elsewhere_is_a_loop_and_at_the_same_offset_a_reread() {
        let mut seen = Seen::new();
        assert!(first_time(&mut seen, "cursor:a".into(), 10));
        assert!(first_time(&mut seen, "cursor:a".into(), 10));
        assert!(!first_time(&mut seen, "cursor:a".into(), 20));
    }

    #[test]
    fn link_headers_give_the_next_url() {
        let h = r#"<https://api.example.com/c?page=1>; rel="prev", <https://api.example.com/c?page=3>; rel="next""#;
        assert_eq!(
            next_link(h).as_deref(),
            Some("https://api.example.com/c?page=3")
        );
        assert_eq!(next_link(r#"<https://x/1>; rel="last""#), None);
    }
}
