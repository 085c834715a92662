//! The comparison `ferry test` makes between a case's recorded output and
//! the output of its replay: a few differences, each named by its JSON path.

use serde_json::Value;

/// How many differences a failed comparison lists.
const MAX_DIFFS: usize = 5;

/// The differences between the expected and the actual output, at most a
/// few, each as `at /path: expected X, got Y`. Empty when they are equal.
pub fn diff(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk("", expected, actual, &mut out);
    out
}

fn walk(at: &str, e: &Value, a: &Value, out: &mut Vec<String>) {
    if out.len() >= MAX_DIFFS || e == a {
        return;
    }
    match (e, a) {
        (Value::Object(em), Value::Object(am)) => {
            for (k, ev) in em {
                let here = format!("{at}/{k}");
                match am.get(k) {
                    Some(av) => walk(&here, ev, av, out),
                    None => push(
                        out,
                        format!("at {here}: expected {}, got nothing", short(ev)),
                    ),
                }
            }
            for (k, av) in am {
                if !em.contains_key(k) {
                    push(out, format!("at {at}/{k}: unexpected {}", short(av)));
                }
            }
        }
        (Value::Array(ea), Value::Array(aa)) if ea.len() == aa.len() => {
            for (i, (ev, av)) in ea.iter().zip(aa).enumerate() {
                walk(&format!("{at}/{i}"), ev, av, out);
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
            diff(&e, &a),
            vec![
                "at /entries/1/n: expected 2, got 3",
                "at /gone: expected true, got nothing",
                "at /new: unexpected 1",
            ]
        );
        assert!(diff(&e, &e).is_empty());
        assert_eq!(
            diff(&json!([1]), &json!([1, 2])),
            vec!["at /: expected 1 items, got 2"]
        );
    }
}
