//! Which file a request names, whether it may have it, and how it goes out: tower-http's
//! file service answers from the file `disk` opened (HEAD, Range, ETag, Last-Modified,
//! conditional requests), its compression layer gzips documents for clients that accept
//! it, and packages go out byte-exact. Which Range it is handed, and whether a part answered
//! stands against `If-Range`, is `ranges`'s.

use std::convert::Infallible;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_RANGE, RANGE,
    RETRY_AFTER,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use modhost_package::Format;
use modhost_update::Index;
use tower_http::compression::Compression;
use tower_http::compression::predicate::{Predicate, SizeAbove};
use tower_http::services::ServeDir;
use tower_service::Service;

use super::access::Body;
use super::ranges;
use crate::{Groups, PRIVATE, PUBLIC, licence_key_matches};

mod disk;

use disk::Found;

/// A repository's files behind the compression of documents.
pub(super) type Files = Compression<Repository, Documents>;

/// The service answering requests for the files of the repository at `root`.
pub(super) fn files(root: PathBuf) -> Files {
    Compression::new(Repository {
        root: Arc::new(root),
    })
    .gzip(true)
    .compress_when(Documents)
}

/// Answers `request` from `files`.
pub(super) async fn respond(mut files: Files, mut request: Request<Incoming>) -> Response<Body> {
    // Always ready: neither the repository nor the compression has anything to wait for.
    let ready = std::future::poll_fn(|cx| files.poll_ready(cx)).await;
    // A HEAD is answered as the GET it stands for, its body then dropped: the same
    // header fields, gzip's included, which compression would not give an empty body.
    let head = request.method() == Method::HEAD;
    if head {
        *request.method_mut() = Method::GET;
    }
    let response = match ready {
        Ok(()) => files.call(request).await,
        Err(never) => match never {},
    };
    let mut response = match response {
        Ok(response) => response.map(|body| body.boxed_unsync()),
        Err(never) => match never {},
    };
    // The ETag names the file's bytes: a gzipped answer only matches it weakly, so that
    // no cache combines ranges of the two (what nginx does too).
    if response.headers().contains_key(CONTENT_ENCODING)
        && let Some(etag) = response.headers().get(ETAG)
        && !etag.as_bytes().starts_with(b"W/")
    {
        let mut weak = b"W/".to_vec();
        weak.extend_from_slice(etag.as_bytes());
        if let Ok(weak) = HeaderValue::from_bytes(&weak) {
            response.headers_mut().insert(ETAG, weak);
        }
    }
    // A HEAD answer has no body, whatever built it (a refusal's JSON, gzipped): over
    // HTTP/2 a body of unknown length would keep the stream open after the headers.
    if head {
        response = response.map(|_| Empty::new().map_err(|never| match never {}).boxed_unsync());
    }
    response
}

/// The refusal JSON clients of seed 003's jBackend expect: `{"status":"ko",…}`.
pub(super) fn ko(status: StatusCode, description: &str) -> Response<Body> {
    let body = serde_json::json!({
        "status": "ko",
        "error_code": status.as_u16(),
        "error_description": description,
    });
    let mut response = Response::new(
        Full::from(body.to_string())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(RETRY_AFTER, HeaderValue::from(super::RETRY_AFTER_SECS));
    }
    response
}

/// What a file that cannot be opened or read answers: `503` (with `Retry-After`) when
/// the server is out of file descriptors, a moment's load worth retrying; else `500`.
fn unreadable(e: &std::io::Error) -> (StatusCode, String) {
    match rustix::io::Errno::from_io_error(e) {
        Some(rustix::io::Errno::MFILE | rustix::io::Errno::NFILE) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the server has too many files open: retry later".to_owned(),
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the file cannot be read".to_owned(),
        ),
    }
}

/// The files of a built repository.
#[derive(Clone)]
pub(super) struct Repository {
    root: Arc<PathBuf>,
}

impl Service<Request<Incoming>> for Repository {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let root = Arc::clone(&self.root);
        Box::pin(async move { Ok(answer(root, request).await) })
    }
}

async fn answer(root: Arc<PathBuf>, request: Request<Incoming>) -> Response<Body> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        let mut refused = ko(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD are served",
        );
        refused
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return refused;
    }
    let path = request.uri().path();
    let found = if names_package(path) {
        // Finding a package reads and parses the index, and the groups for a gated one:
        // work off the connections' threads.
        let path = path.to_owned();
        let query = request.uri().query().unwrap_or_default().to_owned();
        tokio::task::spawn_blocking(move || find(&root, &path, &query))
            .await
            .unwrap_or_else(|e| {
                tracing::warn!("a request could not be answered: {e}");
                Err((StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()))
            })
    } else {
        // Anything else is an open, an `fstat` and a read of a small file (and an `lstat`
        // per directory on the way): less than handing them to another thread would
        // take (see `disk`).
        find(&root, path, "")
    };
    let file = match found {
        Ok(file) => file,
        Err((status, description)) => return ko(status, &description),
    };
    let (request, _) = request.into_parts();
    // An empty file has no byte to give part of: it is answered whole, as RFC 9110 lets
    // a server ignore a Range (tower-http would answer `206` with a `bytes 0-0/0` range
    // no client can read).
    let range = request
        .headers
        .get(RANGE)
        .filter(|_| !file.found.is_empty())
        .and_then(ranges::single_range);
    let has_range = range.is_some();
    let mut response = serve_file(&file, &request, range.clone()).await;
    if let Ok(refused) = &response
        && refused.status() == StatusCode::RANGE_NOT_SATISFIABLE
        && let Some(whole) = range.as_ref().and_then(ranges::whole_for_long_suffix)
    {
        response = serve_file(&file, &request, Some(whole)).await;
    }
    // If-Range: a part of another representation than the client holds would be spliced
    // onto what it has; it gets the whole file instead. Checked against the validators of
    // the file actually opened, so that a rebuild in between cannot slip through.
    if has_range
        && let Some(if_range) = request.headers.get(IF_RANGE)
        && let Ok(partial) = &response
        && matches!(
            partial.status(),
            StatusCode::PARTIAL_CONTENT | StatusCode::RANGE_NOT_SATISFIABLE
        )
        && !ranges::validator_matches(if_range, partial.headers())
    {
        response = serve_file(&file, &request, None).await;
    }
    match response {
        Ok(mut response) => {
            if matches!(
                response.status(),
                StatusCode::OK | StatusCode::PARTIAL_CONTENT | StatusCode::NOT_MODIFIED
            ) {
                response
                    .headers_mut()
                    .insert(CACHE_CONTROL, HeaderValue::from_static(file.cache));
            }
            response
        }
        Err(e) => {
            tracing::warn!("cannot read {}: {e}", file.found.path().display());
            let (status, description) = unreadable(&e);
            ko(status, &description)
        }
    }
}

/// `file` answered to `request` (its head: the body of a GET or HEAD means nothing), with
/// `range` as its only Range header.
async fn serve_file(
    file: &File,
    request: &http::request::Parts,
    range: Option<HeaderValue>,
) -> std::io::Result<Response<Body>> {
    // The file service is handed the file's directory and its name, which `find` made
    // sure are a directory and a plain file name: nothing of it is decoded or redirected.
    let path = file.found.path();
    let (Some(directory), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
    else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no file name",
        ));
    };
    let mut head = Request::new(Empty::<Bytes>::new());
    *head.method_mut() = request.method.clone();
    *head.uri_mut() = http::Uri::try_from(format!("/{name}"))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    *head.version_mut() = request.version;
    *head.headers_mut() = request.headers.clone();
    // A date cannot tell apart two builds of one second, nor a package republished with
    // its time kept: `If-Modified-Since` would answer `304` for bytes the client never
    // had. Only the ETag, which changes with every build that writes a file, says `304`.
    head.headers_mut().remove(IF_MODIFIED_SINCE);
    match range {
        Some(range) => head.headers_mut().insert(RANGE, range),
        None => head.headers_mut().remove(RANGE),
    };
    let mut response = ServeDir::with_backend(directory, file.found.clone())
        .append_index_html_on_directories(false)
        .redirect_to_trailing_slash(false)
        .try_call(head)
        .await?;
    // The content type is the repository's, not one guessed from the extension.
    if response.headers().contains_key(CONTENT_TYPE) {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, file.content_type.clone());
    }
    Ok(response.map(|body| body.map_err(Into::into).boxed_unsync()))
}

/// Whether `path` names a package: finding it reads the index.
fn names_package(path: &str) -> bool {
    let mut parts = path.trim_start_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("packages"), Some(_), None, None) => true,
        (Some("a2"), Some(_), Some(name), None) => package_extension(name).is_some(),
        _ => false,
    }
}

/// Gzip for documents (JSON, XML, signatures), never for packages: those go out
/// byte-exact, as their checksums and signatures say.
#[derive(Clone, Copy, Debug)]
pub(super) struct Documents;

impl Predicate for Documents {
    fn should_compress<B: http_body::Body>(&self, response: &Response<B>) -> bool {
        let document = response.headers().get(CONTENT_TYPE).is_some_and(|t| {
            [DOCUMENT_JSON, DOCUMENT_XML, DOCUMENT_TEXT]
                .iter()
                .any(|d| t.as_bytes().starts_with(d.as_bytes()))
        });
        document && SizeAbove::default().should_compress(response)
    }
}

const DOCUMENT_JSON: &str = "application/json";
const DOCUMENT_XML: &str = "application/xml";
const DOCUMENT_TEXT: &str = "text/plain";
/// Documents change with each build: kept, but checked (`If-None-Match`) before each use.
const DOCUMENT_CACHE: &str = "no-cache";

/// A file to serve: where it is, what it is, how long others may keep it.
struct File {
    found: Found,
    content_type: HeaderValue,
    cache: &'static str,
}

/// The longest path a request may name, and the longest name in it (a file name's limit
/// on Linux).
const MAX_PATH: usize = 1024;
const MAX_NAME: usize = 255;

/// Why a request is refused: the status and what the client is told.
type Refusal = (StatusCode, String);

/// The file `path` names: anything in the public part, which is made to be published
/// whole (the documents of every format, `release.json`, signatures, packages), except that
/// a package of a licence-gated group comes from the private part, once `query` carries a
/// valid licence key.
fn find(root: &Path, path: &str, query: &str) -> Result<File, Refusal> {
    // Longer than any path a repository holds: said as what it is (as nginx does), not
    // left to the filesystem to refuse.
    if path.len() > MAX_PATH {
        return Err((StatusCode::URI_TOO_LONG, "the path is too long".to_owned()));
    }
    // Each name decoded as nginx decodes a path (`%2B` is `+`), after the path is split:
    // an encoded `/` is no separator, and decoded, fails `safe` as any `/` in a name would.
    let decoded: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|part| {
            percent_encoding::percent_decode_str(part)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let parts: Vec<&str> = decoded.iter().map(String::as_str).collect();
    // Plain names only, no longer than a file's name may be: no way up, no hidden files.
    // A version may hold `+` (`2.1.0+b1`), and so may a package's name.
    let safe = |name: &&str| {
        !name.is_empty()
            && name.len() <= MAX_NAME
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
    };
    let not_found = || (StatusCode::NOT_FOUND, "no such file".to_owned());
    if !parts.iter().all(safe) {
        return Err(not_found());
    }
    let (part, gated) = match parts.as_slice() {
        // `VERSION.EXT` is the package the index lists as `RAWNAME-VERSION.EXT`.
        ["a2", rawname, name] => match package_extension(name) {
            Some((version, extension)) => {
                package_part(root, &format!("{rawname}-{version}.{extension}"), query)?
            }
            None => (root.join(PUBLIC), false),
        },
        ["packages", name] => package_part(root, name, query)?,
        _ => (root.join(PUBLIC), false),
    };
    let file = match reached_without_links(&part, &parts) {
        Ok(Some(found)) => found,
        Ok(None) => return Err(not_found()),
        Err(e) => {
            tracing::warn!(
                "cannot read {}: {e}",
                part.join(path.trim_start_matches('/')).display()
            );
            return Err(unreadable(&e));
        }
    };
    let name = parts.last().copied().unwrap_or_default();
    let (content_type, cache) = if package_extension(name).is_some() {
        // A package is named by its version: it may be kept a while; a gated one only by
        // the client that holds the licence.
        let content_type = if name.ends_with(".zip") {
            "application/zip"
        } else {
            "application/gzip"
        };
        let cache = if gated {
            "private, max-age=3600"
        } else {
            "public, max-age=3600"
        };
        (content_type, cache)
    } else if name.ends_with(".minisig") {
        (DOCUMENT_TEXT, DOCUMENT_CACHE)
    } else if name.ends_with(".xml") {
        (DOCUMENT_XML, DOCUMENT_CACHE)
    } else if name.ends_with(".json") {
        (DOCUMENT_JSON, DOCUMENT_CACHE)
    } else {
        ("application/octet-stream", DOCUMENT_CACHE)
    };
    Ok(File {
        found: file,
        content_type: HeaderValue::from_static(content_type),
        cache,
    })
}

/// The regular file `names` lead to under `part`, opened, when every directory on the
/// way is a directory and the file a file, none of them a symbolic link: a link in the
/// repository could lead anywhere on the machine (`/etc/passwd`), so what is reached
/// through one is not served, as if missing.
fn reached_without_links(part: &Path, names: &[&str]) -> std::io::Result<Option<Found>> {
    let Some((last, directories)) = names.split_last() else {
        return Ok(None);
    };
    let mut path = part.to_owned();
    for name in directories {
        path.push(name);
        match std::fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.file_type().is_dir() => {}
            _ => return Ok(None),
        }
    }
    path.push(last);
    // The last name is checked as it is opened (`O_NOFOLLOW`).
    Found::open(path)
}

/// `name` split into its stem and extension when it is named like a package, in any
/// format [`crate::build()`] publishes.
fn package_extension(name: &str) -> Option<(&str, &str)> {
    let formats = [Format::GzipTar, Format::Zip];
    name.rsplit_once('.')
        .filter(|(_, extension)| formats.iter().any(|f| f.extension() == *extension))
}

/// The part of the repository package `file` is served from, and whether it is gated:
/// the public part, or for a package of a licence-gated group the private one, once
/// `query` carries a valid licence key (`email` and `key`).
fn package_part(root: &Path, file: &str, query: &str) -> Result<(PathBuf, bool), Refusal> {
    let index = std::fs::read(root.join(PUBLIC).join(modhost_update::index::FILE))
        .ok()
        .and_then(|bytes| Index::parse(&bytes).ok());
    let group = index
        .iter()
        .flat_map(|i| i.modules.iter())
        .find(|e| e.file == file)
        .and_then(|e| e.group.clone());
    let Some(group) = group else {
        return Ok((root.join(PUBLIC), false));
    };
    let forbidden = |description: String| (StatusCode::FORBIDDEN, description);
    let private = root.join(PRIVATE);
    // A groups.toml edited by hand since the build may hold a weak or missing secret: its
    // packages are then refused, and the operator told why.
    let groups = Groups::load(&private.join("groups.toml")).map_err(|e| {
        tracing::warn!("licence-gated packages are refused: {e}");
        (StatusCode::INTERNAL_SERVER_ERROR, "bad groups".to_owned())
    })?;
    let Some(secret) = groups.groups.get(&group).map(|g| g.secret.clone()) else {
        return Err(forbidden(
            "this package's licence group is not configured".into(),
        ));
    };
    let param = |name: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    match (param("email"), param("key")) {
        (Some(email), Some(key)) if licence_key_matches(&secret, &email, &key) => {
            Ok((private, true))
        }
        (Some(_), Some(_)) => Err(forbidden(
            "the licence key is not valid for this e-mail address".into(),
        )),
        _ => Err(forbidden(format!(
            "a licence key for the `{group}` package group is required (email=…&key=…)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_out_of_files_is_a_moment_to_retry_and_anything_else_an_error() {
        for errno in [24, 23] {
            let (status, description) = unreadable(&std::io::Error::from_raw_os_error(errno));
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{description}");
            let answer = ko(status, &description);
            assert!(answer.headers().contains_key(RETRY_AFTER));
        }
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(unreadable(&denied).0, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
