//! The HTTP test server (tests/servers/webhook.py: Python's `http.server`,
//! threaded, HTTP/1.1 keep-alive) on 127.0.0.1, started by each test that
//! needs it and killed when dropped. It answers from a script and reports
//! every request it receives as one JSON value (method, path, headers, body).

use super::PATIENCE;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// The server script.
const SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/servers/webhook.py");

/// A running test server.
pub struct Server {
    child: Child,
    requests: Receiver<String>,
}

impl Server {
    /// Starts the server on `port` with `script`, over TLS with `tls`; waits
    /// until it listens.
    pub fn start(dir: &Path, port: u16, script: &str, tls: Option<&(PathBuf, PathBuf)>) -> Server {
        let mut cmd = Command::new("python3");
        cmd.arg(SERVER).arg(port.to_string()).arg(script);
        if let Some((cert, key)) = tls {
            cmd.arg(cert).arg(key);
        }
        let log = std::fs::File::create(dir.join(format!("server-{port}.err"))).expect("log");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("the HTTP tests need python3 (Debian package python3): {e}")
            });
        let requests = super::read_lines(child.stdout.take().expect("stdout"));
        match requests.recv_timeout(PATIENCE) {
            Ok(line) if line == "READY" => {}
            other => {
                let _ = child.kill();
                panic!(
                    "the test server did not start: {other:?}; its stderr: {}",
                    std::fs::read_to_string(dir.join(format!("server-{port}.err")))
                        .unwrap_or_default()
                );
            }
        }
        Server { child, requests }
    }

    /// The next request the server received.
    pub fn next(&self, what: &str) -> Value {
        match self.requests.recv_timeout(PATIENCE) {
            Ok(line) => serde_json::from_str(&line).expect("a JSON request record"),
            Err(e) => panic!("no request for {what} within {PATIENCE:?}: {e}"),
        }
    }

    /// Requests received and not yet taken (once logalarm has ended, all).
    pub fn rest(&self) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            match self.requests.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => out.push(serde_json::from_str(&line).expect("JSON")),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return out,
            }
        }
    }

    /// Kills the server (SIGKILL, as a crash would).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
