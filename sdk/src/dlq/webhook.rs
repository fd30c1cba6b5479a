//! A minimal HTTP/1.1 JSON POST for alert webhooks (plain `http://`; put a
//! TLS-terminating relay in front of `https://` receivers).
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A parsed `http://host[:port][/path]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpUrl {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) path: String,
}

impl HttpUrl {
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let rest = if let Some(rest) = url.strip_prefix("http://") {
            rest
        } else if url.starts_with("https://") {
            return Err(format!(
                "{url}: https webhooks are not supported; point the monitor at a local relay over http"
            ));
        } else {
            return Err(format!("{url}: a webhook URL starts with http://"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!(
                "{url}: expected http://host[:port]/path (no credentials)"
            ));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| format!("{url}: port {port:?} is not a number from 0 to 65535"))?;
                (host, port)
            }
            _ => (authority, 80),
        };
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{url}: the path contains whitespace or control characters"
            ));
        }
        Ok(Self {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            path: path.to_string(),
        })
    }
}

/// POSTs `body` as JSON and checks for a 2xx status.
pub(crate) async fn post_json(url: &HttpUrl, body: &[u8], timeout: Duration) -> Result<(), String> {
    let exchange = async {
        let mut stream = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| format!("connect {}:{}: {e}", url.host, url.port))?;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: tidings-dlq-monitor\r\n\r\n",
            url.path,
            url.host,
            url.port,
            body.len()
        );
        stream
            .write_all(head.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        stream.write_all(body).await.map_err(|e| e.to_string())?;
        stream.flush().await.map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        let mut buf = [0u8; 1024];
        // The status line is all we need.
        while !response.windows(2).any(|w| w == b"\r\n") && response.len() < 8192 {
            let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            response.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&response);
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| {
                format!(
                    "not an HTTP response: {:?}",
                    line.lines().next().unwrap_or("")
                )
            })?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(format!("the webhook answered HTTP {status}"))
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}

#[cfg(test)]
mod tests {
    use super::HttpUrl;

    #[test]
    fn urls_are_parsed_or_refused_with_a_reason() {
        assert_eq!(
            HttpUrl::parse("http://127.0.0.1:8080/hooks/dlq"),
            Ok(HttpUrl {
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/hooks/dlq".into()
            })
        );
        assert_eq!(
            HttpUrl::parse("http://alerts.local").map(|u| (u.port, u.path)),
            Ok((80, "/".into()))
        );
        for bad in [
            "https://x",
            "ftp://x",
            "http://",
            "http://u:p@x/",
            "http://x:99999/",
            "http://x/a b",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
