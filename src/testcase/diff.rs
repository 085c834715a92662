//! The comparison `ferry test` makes between a case's recorded output and
//! the output of its replay: a few differences, each named by its JSON path.

use serde_json::Value;

/// How many differences a failed comparison lists.
const MAX_DIFFS: usize = 5;

/// The differences between the expected and the actual output, at most a
/// few, each as `at /path: expected X, got Y`, leaving out the paths that
/// match a pattern of `ignore` (`/id`, `/entries/*/updatedAt`: `*` is any
/// key or index). Empty when they are equal.
pub fn diff(expected: &Value, actual: &Value, ignore: &[String]) -> Vec<String> {
    let patterns: Vec<Vec<&str>> = ignore
        .iter()
        .map(|p| p.trim_start_matches('/').split('/').collect())
        .collect();
    let mut out = Vec::new();
    walk("", expected, actual, &patterns, &mut out);
    out
}

/// Whether the path `at` (`/a/0/b`) matches one of the patterns.
fn ignored(at: &str, patterns: &[Vec<&str>]) -> bool {
    let parts: Vec<&str> = at.trim_start_matches('/').split('/').collect();
    patterns.iter().any(|p| {
        p.len() == parts.len()
            && p.iter()
                .zip(&parts)
                .all(|(want, got)| *want == "*" || want == got)
    })
}

fn walk(at: &str, e: &Value, a: &Value, ignore: &[Vec<&str>], out: &mut Vec<String>) {
    if out.len() >= MAX_DIFFS || e == a || (!at.is_empty() && ignored(at, ignore)) {
        return;
    }
    match (e, a) {
        (Value::Object(em), Value::Object(am)) => {
            for (k, ev) in em {
                let here = format!("{at}/{k}");
                if ignored(&here, ignore) {
                    continue;
                }
                match am.get(k) {
                    Some(av) => walk(&here, ev, av, ignore, out),
                    None => push(
                        out,
                        format!("at {here}: expected {}, got nothing", short(ev)),
                    ),
                }
            }
            for (k, av) in am {
                if !em.contains_key(k) && !ignored(&format!("{at}/{k}"), ignore) {
                    push(out, format!("at {at}/{k}: unexpected {}", short(av)));
                }
            }
        }
        (Value::Array(ea), Value::Array(aa)) if ea.len() == aa.len() => {
            for (i, (ev, av)) in ea.iter().zip(aa).enumerate() {
                walk(&format!("{at}/{i}"), ev, av, ignore, out);
            }
        }
        (Value::Array(ea), Value::Array(aa)) => push(
            out,
            format!(
                "at {}: expected {} items, got {}",
                if at.is_empty() { "/" } else { at },
                ea.len(),
                aa.len()
            ),
        ),
        _ => push(
            out,
            format!(
                "at {}: expected {}, got {}",
                if at.is_empty() { "/" } else { at },
                short(e),
                short(a)
            ),
        ),
    }
}

fn push(out: &mut Vec<String>, line: String) {
    if out.len() < MAX_DIFFS {
        out.push(line);
    }
}

/// A value shown in a diff line, cut when long.
fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_names_the_paths_that_differ() {
        let e = json!({"id": "a", "entries": [{"n": 1}, {"n": 2}], "gone": true});
        let a = json!({"id": "a", "entries": [{"n": 1}, {"n": 3}], "new": 1});
        assert_eq!(
            diff(&e, &a, &[]),
            vec![
                "at /entries/1/n: expected 2, got 3",
                "at /gone: expected true, got nothing",
                "at /new: unexpected 1",
            ]
        );
        assert!(diff(&e, &e, &[]).is_empty());
        assert_eq!(
            diff(&json!([1]), &json!([1, 2]), &[]),
            vec!["at /: expected 1 items, got 2"]
        );
    }

    #[test]
    fn ignored_paths_are_not_compared() {
        let e =
            json!({"id": "a", "entries": [{"n": 1, "at": "t1"}, {"n": 2, "at": "t2"}], "gone": 1});
        let a = json!({"id": "b", "entries": [{"n": 1, "at": "t3"}, {"n": 2}], "new": 1});
        let ignore = ["/id", "/entries/*/at", "/gone", "/new"].map(String::from);
        assert!(diff(&e, &a, &ignore).is_empty());
        assert_eq!(
            diff(&e, &a, &ignore[..1]),
            vec![
                "at /entries/0/at: expected \"t1\", got \"t3\"",
                "at /entries/1/at: expected \"t2\", got nothing",
                "at /gone: expected 1, got nothing",
                "at /new: unexpected 1",
            ]
        );
    }
}
