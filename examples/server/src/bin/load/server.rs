//! The contenders, and one running server process that is always stopped.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub use perfloc_server::contenders::{CONTENDERS, Contender};

/// How long a server may take to say `listening on`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A server process; dropping it kills it and waits for it.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `contender`'s binary from `bin_dir` on `host`, port 0, and reads the port from
    /// its `listening on HOST:PORT` line.
    pub fn start(contender: &Contender, bin_dir: &Path, host: IpAddr) -> Result<Server, String> {
        let binary = bin_dir.join(contender.binary);
        let mut child = Command::new(&binary)
            .arg("--addr")
            .arg(SocketAddr::new(host, 0).to_string())
            .args(["--handler", contender.handler])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        // A thread reads the first line, then drains whatever else the server prints so that
        // it never blocks on a full pipe.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let read = reader.read_line(&mut line).map(|_| line);
            let _ = tx.send(read);
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        // From here on, `server` is dropped (so killed) on every early return.
        let mut server = Server { child, addr: SocketAddr::new(host, 0) };
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => return Err(format!("{}: reading its stdout: {e}", contender.binary)),
            Err(_) => {
                return Err(format!(
                    "{} said nothing within {} s",
                    contender.binary,
                    START_TIMEOUT.as_secs()
                ));
            }
        };
        let port = listening_port(&line).ok_or_else(|| {
            format!("{}: expected `listening on HOST:PORT`, got {:?}", contender.binary, line)
        })?;
        server.addr.set_port(port);
        Ok(server)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port of a `listening on 127.0.0.1:PORT` line (or `[::1]:PORT`).
pub fn listening_port(line: &str) -> Option<u16> {
    let addr = line.trim().strip_prefix("listening on ")?;
    addr.parse::<SocketAddr>().ok().map(|a| a.port()).filter(|&p| p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_from_the_listening_line() {
        assert_eq!(listening_port("listening on 127.0.0.1:40123\n"), Some(40123));
        assert_eq!(listening_port("listening on [::1]:8080"), Some(8080));
        assert_eq!(listening_port("listening on 127.0.0.1:0"), None);
        assert_eq!(listening_port("Listening at 127.0.0.1:1"), None);
        assert_eq!(listening_port(""), None);
    }
}
