//! A PostgreSQL database of its own for each test, and a TCP relay in front of it that can
//! cut the gateways off the server for a while.
//!
//! Tests find the server through `HERMES_TEST_DATABASE_URL` (`.ci/run` creates a role and a
//! database for them). Without it a test says so and passes; in CI (`CI=true`) that is a
//! failure.
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::Gateway;

/// A fresh schema in the test server, dropped when this is.
pub struct TestDatabase {
    server: String,
    schema: String,
}

impl TestDatabase {
    /// A fresh schema, or `None` (after saying so) when the tests have no server.
    pub fn new(test: &str) -> Option<TestDatabase> {
        match std::env::var("HERMES_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => {
                let schema = format!("hermes_bb_{:016x}", random());
                query(&url, &format!("CREATE SCHEMA {schema}"));
                Some(TestDatabase {
                    server: url,
                    schema,
                })
            }
            _ if platform_api::testkit::in_ci() => {
                panic!("HERMES_TEST_DATABASE_URL is not set: CI runs {test} against PostgreSQL")
            }
            _ => {
                eprintln!("HERMES_TEST_DATABASE_URL is not set: {test} needs PostgreSQL, skipped");
                None
            }
        }
    }

    /// The certificate authority that signed the test server's certificate, which names
    /// `localhost` (`HERMES_TEST_PG_ROOT_CERT`: `.ci/run` makes both), or `None` (after saying
    /// so) when the tests have none; in CI that is a failure.
    pub fn root_cert(test: &str) -> Option<String> {
        match std::env::var("HERMES_TEST_PG_ROOT_CERT") {
            Ok(path) if !path.is_empty() => Some(path),
            _ if platform_api::testkit::in_ci() => {
                panic!(
                    "HERMES_TEST_PG_ROOT_CERT is not set: CI runs {test} against a server with a certificate"
                )
            }
            _ => {
                eprintln!(
                    "HERMES_TEST_PG_ROOT_CERT is not set: {test} needs the test server's certificate authority, skipped"
                );
                None
            }
        }
    }

    /// The URL a gateway is given (`HERMES_DATABASE_URL`): this schema on the test server.
    pub fn url(&self) -> String {
        with_search_path(&self.server, &self.schema)
    }

    /// The same database reached through `relay` instead of directly.
    pub fn url_through(&self, relay: &Relay) -> String {
        self.url_at(&relay.addr.to_string(), "")
    }

    /// The same database reached at `host_port` (`localhost:5432`), with `params` added to the
    /// URL's query (`sslmode=verify-full`).
    pub fn url_at(&self, host_port: &str, params: &str) -> String {
        let url = self.url();
        let Some((scheme, rest)) = url.split_once("://") else {
            return url;
        };
        let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        let user = authority.rsplit_once('@').map(|(user, _)| user);
        let url = match user {
            Some(user) => format!("{scheme}://{user}@{host_port}{path}"),
            None => format!("{scheme}://{host_port}{path}"),
        };
        match params {
            "" => url,
            _ => format!("{url}&{params}"),
        }
    }

    /// The port the test server listens on.
    pub fn port(&self) -> u16 {
        self.server_addr().port()
    }

    /// Where the test server listens (host:port of `HERMES_TEST_DATABASE_URL`).
    pub fn server_addr(&self) -> SocketAddr {
        let config: tokio_postgres::Config = self.server.parse().expect("a PostgreSQL URL");
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            _ => "127.0.0.1".to_string(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
            .expect("resolving the test server")
            .next()
            .expect("an address of the test server")
    }

    /// The one integer a query returns, on this schema.
    pub fn count(&self, sql: &str) -> i64 {
        let rows = query(&self.url(), sql);
        rows.first()
            .and_then(|row| row.first())
            .and_then(|v| v.as_deref())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{sql}: no integer"))
    }

    /// Every row of a query, each column as text (NULL as `None`).
    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        query(&self.url(), sql)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = try_query(
            &self.server,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema),
        );
    }
}

fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish()
}

/// `url` with every connection's search path set to `schema`.
fn with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-csearch_path%3D{schema}")
}

fn query(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    try_query(url, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Runs `sql` (the simple query protocol, so that every value comes back as text).
fn try_query(url: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>, tokio_postgres::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let messages = client.simple_query(sql).await?;
        Ok(messages
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    })
}

/// A TCP relay to the database server that can be cut: while cut it refuses new connections
/// and closes the ones it carries, as a server that stopped (or a network that failed) would
/// look to a gateway. It can also stall: carry nothing and answer nothing, as a network that
/// drops packets looks (a client waits rather than failing).
pub struct Relay {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    stalled: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    /// Connections taken while stalled, never answered.
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    /// A relay on a free loopback port to `server`.
    pub fn start(server: SocketAddr) -> Relay {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("binding the relay");
        let addr = listener.local_addr().expect("the relay's address");
        let cut = Arc::new(AtomicBool::new(false));
        let stalled = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (cut_flag, open_list) = (cut.clone(), open.clone());
        let (stalled_flag, held_list) = (stalled.clone(), held.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                if cut_flag.load(Ordering::Acquire) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                if stalled_flag.load(Ordering::Acquire) {
                    held_list.lock().expect("relay lock").push(client);
                    continue;
                }
                let Ok(upstream) = TcpStream::connect_timeout(&server, Duration::from_secs(5))
                else {
                    continue;
                };
                let mut open = open_list.lock().expect("relay lock");
                for stream in [&client, &upstream] {
                    if let Ok(clone) = stream.try_clone() {
                        open.push(clone);
                    }
                }
                drop(open);
                pipe(&client, &upstream, &stalled_flag);
                pipe(&upstream, &client, &stalled_flag);
            }
        });
        Relay {
            addr,
            cut,
            stalled,
            open,
            held,
        }
    }

    /// Stops carrying bytes on every connection, and leaves new ones unanswered, until
    /// [`Relay::restore`]; what was sent meanwhile is delivered then.
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::Release);
    }

    /// Cuts every connection and refuses new ones until [`Relay::restore`].
    pub fn cut(&self) {
        self.cut.store(true, Ordering::Release);
        for stream in self.open.lock().expect("relay lock").drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Lets connections through again; those taken while stalled are closed (their clients
    /// connect again).
    pub fn restore(&self) {
        self.cut.store(false, Ordering::Release);
        self.stalled.store(false, Ordering::Release);
        for stream in self.held.lock().expect("relay lock").drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Copies bytes from `from` to `to` on a thread of its own until either side closes, holding
/// them while `stalled`.
fn pipe(from: &TcpStream, to: &TcpStream, stalled: &Arc<AtomicBool>) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    let stalled = Arc::clone(stalled);
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    while stalled.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

/// Waits until nothing is open in the shared database: every message the gateways
/// acknowledged imported and handled, every part final (an ambiguous part waits for its
/// look-up). Fails with the gateways' logs after `within`.
pub fn settle(db: &TestDatabase, gateways: &[&Gateway], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let unimported: i64 = gateways.iter().map(|g| g.unimported().max(0)).sum();
        let open = unimported
            + db.count("SELECT COUNT(*) FROM inbound WHERE state = 'pending'")
            + db.count(
                "SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending', 'ambiguous')",
            );
        if open == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{open} still open:\n{}",
            gateways
                .iter()
                .map(|g| g.logs())
                .collect::<Vec<_>>()
                .join("\n----\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Which message numbers (`m<N>` in the texts, echoed by the agent) each sent SMS answers,
/// with whom it went to.
pub fn answered(twilio: &platform_sms::emulator::Emulator) -> HashMap<usize, Vec<String>> {
    let mut answered: HashMap<usize, Vec<String>> = HashMap::new();
    for message in twilio.messages() {
        for token in message.body.split_whitespace() {
            if let Some(i) = token
                .strip_prefix('m')
                .and_then(|n| n.parse::<usize>().ok())
            {
                answered.entry(i).or_default().push(message.to.clone());
            }
        }
    }
    answered
}
