//! The shared HTTP engine against wiremock servers: rate limits, the retry
//! policy per status, the maximum 429 wait, network failures. Every mock
//! states how many requests it expects, so a request not made (or made
//! once too often) fails the test. The engines wait on a virtual clock:
//! nothing sleeps, and the tests assert the waits the engine chose.

use std::time::{Duration, Instant};

use crate::support::MountOnce;
use ferry::http::clock::Why;
use ferry::http::{Clock, Engine, Policy, RateLimit, RequestSpec};
use ferry::output::Output;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

/// An engine on a virtual clock of its own: its waits return at once.
fn engine(policy: Policy) -> Engine {
    engine_on(policy, &Clock::virtual_time())
}

/// An engine waiting on `clock`, whose waits a test reads.
fn engine_on(policy: Policy, clock: &Clock) -> Engine {
    Engine::new(Output::new(), policy)
        .expect("engine")
        .with_clock(clock.clone())
}

/// The waits of `clock` that were for `why`.
fn waits(clock: &Clock, why: Why) -> Vec<Duration> {
    (clock.waits().into_iter())
        .filter(|(w, _)| *w == why)
        .map(|(_, wait)| wait)
        .collect()
}

/// A short backoff, so the retry waits are small.
fn fast() -> Policy {
    let mut p = Policy::default();
    p.retry.base_delay = Duration::from_millis(10);
    p
}

fn render_err(err: &anyhow::Error) -> String {
    let mut text = format!("error: {err}\n");
    if let Some(f) = ferry::error::find_failure(err) {
        if let Some(h) = &f.hint {
            text.push_str(&format!("hint: {h}\n"));
        }
    }
    crate::support::filter(&text, std::path::Path::new("/nonexistent"))
}

#[tokio::test]
async fn the_rate_limit_is_honoured() {
    let server = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .and(path("/items"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .expect(11)
        .mount(&server)
        .await;
    let mut p = fast();
    p.default = RateLimit {
        rps: 5.0,
        burst: 1,
        max_in_flight: 4,
    };
    let clock = Clock::virtual_time();
    let e = std::sync::Arc::new(engine_on(p, &clock));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..11 {
        let e = e.clone();
        let url = format!("{}/items", server.uri());
        tasks.spawn(async move {
            e.send(&RequestSpec::new("GET", url))
                .await
                .map(|r| r.status)
        });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.expect("task").expect("request"), 200);
    }
    // 11 requests at 5 per second with a burst of 1: the first goes at once,
    // the other ten one every 200 ms.
    assert_eq!(
        waits(&clock, Why::Slot),
        vec![Duration::from_millis(200); 10]
    );
    assert_eq!(waits(&clock, Why::Retry), vec![]);
}

#[tokio::test]
async fn endpoint_groups_have_their_own_buckets() {
    let server = crate::support::mock::server().await;
    Mock::given(method("POST"))
        .and(path("/bulk"))
        .respond_with(ResponseTemplate::new(200))
        .expect(3)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/fast"))
        .respond_with(ResponseTemplate::new(200))
        .expect(3)
        .mount(&server)
        .await;
    let mut p = fast();
    p.groups = vec![ferry::http::Group {
        name: "bulk".into(),
        methods: vec!["POST".into()],
        path: "/bulk".into(),
        limit: RateLimit {
            rps: 2.0,
            burst: 1,
            max_in_flight: 1,
        },
    }];
    p.default = RateLimit {
        rps: 100.0,
        burst: 10,
        max_in_flight: 4,
    };
    let clock = Clock::virtual_time();
    let e = engine_on(p, &clock);
    for _ in 0..3 {
        e.send(&RequestSpec::new("GET", format!("{}/fast", server.uri())))
            .await
            .expect("get");
    }
    assert_eq!(clock.waits(), vec![], "the default group was throttled");
    for _ in 0..3 {
        e.send(&RequestSpec::new("POST", format!("{}/bulk", server.uri())))
            .await
            .expect("post");
    }
    // 3 bulk requests at 2 rps: the first at once, then one every 500 ms.
    assert_eq!(
        clock.waits(),
        vec![(Why::Slot, Duration::from_millis(500)); 2]
    );
}

#[tokio::test]
async fn retry_after_is_honoured_without_spending_the_retry_budget() {
    let server = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .and(path("/limited"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/limited"))
        .once(
            ResponseTemplate::new(200).set_body_string(r#"{"ok": true}"#),
            &server,
        )
        .await;
    let mut p = fast();
    // One attempt only: the 429 waits must not count against it.
    p.retry.max_attempts = 1;
    let clock = Clock::virtual_time();
    let e = engine_on(p, &clock);
    let r = e
        .send(&RequestSpec::new(
            "GET",
            format!("{}/limited", server.uri()),
        ))
        .await
        .expect("succeeds after the waits");
    assert_eq!(r.status, 200);
    assert_eq!(
        clock.waits(),
        vec![(Why::Retry, Duration::from_secs(1)); 2],
        "two Retry-After: 1"
    );
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let server = crate::support::mock::server().await;
    let at = std::time::SystemTime::now() + Duration::from_secs(2);
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", httpdate::fmt_http_date(at).as_str()),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .once(ResponseTemplate::new(200), &server)
        .await;
    let clock = Clock::virtual_time();
    let e = engine_on(fast(), &clock);
    e.send(&RequestSpec::new("GET", server.uri()))
        .await
        .expect("ok");
    // HTTP dates have whole seconds: the wait is between 1 and 2 seconds.
    let waited = waits(&clock, Why::Retry);
    assert_eq!(waited.len(), 1, "{waited:?}");
    let secs = waited[0].as_secs_f64();
    assert!((0.9..3.0).contains(&secs), "waited {secs:.2}s");
}

#[tokio::test]
async fn a_wait_beyond_the_maximum_fails_and_names_the_knob() {
    let server = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .once(
            ResponseTemplate::new(429).insert_header("Retry-After", "3600"),
            &server,
        )
        .await;
    let clock = Clock::virtual_time();
    let e = engine_on(fast(), &clock);
    let err = e
        .send(&RequestSpec::new(
            "GET",
            format!("{}/c?api_key=CANARY-s3cr3t-9f8e", server.uri()),
        ))
        .await
        .expect_err("the wait is too long");
    assert_eq!(clock.waits(), vec![], "slept through the wait");
    insta::assert_snapshot!("max_wait_enforced", render_err(&err));
}

#[tokio::test]
async fn server_errors_back_off_then_succeed() {
    let server = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(408))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .once(ResponseTemplate::new(200).set_body_string("{}"), &server)
        .await;
    let clock = Clock::virtual_time();
    let r = engine_on(fast(), &clock)
        .send(&RequestSpec::new("GET", server.uri()))
        .await
        .expect("ok");
    assert_eq!(r.status, 200);
    // Three backoffs, each at most the doubling cap of 10, 20 and 40 ms.
    let waited = waits(&clock, Why::Retry);
    let caps = [10, 20, 40].map(Duration::from_millis);
    assert_eq!(waited.len(), 3, "{waited:?}");
    assert!(
        waited.iter().zip(caps).all(|(w, cap)| *w <= cap),
        "{waited:?}"
    );
}

#[tokio::test]
async fn server_errors_stop_after_max_attempts_with_the_vendor_message() {
    let server = crate::support::mock::server().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_string(r#"{"errors": [{"detail": "database is down"}]}"#),
        )
        .expect(3)
        .mount(&server)
        .await;
    let mut p = fast();
    p.retry.max_attempts = 3;
    let err = engine(p)
        .send(&RequestSpec::new(
            "POST",
            format!("{}/customers", server.uri()),
        ))
        .await
        .expect_err("fails");
    insta::assert_snapshot!("server_errors_exhausted", render_err(&err));
}

#[tokio::test]
async fn client_errors_and_501_are_not_retried() {
    let server = crate::support::mock::server().await;
    Mock::given(method("POST"))
        .and(path("/customers"))
        .once(
            ResponseTemplate::new(422)
                .set_body_string(r#"{"error": {"message": "email is required"}}"#),
            &server,
        )
        .await;
    Mock::given(method("GET"))
        .and(path("/nope"))
        .once(ResponseTemplate::new(501), &server)
        .await;
    let e = engine(fast());
    let err = e
        .send(&RequestSpec::new(
            "POST",
            format!("{}/customers?token=abc", server.uri()),
        ))
        .await
        .expect_err("422");
    insta::assert_snapshot!("client_error_not_retried", render_err(&err));
    let err = e
        .send(&RequestSpec::new("GET", format!("{}/nope", server.uri())))
        .await
        .expect_err("501");
    assert!(err.to_string().contains("501 Not Implemented"), "{err}");
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[tokio::test]
async fn a_post_network_failure_is_not_retried() {
    let port = closed_port();
    let e = engine(fast());
    let err = e
        .send(
            &RequestSpec::new("POST", format!("http://127.0.0.1:{port}/customers"))
                .json(serde_json::json!({"a": 1})),
        )
        .await
        .expect_err("nothing listens");
    let text = render_err(&err);
    assert!(
        text.starts_with("error: POST http://127.0.0.1:[PORT]/customers failed: could not connect"),
        "{text}"
    );
    assert!(
        text.contains("POST is not retried after a network failure"),
        "{text}"
    );
}

#[tokio::test]
async fn a_get_network_failure_is_retried_up_to_max_attempts() {
    let port = closed_port();
    let mut p = fast();
    p.retry.max_attempts = 3;
    let err = engine(p)
        .send(&RequestSpec::new(
            "GET",
            format!("http://127.0.0.1:{port}/customers?secret=x"),
        ))
        .await
        .expect_err("nothing listens");
    let text = render_err(&err);
    assert!(
        text.starts_with("error: GET http://127.0.0.1:[PORT]/customers?secret=*** failed after 3 attempts: could not connect"),
        "{text}"
    );
}

#[tokio::test]
async fn an_attempt_times_out() {
    let server = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .expect(2)
        .mount(&server)
        .await;
    let mut p = fast();
    p.retry.max_attempts = 2;
    p.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = engine(p)
        .send(&RequestSpec::new("GET", server.uri()))
        .await
        .expect_err("times out");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        err.to_string()
            .contains("failed after 2 attempts: timed out"),
        "{err}"
    );
}

#[tokio::test]
async fn a_vendor_reset_header_is_honoured_without_retry_after() {
    let server = crate::support::mock::server().await;
    let reset_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 2;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("X-Vendor-Reset", reset_at.to_string().as_str()),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .once(ResponseTemplate::new(200), &server)
        .await;
    let mut p = fast();
    p.reset_header = Some("X-Vendor-Reset".into());
    let clock = Clock::virtual_time();
    engine_on(p, &clock)
        .send(&RequestSpec::new("GET", server.uri()))
        .await
        .expect("ok");
    // A Unix time in whole seconds, two seconds ahead: a wait of one to two seconds.
    let waited = waits(&clock, Why::Retry);
    assert_eq!(waited.len(), 1, "{waited:?}");
    let secs = waited[0].as_secs_f64();
    assert!((0.9..3.0).contains(&secs), "waited {secs:.2}s");
}

#[tokio::test]
async fn a_request_that_cannot_be_built_fails_at_once_without_retries() {
    let started = Instant::now();
    let mut p = fast();
    p.retry.base_delay = Duration::from_secs(5);
    let clock = Clock::virtual_time();
    let err = engine_on(p, &clock)
        .send(
            &RequestSpec::new("GET", format!("http://127.0.0.1:{}/c", closed_port()))
                .header("X-Value", "line\nbreak"),
        )
        .await
        .expect_err("an invalid header value");
    assert!(started.elapsed() < Duration::from_secs(2), "it was retried");
    assert_eq!(clock.waits(), vec![], "it was retried");
    assert!(err.to_string().contains("could not be sent"), "{err}");
}
