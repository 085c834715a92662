//! Command lines shown to the user to type again (the resume command of an
//! import, the command that re-records a cassette, who holds a lock): each
//! argument quoted for a POSIX shell when it needs to be. The one quoting
//! helper of the crate; the quoting itself is shell-words'.

use std::borrow::Cow;

/// `word` as a shell reads it back: bare when it holds only letters, digits
/// and `-_./:=@,+%`; single-quoted otherwise, an inner `'` written `'\''`.
/// A `#` is always quoted (`'sqlite:crm.db#people'`): POSIX shells read it
/// as a comment only at a word's start, but zsh with `EXTENDED_GLOB` reads
/// it anywhere as a glob operator, and a pasted resume command must work.
pub fn quote(word: &str) -> Cow<'_, str> {
    let bare = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
    if bare {
        return Cow::Borrowed(word);
    }
    match shell_words::quote(word) {
        quoted @ Cow::Owned(_) => quoted,
        // shell-words leaves braces, `!` and non-ASCII letters bare; a word
        // without a `'` is safe inside single quotes as it is.
        Cow::Borrowed(_) => Cow::Owned(format!("'{word}'")),
    }
}

/// [`quote`], as an owned string.
pub fn quote_owned(word: &str) -> String {
    quote(word).into_owned()
}

/// `words` quoted and joined by spaces.
pub fn join<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_needs_it_is_quoted() {
        assert_eq!(
            join(&["get", "--value", r#"{"a": "it's"}"#, "--id", "c_1"]),
            r#"get --value '{"a": "it'\''s"}' --id c_1"#
        );
        assert_eq!(quote("sqlite:out.db#t"), "'sqlite:out.db#t'");
        assert_eq!(quote("#t"), "'#t'");
        assert_eq!(quote("my file.jsonl"), "'my file.jsonl'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a{b,c}"), "'a{b,c}'");
        assert_eq!(quote("--value=@f.json"), "--value=@f.json");
        assert_eq!(quote("two\nlines"), "'two\nlines'");
    }
}
