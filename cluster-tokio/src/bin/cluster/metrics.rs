//! `cluster join --metrics ADDR`: OpenMetrics text at `GET /metrics`, over a tiny HTTP/1.1
//! server on a tokio `TcpListener` (one request per connection, then close; no framework).
//!
//! Each request takes a new snapshot of the node ([`NodeMetrics::refresh`]) and answers
//! `200` with `application/openmetrics-text`; any other path is `404`, any other method
//! `405`, a request head over [`HEAD_LIMIT`] bytes or slower than [`HEAD_TIMEOUT`] is
//! dropped. Connections are served one at a time: a scrape is small and rare.

use std::time::Duration;

use cluster_host::metrics::NodeMetrics;
use cluster_tokio::Handle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The longest request head read.
const HEAD_LIMIT: usize = 8 * 1024;
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves scrapes until the node stops.
pub(crate) async fn serve(listener: TcpListener, handle: Handle, metrics: NodeMetrics) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, say: let some close before trying again.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if answer(stream, &handle, &metrics).await.is_err() {
            tracing::debug!("a metrics client went away");
        }
    }
}

/// Reads one request head and answers it.
async fn answer(
    mut stream: TcpStream,
    handle: &Handle,
    metrics: &NodeMetrics,
) -> std::io::Result<()> {
    let Ok(head) = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await else {
        return Ok(());
    };
    let head = head?;
    let (status, kind, body) = match request_line(&head) {
        Some(("GET", "/metrics")) => match metrics.refresh(handle).await {
            Ok(()) => ("200 OK", OPENMETRICS, metrics.encode()),
            Err(e) => ("503 Service Unavailable", "text/plain", format!("{e}\n")),
        },
        Some(("GET", _)) => ("404 Not Found", "text/plain", "try /metrics\n".to_owned()),
        Some(_) => (
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n".to_owned(),
        ),
        None => ("400 Bad Request", "text/plain", "bad request\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The bytes up to the blank line ending the head, at most [`HEAD_LIMIT`].
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || head.len() + n > HEAD_LIMIT {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
        head.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    Ok(head)
}

/// The method and the path (without a query string) of the request line.
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split(' ');
    let (method, target, version) = (words.next()?, words.next()?, words.next()?);
    if !version.starts_with("HTTP/1.") || words.next().is_some() {
        return None;
    }
    let path = target.split('?').next()?;
    Some((method, path))
}

#[cfg(test)]
mod tests {
    use super::request_line;

    #[test]
    fn request_lines_give_method_and_path() {
        assert_eq!(
            request_line(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(
            request_line(b"POST / HTTP/1.0\r\n\r\n"),
            Some(("POST", "/"))
        );
        assert_eq!(request_line(b"GET /metrics\r\n\r\n"), None);
        assert_eq!(request_line(b"\xff\xfe\r\n\r\n"), None);
    }
}
