//! `cluster join --answer-cmd CMD`: each query the node receives is answered by running
//! `sh -c CMD` with the query text on stdin; what it writes on stdout is the answer.
//!
//! Bounded in every way: at most `--answer-jobs` commands run at once (a query waits for a
//! free slot within its time, else it is refused `busy`); each query gets `--answer-timeout`
//! from its arrival, after which the command is killed and the query refused; an answer
//! longer than the node's payload capacity is refused, and no more of it is read. A command
//! that fails (cannot start, exits non-zero, is killed) refuses the query with a short
//! error text saying so. The asker's `sid`, `channel` and `ruid` are in the environment as
//! `CLUSTER_SID`, `CLUSTER_CHANNEL` and `CLUSTER_RUID`.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use cluster_tokio::{IncomingQuery, Responder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

/// The longest answer read from a command: the hosted node's payload capacity.
const ANSWER_LIMIT: usize = cluster_host::DATA;

/// How the queries of one node are answered by a command.
#[derive(Debug, Clone)]
pub(crate) struct AnswerCmd {
    command: String,
    timeout: Duration,
    jobs: Arc<Semaphore>,
    max_jobs: usize,
}

impl AnswerCmd {
    pub(crate) fn new(command: String, timeout: Duration, max_jobs: usize) -> Self {
        let max_jobs = max_jobs.max(1);
        Self {
            command,
            timeout,
            jobs: Arc::new(Semaphore::new(max_jobs)),
            max_jobs,
        }
    }

    /// Answers `query` in a task of its own.
    pub(crate) fn spawn(&self, query: IncomingQuery) {
        let this = self.clone();
        tokio::spawn(async move { this.answer(query).await });
    }

    async fn answer(self, query: IncomingQuery) {
        let IncomingQuery {
            sid,
            channel,
            ruid,
            payload,
            responder,
        } = query;
        let deadline = tokio::time::Instant::now() + self.timeout;
        let Ok(Ok(_permit)) =
            tokio::time::timeout_at(deadline, Arc::clone(&self.jobs).acquire_owned()).await
        else {
            let busy = format!("busy: {} answer commands running", self.max_jobs);
            return refuse(responder, busy).await;
        };
        let env = [
            ("CLUSTER_SID", sid.to_string()),
            ("CLUSTER_CHANNEL", channel.to_string()),
            ("CLUSTER_RUID", ruid.unwrap_or_default()),
        ];
        let input = payload.data.unwrap_or_default();
        let run = run_command(&self.command, &env, &input);
        match tokio::time::timeout_at(deadline, run).await {
            Ok(Ok(answer)) => {
                // A late or refused answer is counted by the node; nothing else to do.
                let _ = responder.answer(answer).await;
            }
            Ok(Err(error)) => refuse(responder, error).await,
            Err(_) => {
                let text = format!(
                    "answer command timed out after {}",
                    cluster_host::format_duration(self.timeout)
                );
                refuse(responder, text).await;
            }
        }
    }
}

async fn refuse(responder: Responder, text: String) {
    let _ = responder.refuse(text).await;
}

/// Runs `sh -c command` with `input` on stdin; its stdout (one trailing newline removed) on
/// success, else why not. Dropping the future kills the command.
async fn run_command(
    command: &str,
    env: &[(&str, String)],
    input: &[u8],
) -> Result<Vec<u8>, String> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("answer command did not start: {e}"))?;
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take().ok_or("answer command has no stdout")?;
    let feed = async {
        if let Some(stdin) = &mut stdin {
            // A command that does not read its input may close it early: not an error.
            let _ = stdin.write_all(input).await;
        }
        drop(stdin.take());
    };
    let mut answer = Vec::new();
    let mut limited = (&mut stdout).take(ANSWER_LIMIT as u64 + 1);
    let read = limited.read_to_end(&mut answer);
    let ((), read) = tokio::join!(feed, read);
    read.map_err(|e| format!("reading the answer failed: {e}"))?;
    if answer.len() > ANSWER_LIMIT {
        return Err(format!("answer longer than {ANSWER_LIMIT} bytes"));
    }
    drop(stdout);
    let status = child
        .wait()
        .await
        .map_err(|e| format!("answer command failed: {e}"))?;
    if !status.success() {
        return Err(format!("answer command failed ({status})"));
    }
    if answer.last() == Some(&b'\n') {
        answer.pop();
    }
    Ok(answer)
}
