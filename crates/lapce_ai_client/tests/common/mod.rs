//! Starts the real Node server (the package's `IpcServer` from `dist/`, or the CLI) for the
//! interop tests. A missing build is a failure that says how to build, never a skip.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use lapce_ai_client::{Client, ClientOptions};

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

fn check_build() {
    let root = repo_root();
    for need in ["dist/index.js", "dist/cli.js", "lapce-ai-ipc.linux-x64-gnu.node"] {
        assert!(
            root.join(need).exists(),
            "{} is missing: the interop tests run against the built Node server; run `npm run build` in {} first",
            need,
            root.display()
        );
    }
}

/// A fresh, private directory for one server's socket.
pub fn temp_socket(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "lapce-ai-client-test-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("ai.sock")
}

/// A running Node server, killed when dropped.
pub struct Server {
    pub child: Child,
    pub socket: PathBuf,
}

impl Server {
    /// The fixture server (`tests/fixtures/server.js`) with extra arguments.
    pub fn fixture(name: &str, args: &[&str]) -> Server {
        check_build();
        let socket = temp_socket(name);
        Self::fixture_at(socket, args)
    }

    /// The fixture server on a given socket path (to restart one at the same place).
    pub fn fixture_at(socket: PathBuf, args: &[&str]) -> Server {
        check_build();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/server.js");
        let mut cmd = Command::new("node");
        cmd.arg(script).arg("--socket").arg(&socket).args(args);
        Self::spawn(cmd, socket, "READY")
    }

    /// The fixture server with its fd limit (RLIMIT_NOFILE) lowered to `nofile`, via `prlimit`.
    pub fn fixture_limited(name: &str, nofile: u32) -> Server {
        check_build();
        let socket = temp_socket(name);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/server.js");
        let mut cmd = Command::new("prlimit");
        cmd.arg(format!("--nofile={nofile}"))
            .arg("node")
            .arg(script)
            .arg("--socket")
            .arg(&socket);
        Self::spawn(cmd, socket, "READY")
    }

    /// The real CLI: `node dist/cli.js serve --socket <path> --default echo`.
    pub fn cli(name: &str) -> Server {
        check_build();
        let socket = temp_socket(name);
        let mut cmd = Command::new("node");
        cmd.current_dir(repo_root())
            .arg("dist/cli.js")
            .arg("serve")
            .arg("--socket")
            .arg(&socket)
            .arg("--default")
            .arg("echo")
            .arg("--log-level")
            .arg("warn")
            // No config file: only the built-in offline `echo` provider.
            .env_remove("LAPCE_AI_CONFIG")
            .env("XDG_CONFIG_HOME", socket.parent().unwrap());
        Self::spawn(cmd, socket, "")
    }

    fn spawn(mut cmd: Command, socket: PathBuf, ready_line: &str) -> Server {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn node");
        let ctl = PathBuf::from(format!("{}.ctl", socket.display()));
        if !ready_line.is_empty() {
            let out = child.stdout.take().unwrap();
            let mut line = String::new();
            BufReader::new(out).read_line(&mut line).unwrap();
            assert_eq!(line.trim(), ready_line, "the fixture server did not start");
        }
        // The CLI prints no READY line (a fixture prints it once it listens): wait for the control
        // socket's file, which the server puts in place only once it listens (PROTOCOL §2.1).
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ctl.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("server exited early: {status}");
            }
            assert!(Instant::now() < deadline, "server did not listen on {} within 20 s", ctl.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child, socket }
    }

    pub fn connect(&self) -> Client {
        Client::connect(&self.socket, ClientOptions::default()).expect("connect")
    }

    pub fn connect_with(&self, opts: ClientOptions) -> Client {
        Client::connect(&self.socket, opts).expect("connect")
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `f` until it is true or `timeout` passes; returns its last value.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
