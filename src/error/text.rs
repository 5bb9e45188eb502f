//! Messages fit to show: secrets taken out, and an S3 answer (an XML document) said in one line.
//!
//! Both work on free text, because secrets reach messages through texts the crate does not
//! compose (object_store's request URLs, polars' cloud errors, a URL the user typed): a pattern
//! over the final text catches them whichever way they came. The `regex` crate is already in the
//! build (polars, tracing-subscriber), so the patterns cost no new code.

use regex::Regex;
use std::sync::LazyLock;

/// What replaces a secret.
const HIDDEN: &str = "***";

/// Environment variables whose values are secrets wherever they appear verbatim.
const SECRET_VARS: [&str; 3] = ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"];

/// Secret values shorter than this are not searched for verbatim: a test secret like `test`
/// would otherwise blank out ordinary words. Real AWS secret keys are 40 characters.
const MIN_SECRET_LEN: usize = 8;

fn pattern(re: &str) -> Regex {
    // The patterns are constants checked by the tests below: failing to compile one is a bug.
    Regex::new(re).expect("a valid constant pattern")
}

/// `scheme://USERINFO@`: the whole user-info part goes (a user name can be a token too).
static USERINFO: LazyLock<Regex> = LazyLock::new(|| pattern(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]+@"));

/// `NAME=VALUE` of query strings and signed headers whose value is a credential.
static PARAMS: LazyLock<Regex> = LazyLock::new(|| {
    pattern(
        r"(?i)(^|[?&;,\s])((?:x-amz-|x-goog-)?(?:signature|credential|security-token)|sig|token|access_token|password|passwd|secret|awsaccesskeyid|aws_secret_access_key|aws_session_token)=([^&\s,;]*)",
    )
});

/// Removes secrets from `text`: URL user info (`http://user:pass@host` → `http://***@host`), the
/// values of signing and token parameters (`X-Amz-Signature=…`, `X-Amz-Credential=…`,
/// `Signature=…`, `token=…`…), and the values of `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`
/// wherever they appear verbatim.
pub fn redact(text: &str) -> String {
    let mut out = USERINFO.replace_all(text, format!("${{1}}{HIDDEN}@")).into_owned();
    out = PARAMS.replace_all(&out, format!("${{1}}${{2}}={HIDDEN}")).into_owned();
    for var in SECRET_VARS {
        if let Ok(v) = std::env::var(var) {
            if v.len() >= MIN_SECRET_LEN && out.contains(&v) {
                out = out.replace(&v, HIDDEN);
            }
        }
    }
    out
}

static STATUS: LazyLock<Regex> = LazyLock::new(|| pattern(r"status code: (\d{3}(?: [A-Za-z][A-Za-z ]*[A-Za-z])?)"));
static REQUEST: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"Error performing (GET|PUT|POST|DELETE|HEAD|PATCH) ([^\s?]+)"));
static CODE: LazyLock<Regex> = LazyLock::new(|| pattern(r"<Code>([^<]{1,100})</Code>"));
static MESSAGE: LazyLock<Regex> = LazyLock::new(|| pattern(r"<Message>([^<]{1,300})</Message>"));

/// What to do about an S3 error code or HTTP status.
fn advice(code: Option<&str>, status: Option<u16>, text: &str) -> &'static str {
    match (code, status) {
        (Some("NoSuchBucket"), _) => {
            "the bucket does not exist: check the bucket of the lake URL (s3://BUCKET/PREFIX), AWS_ENDPOINT_URL and AWS_REGION"
        }
        (Some("InvalidAccessKeyId"), _) => "S3 does not know this access key: check AWS_ACCESS_KEY_ID",
        (Some("SignatureDoesNotMatch"), _) => "the secret key does not match the access key: check AWS_SECRET_ACCESS_KEY",
        (Some("ExpiredToken" | "InvalidToken" | "TokenRefreshRequired"), _) => {
            "the session token is expired or wrong: refresh AWS_SESSION_TOKEN"
        }
        (Some("AuthorizationHeaderMalformed" | "PermanentRedirect" | "IllegalLocationConstraintException"), _) => {
            "the bucket lives in another region: set AWS_REGION to the bucket's region"
        }
        (Some("AccessDenied" | "AllAccessDisabled"), _) | (_, Some(401 | 403)) => {
            "these credentials may not do this: check the bucket's policy and the key's permissions"
        }
        (Some("NoSuchKey"), _) | (_, Some(404)) => "the object is not there (another process may have moved it): run again",
        (Some("SlowDown" | "ServiceUnavailable" | "InternalError"), _) | (_, Some(500..=599)) => {
            "S3 is failing or throttling: retry later"
        }
        _ if text.contains("onnect") || text.contains("dns error") => {
            "the S3 endpoint cannot be reached: check AWS_ENDPOINT_URL and the network"
        }
        _ => "check the lake URL and the AWS settings (AWS_REGION, AWS_ENDPOINT_URL, credentials)",
    }
}

/// An object-store error in one line: for an S3 answer, the HTTP status, S3's error code and
/// message, the request (method and URL without its query) and what to do; S3's XML document
/// itself is never shown. Secrets are redacted.
pub fn store_error(e: &object_store::Error) -> String {
    if let object_store::Error::NotFound { path, .. } = e {
        return redact(&format!("not found: {path}"));
    }
    summarize_store_text(&e.to_string())
}

/// [`store_error`] over the text of an object-store error (also when it reached us inside
/// another library's error, e.g. polars' cloud reader).
pub fn summarize_store_text(text: &str) -> String {
    let status = STATUS.captures(text).map(|c| c[1].to_string());
    let code = CODE.captures(text).map(|c| c[1].trim().to_string());
    if status.is_none() && code.is_none() {
        let line = one_line(text);
        if line.contains("error sending request") || line.contains("tcp connect") || line.contains("dns error") {
            return redact(&format!("{line}: {}", advice(None, None, "connect")));
        }
        return redact(&line);
    }
    let status_num = status.as_deref().and_then(|s| s.get(..3)).and_then(|s| s.parse::<u16>().ok());
    let mut out = String::from("S3 answered");
    if let Some(s) = &status {
        out.push(' ');
        out.push_str(s);
    }
    if let Some(c) = &code {
        out.push_str(&format!(" {c}"));
        if let Some(m) = MESSAGE.captures(text) {
            out.push_str(&format!(" ({})", m[1].trim()));
        }
    }
    if let Some(r) = REQUEST.captures(text) {
        out.push_str(&format!(" to {} {}", &r[1], &r[2]));
    }
    out.push_str(": ");
    out.push_str(advice(code.as_deref(), status_num, text));
    redact(&out)
}

/// A text on one line: an embedded XML document is cut off, line breaks become spaces.
pub fn one_line(text: &str) -> String {
    let head = match text.find("<?xml") {
        Some(i) => text[..i].trim_end().trim_end_matches(':'),
        None => text,
    };
    head.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An error and its causes as one line (`outer: inner: …`), stopping after the first of the
/// crate's own [`super::Error`]s (whose text already says what its cause means, e.g. an S3
/// answer in one line), with secrets redacted. What the command line prints for a failure.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        // anyhow's and thiserror's wrappers may repeat their cause's text: keep each once.
        if !parts.last().is_some_and(|p| p.ends_with(&text)) {
            parts.push(text);
        }
        if err.downcast_ref::<super::Error>().is_some() {
            break;
        }
        cur = err.source();
    }
    let joined = parts.join(": ");
    let line = if joined.contains("<Code>") || joined.contains("<?xml") {
        summarize_store_text(&joined)
    } else {
        one_line(&joined)
    };
    redact(&line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_and_signatures_are_hidden() {
        let t =
            redact("GET http://user:s3cr3tpass@host:9000/b?X-Amz-Signature=abc123&x=1&X-Amz-Credential=AKIA%2F2024");
        assert!(!t.contains("s3cr3tpass") && !t.contains("abc123") && !t.contains("AKIA"), "{t}");
        assert!(t.contains("http://***@host:9000/b?X-Amz-Signature=***&x=1&X-Amz-Credential=***"), "{t}");
        let t = redact("Authorization: AWS4-HMAC-SHA256 Credential=AKIAX/2024, Signature=deadbeef token=zz");
        assert!(!t.contains("AKIAX") && !t.contains("deadbeef") && !t.contains("zz"), "{t}");
        // Ordinary text is left alone.
        assert_eq!(
            redact("no file at /tmp/x: see https://example.com/a?b=c"),
            "no file at /tmp/x: see https://example.com/a?b=c"
        );
    }

    #[test]
    fn s3_xml_becomes_one_line() {
        let raw = "Generic S3 error: Error performing list request: Error performing GET http://127.0.0.1:9/nobucket?list-type=2&prefix=x in 5ms - Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>nobucket</BucketName></Error>";
        let s = summarize_store_text(raw);
        assert!(!s.contains('\n') && !s.contains('<'), "{s}");
        assert!(s.starts_with("S3 answered 404 Not Found NoSuchBucket (The specified bucket does not exist) to GET http://127.0.0.1:9/nobucket:"), "{s}");
        assert!(s.contains("check the bucket"), "{s}");
        let s = summarize_store_text("status code: 403 Forbidden: <Error><Code>InvalidAccessKeyId</Code></Error>");
        assert!(s.contains("InvalidAccessKeyId") && s.contains("AWS_ACCESS_KEY_ID"), "{s}");
    }

    #[test]
    fn described_chain_stops_at_the_crate_error() {
        let inner = super::super::Error::Io {
            path: "/x".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        };
        let e = anyhow::Error::new(inner).context("reading the lake");
        assert_eq!(describe(e.as_ref()), "reading the lake: I/O error at /x: gone");
    }
}
