//! A small actix-web server on a loopback listener, running in a thread of its own.
//!
//! Providers' emulators (the Twilio, Telegram and Discord stand-ins that tests and
//! `hermes gateway --sandbox` talk to) and test fakes serve their routes with a
//! [`LoopbackServer`]. Because the server has its own thread and actix `System`, it can be started,
//! used and stopped from any thread, whether or not that thread runs an async runtime: a plain
//! `#[test]`, an `#[actix_rt::test]`, or the host's own runtime under `--sandbox`.
//!
//! ```
//! use platform_api::actix_web::{HttpResponse, web};
//! use platform_api::loopback::LoopbackServer;
//!
//! let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
//! let server = LoopbackServer::start("hello-server", listener, |cfg: &mut web::ServiceConfig| {
//!     cfg.route("/hello", web::get().to(|| async { HttpResponse::Ok().body("hello") }));
//! })
//! .unwrap();
//! assert!(server.addr().ip().is_loopback());
//! server.stop();
//! ```
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};

/// How long [`LoopbackServer::stop`] waits for the server's thread to finish.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// A running server: one worker, no signal handling, serving until [`stop`](Self::stop)ped or
/// dropped.
pub struct LoopbackServer {
    handle: ServerHandle,
    addr: SocketAddr,
    /// Signalled when the server's thread ends; taken by the first [`stop`](Self::stop).
    done: Mutex<Option<mpsc::Receiver<()>>>,
}

impl std::fmt::Debug for LoopbackServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopbackServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl LoopbackServer {
    /// Serves the routes `app` configures on `listener` (bound by the caller, so that it may know
    /// its address first) from a thread named `name`; returns once the server is listening.
    ///
    /// `app` is called once for the server's one worker, as [`App::configure`] would call it:
    /// [`web::ServiceConfig`] takes `app_data`, `route`, `service` and `default_service`.
    ///
    /// # Errors
    ///
    /// When the listener has no local address, the thread cannot be spawned, or the server cannot
    /// listen on `listener`.
    pub fn start<F>(name: &str, listener: TcpListener, app: F) -> io::Result<LoopbackServer>
    where
        F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
    {
        let addr = listener.local_addr()?;
        let (ready_tx, ready_rx) = mpsc::channel::<io::Result<ServerHandle>>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let system = actix_web::rt::System::new();
                system.block_on(async move {
                    let server = HttpServer::new(move || App::new().configure(app.clone()))
                        .workers(1)
                        .disable_signals()
                        .shutdown_timeout(1)
                        .listen(listener);
                    let server = match server {
                        Ok(server) => server.run(),
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(server.handle()));
                    let _ = server.await;
                });
                let _ = done_tx.send(());
            })?;
        let handle = ready_rx.recv().map_err(|_| {
            io::Error::other(format!("the {name} thread exited before listening"))
        })??;
        Ok(LoopbackServer {
            handle,
            addr,
            done: Mutex::new(Some(done_rx)),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server, dropping open connections; waits (a few seconds at most) for its thread
    /// to end. Calling it again does nothing.
    pub fn stop(&self) {
        let done = self
            .done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(done) = done {
            // The stop command is sent when `stop` is called; its completion future is not needed.
            drop(self.handle.stop(false));
            let _ = done.recv_timeout(STOP_WAIT);
        }
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use std::io::{self, Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};

    use actix_web::{HttpResponse, web};

    use super::LoopbackServer;

    fn get(addr: SocketAddr, path: &str) -> io::Result<String> {
        let mut stream = TcpStream::connect(addr)?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    }

    #[test]
    fn serves_configured_routes_and_data_until_stopped() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let data = web::Data::new(String::from("shared"));
        let server = LoopbackServer::start("loopback-test", listener, move |cfg| {
            cfg.app_data(data.clone())
                .route(
                    "/data",
                    web::get().to(|data: web::Data<String>| async move {
                        HttpResponse::Ok().body(data.get_ref().clone())
                    }),
                )
                .default_service(web::to(|| async { HttpResponse::ImATeapot().finish() }));
        })
        .unwrap();
        assert_eq!(server.addr(), addr);

        let response = get(addr, "/data").unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("shared"), "{response}");
        let response = get(addr, "/elsewhere").unwrap();
        assert!(response.starts_with("HTTP/1.1 418"), "{response}");

        server.stop();
        server.stop();
        assert!(get(addr, "/data").is_err());
    }

    #[test]
    fn dropping_it_stops_it() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let server =
            LoopbackServer::start("loopback-drop", listener, |_: &mut web::ServiceConfig| {})
                .unwrap();
        assert!(get(addr, "/").unwrap().starts_with("HTTP/1.1 404"));
        drop(server);
        assert!(TcpStream::connect(addr).is_err());
    }
}
