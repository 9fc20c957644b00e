//! A real server a test runs as a program of its own (Hermes Agent, LiteLLM's proxy, Prism): found
//! where `.ci/run` installs it, started on a free loopback port in a process group of its own,
//! its output kept for failure messages, waited for until it answers, and killed with
//! everything it started when dropped.
//!
//! A program that is not installed makes the test skip itself (`None`), except under CI
//! (`CI` true), where that is a failure: `.ci/run` installs it.
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::http;

/// The workspace root (the folder holding `.tools` and `tests`).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new(env!("CARGO_MANIFEST_DIR")))
}

/// The program named by the environment variable `var`, else at `installed` under the
/// workspace (where `.ci/run` puts it); `None`, after saying why, when neither exists and CI
/// is not true.
pub fn find(var: &str, installed: &str, what: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(installed));
    if path.exists() {
        return Some(path);
    }
    let why = format!(
        "{what} is not installed at {} (set {var}, or run .ci/run, which installs it)",
        path.display()
    );
    if platform_api::testkit::in_ci() {
        panic!("{why}");
    }
    eprintln!("skipping: {why}");
    None
}

/// A loopback port free right now, for a server that takes its port from its configuration.
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A running server program; killed, with its process group, when dropped.
pub struct ServerProcess {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Starts `command`, which serves on loopback `port`.
    pub fn spawn(name: &'static str, mut command: Command, port: u16) -> ServerProcess {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that drop ends it and whatever it started.
            .process_group(0);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let log = Arc::new(Mutex::new(String::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        ServerProcess {
            name,
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        }
    }

    /// Waits until `ready` says so; panics, with its output, when it exits first or `ready`
    /// does not come within `timeout` (`what` says what was awaited).
    pub fn wait_until(&mut self, what: &str, timeout: Duration, ready: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + timeout;
        while !ready(self) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before {what}:\n{}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not {what} within {}s:\n{}",
                self.name,
                timeout.as_secs(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `GET path` answers 200 (see [`ServerProcess::wait_until`]).
    pub fn wait_healthy(&mut self, path: &str, timeout: Duration) {
        let what = format!("answer GET {path}");
        self.wait_until(&what, timeout, |server| {
            http::request(server.addr, "GET", path, &[], b"").is_ok_and(|r| r.status == 200)
        });
    }

    /// The address it serves on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Everything it printed so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl std::fmt::Debug for ServerProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerProcess")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // SAFETY: signalling the process group of our own child, created with process_group(0).
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
