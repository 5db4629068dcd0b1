//! Outbound HTTP through `wasi:http/outgoing-handler`. The host lets a request through only to
//! the hosts the plugin's manifest lists; anything else fails with `HttpRequestDenied`.

use wasi::http::outgoing_handler;
use wasi::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasi::io::streams::StreamError;

/// A response: status and body bytes.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// POSTs `body` to `url` (`http://` or `https://`) with `headers`, and reads the whole answer.
pub fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Response, String> {
    let (scheme, authority, path) = split_url(url)?;
    let fields: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect();
    let fields = Fields::from_list(&fields).map_err(|e| format!("bad header: {e:?}"))?;
    let request = OutgoingRequest::new(fields);
    let _ = request.set_method(&Method::Post);
    let _ = request.set_scheme(Some(&scheme));
    let _ = request.set_authority(Some(authority));
    let _ = request.set_path_with_query(Some(path));
    let outgoing = request
        .body()
        .map_err(|_| "request body unavailable".to_string())?;
    {
        let stream = outgoing
            .write()
            .map_err(|_| "request stream unavailable".to_string())?;
        // `blocking_write_and_flush` takes at most 4096 bytes per call.
        for chunk in body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| format!("writing request: {e:?}"))?;
        }
    }
    OutgoingBody::finish(outgoing, None).map_err(|e| format!("finishing request: {e:?}"))?;

    let pending =
        outgoing_handler::handle(request, None).map_err(|e| format!("request refused: {e:?}"))?;
    pending.subscribe().block();
    let response = pending
        .get()
        .ok_or("no response")?
        .map_err(|_| "response already taken".to_string())?
        .map_err(|e| format!("request failed: {e:?}"))?;
    let status = response.status();
    let incoming = response
        .consume()
        .map_err(|_| "response body unavailable".to_string())?;
    let stream = incoming
        .stream()
        .map_err(|_| "response stream unavailable".to_string())?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(e) => return Err(format!("reading response: {e:?}")),
        }
    }
    Ok(Response { status, body })
}

/// `scheme://authority/path?query` → parts; the path defaults to `/`.
fn split_url(url: &str) -> Result<(Scheme, &str, &str), String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else {
        return Err(format!("only http(s) URLs are supported: {url}"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("no host in {url}"));
    }
    Ok((scheme, authority, path))
}
