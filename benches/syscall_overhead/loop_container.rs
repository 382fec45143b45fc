//! The loop program in a container that stays up: it times one chunk for every line the bench
//! writes to its stdin (the loop's `CHUNKS` 0), so the bench can change what is attached
//! between chunks.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use super::{common, quiet, CPU, IMAGE};

/// The loop program in its stdin-driven mode (`CHUNKS` 0): a line in, one chunk out.
pub struct LoopContainer {
    name: String,
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl LoopContainer {
    pub fn start(
        name: &str,
        label: Option<&str>,
        iterations: &str,
    ) -> Result<LoopContainer, String> {
        let mut child = Command::new("docker")
            .args(["run", "-i", "--rm", "--name", name, "--network", "none"])
            .args(label.map(|l| ["--label", l]).into_iter().flatten())
            .args(["--cpuset-cpus", CPU, IMAGE, "/getppid_loop", "0", "0"])
            .args([iterations, "getppid"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("docker run: {e}"))?;
        let input = child.stdin.take().ok_or("no stdin")?;
        let output = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        Ok(LoopContainer {
            name: name.to_string(),
            child,
            input,
            output,
        })
    }

    pub fn chunk(&mut self) -> Result<quiet::Chunk, String> {
        self.input
            .write_all(b"\n")
            .and_then(|()| self.input.flush())
            .map_err(|e| format!("loop container stdin: {e}"))?;
        let mut line = String::new();
        match self.output.read_line(&mut line) {
            Ok(n) if n > 0 => Ok(quiet::parse(&line)?[0]),
            _ => Err(format!("loop container {} stopped answering", self.name)),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn inspect(&self, format: &str) -> Result<String, String> {
        common::docker(&["inspect", "-f", format, &self.name])
    }
}

impl Drop for LoopContainer {
    fn drop(&mut self) {
        // End of input ends the loop, and `docker run --rm` removes the container.
        let _ = common::docker(&["rm", "-f", &self.name]);
        let _ = self.child.wait();
    }
}
