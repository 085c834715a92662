//! The outcomes of `ferry test` as a JUnit XML report (one testsuite named
//! for the connector folder, one testcase per case), written by quick-junit
//! so escaping and the schema's attributes are its concern.

use std::time::Duration;

use anyhow::{Context, Result};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::Outcome;

/// The report, as XML text.
pub fn junit(suite: &str, outcomes: &[Outcome]) -> Result<String> {
    let total: Duration = outcomes.iter().map(|o| o.time).sum();
    let mut tests = TestSuite::new(suite);
    tests.set_time(total);
    for o in outcomes {
        let status = match &o.error {
            None => TestCaseStatus::success(),
            Some(err) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status
                    .set_message(err.lines().next().unwrap_or(""))
                    .set_description(err.as_str());
                status
            }
        };
        let mut case = TestCase::new(o.name.as_str(), status);
        case.set_classname(suite).set_time(o.time);
        tests.add_test_case(case);
    }
    let mut report = Report::new("ferry test");
    report.set_time(total).add_test_suite(tests);
    report
        .to_string()
        .context("could not render the JUnit report")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_escapes_what_it_quotes() {
        let xml = junit(
            "conn",
            &[
                Outcome {
                    name: "a".into(),
                    ok: true,
                    error: None,
                    updated: false,
                    time: Duration::from_millis(500),
                },
                Outcome {
                    name: "b<&>".into(),
                    ok: false,
                    error: Some("at /x: expected \"1\"\nmore".into()),
                    updated: false,
                    time: Duration::ZERO,
                },
            ],
        )
        .unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let suite = doc
            .descendants()
            .find(|n| n.has_tag_name("testsuite"))
            .unwrap();
        assert_eq!(suite.attribute("tests"), Some("2"), "{xml}");
        assert_eq!(suite.attribute("failures"), Some("1"), "{xml}");
        assert!(xml.contains("name=\"b&lt;&amp;&gt;\""), "{xml}");
        assert!(
            xml.contains("message=\"at /x: expected &quot;1&quot;\""),
            "{xml}"
        );
        let failure = doc
            .descendants()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        assert_eq!(failure.text(), Some("at /x: expected \"1\"\nmore"));
    }
}
