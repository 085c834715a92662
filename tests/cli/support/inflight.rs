//! A bare HTTP/1.1 server that counts the requests in flight: each answer
//! is held back a while, so requests sent at once overlap, and the most
//! that ever overlapped is what a connection cap must keep down. Wiremock
//! answers before its delay can be counted, hence this small server of
//! its own. It binds 127.0.0.1 on port 0 and stops when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What a request is answered with: status and JSON body, by request line
/// and body.
type Answer = dyn Fn(&str, &str) -> (u16, String) + Send + Sync;

#[derive(Default)]
struct Counts {
    requests: AtomicUsize,
    now: AtomicUsize,
    peak: AtomicUsize,
    stop: AtomicBool,
}

pub struct Server {
    addr: std::net::SocketAddr,
    counts: Arc<Counts>,
}

impl Server {
    /// Answer every request after `delay` with `answer(request line, body)`.
    pub fn start(
        delay: Duration,
        answer: impl Fn(&str, &str) -> (u16, String) + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let addr = listener.local_addr().expect("its address");
        let counts = Arc::new(Counts::default());
        let answer: Arc<Answer> = Arc::new(answer);
        let c = counts.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if c.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (c, answer) = (c.clone(), answer.clone());
                std::thread::spawn(move || serve(stream, delay, &c, answer.as_ref()));
            }
        });
        Server { addr, counts }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests answered, and the most that were in flight at once.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.counts.requests.load(Ordering::SeqCst),
            self.counts.peak.load(Ordering::SeqCst),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.counts.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Answer the requests of one connection until the client closes it.
fn serve(stream: TcpStream, delay: Duration, c: &Counts, answer: &Answer) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let now = c.now.fetch_add(1, Ordering::SeqCst) + 1;
        c.peak.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(delay);
        c.now.fetch_sub(1, Ordering::SeqCst);
        c.requests.fetch_add(1, Ordering::SeqCst);
        let (status, text) = answer(request_line.trim_end(), &String::from_utf8_lossy(&body));
        let response = format!(
            "HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        );
        if out.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}
