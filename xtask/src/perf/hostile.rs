//! `cargo xtask hostile`: the platform as a hostile or careless client finds
//! it. Each check is a named function that plays one class of abuse against
//! the gateway (slow and idle connections, too many of them, oversized
//! heads, broken `Host` rules, made-up methods, malformed JSON, input a
//! database would refuse, abandoned orders) and returns what it found wrong.
//! Afterwards every answer it received is held to two more rules: no 5xx
//! but the connection cap's 503, and no internals (addresses, another
//! service's answer, a library's words). Then the order invariants.
//!
//! The platform it starts has its HTTP limits tightened (see [`LIMITS`]) so
//! that the timeouts fire within seconds; the checks read the limits from the
//! model, so they hold any platform to its own.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::Workspace;
use crate::dev::build::Prebuilt;
use crate::model::{Http, Model};
use crate::native::platform::Platform;
use crate::perf::{invariants, orders};
use crate::util::http::{self, Answer, Request};

/// The limits of the platform `hostile` starts: short enough for a run of
/// seconds, the same rules as production's.
const LIMITS: Http = Http {
    header_read_timeout_ms: 1500,
    idle_timeout_ms: 2000,
    max_connections: 64,
    max_header_bytes: 16_384,
};

/// Plays every class of abuse against a platform and fails on any finding.
#[derive(Debug, Clone, clap::Args)]
pub struct Hostile {
    /// Gateway URL of a platform already started by `cargo xtask up`
    /// (its own limits then apply, and the timeout checks take as long).
    #[arg(long)]
    pub url: Option<String>,
    #[command(flatten)]
    pub prebuilt: Prebuilt,
}

/// What every check works with; it records every answer it gets.
struct Client {
    gateway: String,
    /// The platform's PostgreSQL, when known.
    postgres: Option<String>,
    /// The folder of the services' log files.
    logs: std::path::PathBuf,
    token: String,
    limits: Http,
    answers: Mutex<Vec<(String, Answer)>>,
}

type Findings = Vec<String>;

/// One check: what it plays, and what it found wrong.
type Check = fn(&Client) -> Result<Findings>;

/// The checks, in the order they run.
const CHECKS: &[(&str, Check)] = &[
    ("a request head sent slowly is cut off", slow_head),
    ("connections with nothing in flight close", idle_connections),
    ("connections over the cap get a 503 at once", connection_cap),
    (
        "an oversized head is 431 and goes no further",
        oversized_head,
    ),
    ("HTTP/1.1 without exactly one Host is 400", host_rules),
    (
        "made-up methods add no metric series and are not echoed",
        made_up_methods,
    ),
    (
        "JSON that is not one object of known members is refused",
        json_shapes,
    ),
    (
        "input a service or database would refuse is a 4xx",
        refused_input,
    ),
    (
        "the admin scheme name is case-insensitive and 401 names it",
        bearer_scheme,
    ),
    (
        "abandoned orders settle and leave no session in a transaction",
        abandoned_orders,
    ),
];

impl Hostile {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let platform = match &self.url {
            None => {
                let mut model: Model = ws.model()?.clone();
                for service in &mut model.services {
                    service.http = LIMITS;
                }
                Platform::start(ws, &model, 1, self.prebuilt, None, "hostile")?
            }
            Some(url) => Platform::attach(ws, url)?,
        };
        let model = platform.model();
        let limits = model
            .services
            .iter()
            .find(|s| s.is_gateway)
            .map(|s| s.http)
            .context("the model has no gateway")?;
        let client = Client {
            gateway: http::authority(&platform.gateway)?.to_owned(),
            postgres: platform.postgres.clone(),
            logs: platform.state.root().join("logs"),
            token: platform.admin_token.clone(),
            limits,
            answers: Mutex::new(Vec::new()),
        };
        orders::seed(&platform.gateway, &client.token)?;
        let mut failed = 0;
        for (name, check) in CHECKS {
            let start = Instant::now();
            let findings = check(&client).unwrap_or_else(|err| vec![format!("{err:#}")]);
            report(name, start.elapsed(), &findings);
            failed += usize::from(!findings.is_empty());
        }
        let findings = answers_hold(&client);
        report(
            "no 5xx and no internals in any answer",
            Duration::ZERO,
            &findings,
        );
        failed += usize::from(!findings.is_empty());
        if let Some(server) = &platform.postgres {
            invariants::settle(server, Duration::from_secs(30))?;
            let snapshot = invariants::snapshot(server)?;
            for check in invariants::check(&snapshot, &[]) {
                let findings: Findings = (!check.holds)
                    .then(|| check.detail.clone())
                    .into_iter()
                    .collect();
                report(&check.name, Duration::ZERO, &findings);
                failed += usize::from(!findings.is_empty());
            }
        }
        drop(platform);
        if failed > 0 {
            bail!("hostile: {failed} check(s) failed (above)");
        }
        println!("hostile: every check holds");
        Ok(())
    }
}

fn report(name: &str, took: Duration, findings: &Findings) {
    let verdict = if findings.is_empty() { "ok" } else { "FAILED" };
    println!("hostile: {verdict:6} {name} ({:.1} s)", took.as_secs_f64());
    for finding in findings {
        println!("           {finding}");
    }
}

impl Client {
    /// Sends `request` and records the answer.
    fn send(&self, what: &str, request: &Request) -> Result<Answer> {
        let answer = request.send(&self.gateway)?;
        self.answers
            .lock()
            .expect("no check panics holding the answers")
            .push((what.to_owned(), answer.clone()));
        Ok(answer)
    }

    /// Expects `status` for `request`; a finding otherwise.
    fn expect(&self, what: &str, request: Request, status: u16) -> Result<Option<String>> {
        let answer = self.send(what, &request)?;
        Ok((answer.status != status).then(|| {
            format!(
                "{what}: expected {status}, got {} {}",
                answer.status,
                clip(&answer.body)
            )
        }))
    }

    fn connect(&self) -> Result<TcpStream> {
        Ok(TcpStream::connect(&self.gateway)?)
    }

    fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.limits.header_read_timeout_ms.into())
    }

    fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.limits.idle_timeout_ms.into())
    }
}

/// What the server sent until it closed the connection (or `within` passed:
/// then `None`), raw.
fn until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        match stream.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&seen).into_owned()),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(String::from_utf8_lossy(&seen).into_owned());
            }
            Err(_) if Instant::now() >= deadline => return None,
            Err(_) => {}
        }
    }
}

/// Sends `head` raw and returns the status line of the answer.
fn raw(client: &Client, what: &str, head: &[u8]) -> Result<String> {
    let mut stream = client.connect()?;
    // The server may answer and close before it read everything.
    let _ = stream.write_all(head);
    let seen = until_closed(&mut stream, Duration::from_secs(5)).unwrap_or_default();
    if let Ok(answer) = http::parse(seen.as_bytes()) {
        client
            .answers
            .lock()
            .expect("no check panics holding the answers")
            .push((what.to_owned(), answer));
    }
    Ok(seen.lines().next().unwrap_or("").to_owned())
}

fn clip(text: &str) -> String {
    text.chars().take(160).collect()
}

fn slow_head(client: &Client) -> Result<Findings> {
    let mut stream = client.connect()?;
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: hostile\r\n")?;
    let start = Instant::now();
    let limit = client.header_read_timeout() + Duration::from_secs(2);
    // One header line a second: each well within the idle timeout.
    stream.set_write_timeout(Some(Duration::from_secs(1)))?;
    for i in 0.. {
        if start.elapsed() > limit {
            return Ok(vec![format!("still reading the head after {limit:?}")]);
        }
        std::thread::sleep(Duration::from_millis(500));
        if stream
            .write_all(format!("x-slow-{i}: y\r\n").as_bytes())
            .is_err()
        {
            break;
        }
        if until_closed(&mut stream, Duration::from_millis(1)).is_some() {
            break;
        }
    }
    Ok(Vec::new())
}

fn idle_connections(client: &Client) -> Result<Findings> {
    let count = (client.limits.max_connections / 2).clamp(1, 50);
    let mut idle: Vec<TcpStream> = (0..count)
        .map(|_| client.connect())
        .collect::<Result<_>>()?;
    // One that served a request and stays open (keep-alive) counts as idle too.
    let mut kept = client.connect()?;
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: hostile\r\n\r\n")?;
    idle.push(kept);
    let within = client.idle_timeout() + Duration::from_secs(3);
    let open = idle
        .iter_mut()
        .map(|s| until_closed(s, within))
        .filter(Option::is_none)
        .count();
    Ok((open > 0)
        .then(|| {
            format!(
                "{open} of {} idle connections still open after {within:?}",
                idle.len()
            )
        })
        .into_iter()
        .collect())
}

fn connection_cap(client: &Client) -> Result<Findings> {
    let cap = client.limits.max_connections as usize;
    if cap > 4096 {
        return Ok(vec![format!(
            "a cap of {cap} connections is too many to test here"
        )]);
    }
    let held: Vec<TcpStream> = (0..cap).map(|_| client.connect()).collect::<Result<_>>()?;
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    let status = raw(
        client,
        "a connection over the cap",
        b"GET /health HTTP/1.1\r\nHost: hostile\r\n\r\n",
    )?;
    let took = start.elapsed();
    drop(held);
    let mut findings = Findings::new();
    if !status.starts_with("HTTP/1.1 503") {
        findings.push(format!("one connection over the cap of {cap}: {status:?}"));
    }
    if took > Duration::from_millis(500) {
        findings.push(format!("the refusal took {took:?}"));
    }
    Ok(findings)
}

fn oversized_head(client: &Client) -> Result<Findings> {
    let mut findings = Findings::new();
    for size in [2 * client.limits.max_header_bytes as usize, 500_000] {
        let head = format!(
            "GET /api/v1/products HTTP/1.1\r\nHost: hostile\r\nx-big: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(size)
        );
        let status = raw(client, "an oversized head", head.as_bytes())?;
        if !status.starts_with("HTTP/1.1 431") {
            findings.push(format!("a {size}-byte header: {status:?}"));
        }
    }
    Ok(findings)
}

fn host_rules(client: &Client) -> Result<Findings> {
    let mut findings = Findings::new();
    for (what, head) in [
        (
            "no Host",
            "GET /health HTTP/1.1\r\nConnection: close\r\n\r\n",
        ),
        (
            "two Hosts",
            "GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
        ),
    ] {
        let status = raw(client, what, head.as_bytes())?;
        if !status.starts_with("HTTP/1.1 400") {
            findings.push(format!("{what}: {status:?}"));
        }
    }
    Ok(findings)
}

fn made_up_methods(client: &Client) -> Result<Findings> {
    let series = |client: &Client| -> Result<(usize, usize, Vec<String>)> {
        let metrics = client.send("metrics", &Request::get("/metrics"))?.body;
        let lines: Vec<&str> = metrics
            .lines()
            .filter(|l| l.starts_with("http_requests_total{"))
            .collect();
        let methods = lines
            .iter()
            .filter_map(|l| l.split("method=\"").nth(1)?.split('"').next())
            .map(str::to_owned)
            .collect();
        Ok((lines.len(), metrics.len(), methods))
    };
    let long = "X".repeat(8000);
    let methods: Vec<String> = (0..60)
        .map(|i| format!("M{i}X"))
        .chain([long.clone()])
        .collect();
    // Once first, so that the `_other` series exist before counting.
    raw(
        client,
        "a made-up method",
        b"BREW /api/v1/products HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    )?;
    let (before, bytes_before, _) = series(client)?;
    let mut findings = Findings::new();
    for method in &methods {
        let head =
            format!("{method} /api/v1/products HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        raw(client, "a made-up method", head.as_bytes())?;
    }
    let (after, bytes_after, labels) = series(client)?;
    const KNOWN: [&str; 10] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "_other",
    ];
    if let Some(label) = labels.iter().find(|l| !KNOWN.contains(&l.as_str())) {
        findings.push(format!(
            "a method label outside the known set: {}",
            clip(label)
        ));
    }
    // A made-up method may meet a status not seen before (one more series
    // of `_other`), never one series per method.
    if after > before + 2 {
        findings.push(format!(
            "{} new series from {} made-up methods",
            after - before,
            methods.len()
        ));
    }
    if bytes_after > bytes_before + 4096 {
        findings.push(format!(
            "/metrics grew by {} bytes",
            bytes_after - bytes_before
        ));
    }
    let echoed = client
        .answers
        .lock()
        .expect("no check panics holding the answers")
        .iter()
        .any(|(_, a)| a.body.contains("M1X") || a.body.contains(&long[..100]));
    if echoed {
        findings.push("an answer repeats the made-up method".into());
    }
    Ok(findings)
}

fn json_shapes(client: &Client) -> Result<Findings> {
    let order = r#"{"customer_id":"c-1","items":[{"sku":"BENCH-0001","quantity":1}],"payment":{"method":"pix"}}"#;
    let product = r#"{"sku":"HOSTILE-1","name":"Caneca","price_cents":990,"stock":3}"#;
    let cases = [
        (
            "an order with trailing data",
            "/api/v1/orders",
            format!("{order} xyz"),
            400,
        ),
        (
            "an order then another document",
            "/api/v1/orders",
            format!("{order}{{}}"),
            400,
        ),
        (
            "an order with a repeated member",
            "/api/v1/orders",
            order.replace(r#""c-1","#, r#""c-1","customer_id":"c-2","#),
            422,
        ),
        (
            "an item as an array",
            "/api/v1/orders",
            order.replace(
                r#"{"sku":"BENCH-0001","quantity":1}"#,
                r#"["BENCH-0001",1]"#,
            ),
            422,
        ),
        (
            "a product as an array",
            "/api/v1/products",
            r#"["HOSTILE-1","Caneca",990,3]"#.to_owned(),
            422,
        ),
        (
            "a product with trailing data",
            "/api/v1/products",
            format!("{product} xyz"),
            400,
        ),
        (
            "a product with a repeated member",
            "/api/v1/products",
            product.replace(r#""Caneca","#, r#""Caneca","name":"X","#),
            422,
        ),
    ];
    let mut findings = Findings::new();
    for (what, path, body, status) in cases {
        let request = Request::json("POST", path, body).bearer(&client.token);
        findings.extend(client.expect(what, request, status)?);
    }
    Ok(findings)
}

fn refused_input(client: &Client) -> Result<Findings> {
    let order = |customer: &str, token: &str| {
        format!(
            r#"{{"customer_id":"{customer}","items":[{{"sku":"BENCH-0001","quantity":1}}],"payment":{{"method":"card","token":"{token}"}}}}"#
        )
    };
    let long_sku = format!("/api/v1/products/{}", "A".repeat(10_000));
    let cases = [
        (
            "a customer_id of spaces",
            Request::json("POST", "/api/v1/orders", order("   ", "tok_visa")),
            422,
        ),
        (
            "a customer_id of invisible characters",
            Request::json(
                "POST",
                "/api/v1/orders",
                order("\\u200b\\u3164", "tok_visa"),
            ),
            422,
        ),
        (
            "the card token tok_",
            Request::json("POST", "/api/v1/orders", order("c-1", "tok_")),
            422,
        ),
        (
            "a card token with a dash",
            Request::json("POST", "/api/v1/orders", order("c-1", "tok_vi-sa")),
            422,
        ),
        (
            "a product name of invisible characters",
            Request::json(
                "POST",
                "/api/v1/products",
                r#"{"sku":"HOSTILE-2","name":"\u200b\u2800","price_cents":1}"#,
            )
            .bearer(&client.token),
            422,
        ),
        (
            "a NUL in a query parameter",
            Request::get("/api/v1/orders?customer_id=c%0042").bearer(&client.token),
            422,
        ),
        (
            "a cursor before any year",
            Request::get(
                "/api/v1/orders?cursor=-250000000000000000.0190a0b0c0d0e0f00000000000000000",
            )
            .bearer(&client.token),
            422,
        ),
        ("a 10,000-character sku", Request::get(&long_sku), 404),
        (
            "a path segment that is not UTF-8",
            Request::get("/api/v1/products/%FF%FE"),
            404,
        ),
        (
            "a gzip-encoded body",
            Request::json("POST", "/api/v1/orders", order("c-1", "tok_visa"))
                .header("Content-Encoding", "gzip"),
            415,
        ),
    ];
    let mut findings = Findings::new();
    for (what, request, status) in cases {
        findings.extend(client.expect(what, request, status)?);
    }
    Ok(findings)
}

fn bearer_scheme(client: &Client) -> Result<Findings> {
    let body = r#"{"sku":"HOSTILE-3","name":"Caneca","price_cents":990}"#;
    let lower = Request::json("POST", "/api/v1/products", body)
        .header("Authorization", format!("bearer {}", client.token));
    let mut findings: Findings = client
        .expect("a lower-case bearer", lower, 201)?
        .into_iter()
        .collect();
    let head = "POST /api/v1/products HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    let mut stream = client.connect()?;
    stream.write_all(head.as_bytes())?;
    let seen = until_closed(&mut stream, Duration::from_secs(5)).unwrap_or_default();
    if !seen
        .to_ascii_lowercase()
        .contains("www-authenticate: bearer")
    {
        findings.push(format!("a 401 without WWW-Authenticate: {}", clip(&seen)));
    }
    Ok(findings)
}

/// Large orders whose client hangs up after a few milliseconds, many at
/// once: within seconds every one is finished or undone (no order pending,
/// no stock held), and no service logged a BEGIN inside a transaction it
/// did not open ("there is already a transaction in progress"), the mark of
/// a session handed on mid-transaction. (Its converse, "there is no
/// transaction in progress", is the harmless ROLLBACK sqlx queues when a
/// COMMIT already sent is abandoned.)
fn abandoned_orders(client: &Client) -> Result<Findings> {
    let items: Vec<String> = (1..=100)
        .map(|n| format!(r#"{{"sku":"BENCH-{n:04}","quantity":1}}"#))
        .collect();
    let body = format!(
        r#"{{"customer_id":"hostile","items":[{}],"payment":{{"method":"pix"}}}}"#,
        items.join(",")
    );
    std::thread::scope(|scope| {
        for i in 0..100u64 {
            let body = &body;
            scope.spawn(move || {
                let mut request = Request::json("POST", "/api/v1/orders", body);
                request.timeout = Duration::from_millis(5 + i % 40);
                let _ = request.send(&client.gateway);
            });
        }
    });
    let mut findings = Findings::new();
    match &client.postgres {
        Some(server) => {
            if let Err(err) = invariants::settle(server, Duration::from_secs(30)) {
                findings.push(format!("the abandoned orders did not settle: {err:#}"));
            }
        }
        None => findings.push("no database to read the orders' outcome from".into()),
    }
    for entry in std::fs::read_dir(&client.logs)? {
        let path = entry?.path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.contains("there is already a transaction in progress") {
            findings.push(format!(
                "{} logs a statement in a transaction it did not open",
                path.display()
            ));
        }
    }
    Ok(findings)
}

/// Every recorded answer: no 5xx but the cap's 503, no internals.
fn answers_hold(client: &Client) -> Findings {
    let answers = client
        .answers
        .lock()
        .expect("no check panics holding the answers");
    let internals = [
        "127.0.0.1",
        "localhost:",
        "sqlx",
        "hyper::",
        "error sending request",
        "connection refused",
        "answered",
    ];
    let mut findings = Findings::new();
    for (what, answer) in answers.iter() {
        if answer.status >= 500 && what != "a connection over the cap" {
            findings.push(format!("{what}: {} {}", answer.status, clip(&answer.body)));
        }
        let problem = answer.status >= 400;
        if let Some(leak) = internals
            .iter()
            .find(|i| problem && answer.body.contains(*i))
        {
            findings.push(format!(
                "{what}: the answer names `{leak}`: {}",
                clip(&answer.body)
            ));
        }
    }
    findings
}
