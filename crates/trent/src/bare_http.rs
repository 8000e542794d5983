//! `trent bare-http`: the ceiling `trent bench --baseline` measures Trent against.
//!
//! A plain hyper HTTP/1.1 server on the same kind of Tokio runtime as `trent serve`. It reads each
//! request body in full, as Trent does, and answers with a fixed awsJson body of Encrypt's size,
//! doing no signature check, no parsing and no cryptography: what is left is the cost of HTTP
//! itself on this machine, so `Trent ÷ bare` is the share of that ceiling Trent reaches.

use std::convert::Infallible;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};

/// About the size of an Encrypt response for a 64-byte plaintext.
const BODY: &str = concat!(
    r#"{"CiphertextBlob":"AQICAHh4c2RmZ2hqa2xxd2VydHl1aW9wYXNkZmdoamtsenhjdmJubS1xd2VydHl1aW9w"#,
    r#"YXNkZmdoamtsenhjdmJubS1xd2VydHl1aW9wYXNkZmdoamtsenhjdmJubS1xd2VydHl1aW9wYXNkZmdoamts","#,
    r#""EncryptionAlgorithm":"SYMMETRIC_DEFAULT","KeyId":"arn:aws:kms:us-east-1:111122223333:"#,
    r#"key/1234abcd-12ab-34cd-56ef-1234567890ab"}"#
);

/// Serves on `listen` until the process is killed; prints `listening on ADDR` first.
pub async fn run(listen: &str) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on {addr}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(answer);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the whole body, as Trent must before it can check the signature.
    let _ = request.into_body().collect().await;
    let mut response = Response::new(Full::new(Bytes::from_static(BODY.as_bytes())));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    Ok(response)
}
