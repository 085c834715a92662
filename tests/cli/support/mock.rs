//! Strict wiremock servers: the only way the tests get one. A server from
//! [`server`] carries a catch-all mock, mounted below every other mock and
//! expecting no request, so a request that no test mock matches fails the
//! test when the server drops (naming the request) instead of getting
//! wiremock's 404 — which a connector may read as "not found" and go on, so
//! a test could pass by accident.

use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The lowest priority wiremock has: every other mock is tried first.
const LAST: u8 = u8::MAX;

/// A started wiremock server that fails the test on any unexpected request.
pub async fn server() -> MockServer {
    let server = MockServer::start().await;
    catch_all(&server).await;
    server
}

/// `server.reset()` for a strict server: every mock and every recorded
/// request is dropped, and the catch-all is mounted again (a bare reset
/// would leave the server lenient).
pub async fn reset(server: &MockServer) {
    server.reset().await;
    catch_all(server).await;
}

async fn catch_all(server: &MockServer) {
    Mock::given(any())
        .respond_with(
            // A client error, so the engine does not retry it; a teapot, so
            // no connector reads it as an answer it knows.
            ResponseTemplate::new(418).set_body_string("no test mock expected this request"),
        )
        .with_priority(LAST)
        .named("a request no test expected")
        .expect(0)
        .mount(server)
        .await;
}

#[cfg(test)]
mod tests {
    /// The catch-all answers a stray request and fails the test on drop.
    #[tokio::test]
    #[should_panic(expected = "a request no test expected")]
    async fn a_request_no_mock_expected_fails_the_test() {
        let server = super::server().await;
        let resp = reqwest::get(format!("{}/stray", server.uri()))
            .await
            .expect("the server answers");
        assert_eq!(resp.status().as_u16(), 418);
    }
}
