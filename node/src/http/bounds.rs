//! Bounds on file metadata as clients send it (query string, headers, the multipart `metadata`
//! part, `PATCH` bodies), checked before a byte of the file is stored or anything is proposed.
//! Every refusal names the field and the `[limits]` key it broke.

use artstore_cluster_config::Limits;
use axum::http::StatusCode;

use super::ApiError;

/// Characters that reorder text when displayed (U+202A–202E, U+2066–2069): a name such as
/// `invoice\u{202E}fdp.exe` shows as `invoiceexe.pdf`.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A file name: 1 to `max_name_chars` characters, no control or bidirectional override characters.
pub fn name(limits: &Limits, name: &str) -> Result<(), ApiError> {
    let chars = name.chars().count();
    if name.trim().is_empty() || chars > limits.max_name_chars {
        return Err(ApiError::bad_request(
            "invalid_name",
            format!("name: 1 to {} characters (limits.max_name_chars), got {chars}", limits.max_name_chars),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::bad_request("invalid_name", "name: control characters are not allowed"));
    }
    if name.chars().any(is_bidi_control) {
        return Err(ApiError::bad_request(
            "invalid_name",
            "name: bidirectional override characters (U+202A-202E, U+2066-2069) are not allowed",
        ));
    }
    Ok(())
}

pub fn description(limits: &Limits, text: &str) -> Result<(), ApiError> {
    if text.len() > limits.max_description_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "description_too_long",
            format!(
                "description: {} bytes; the limit is {} (limits.max_description_bytes)",
                text.len(),
                limits.max_description_bytes
            ),
        ));
    }
    Ok(())
}

pub fn tags(limits: &Limits, tags: &[String]) -> Result<(), ApiError> {
    if tags.len() > limits.max_tags {
        return Err(ApiError::bad_request(
            "too_many_tags",
            format!("tags: {} given; the limit is {} (limits.max_tags)", tags.len(), limits.max_tags),
        ));
    }
    if let Some(t) = tags.iter().find(|t| t.len() > limits.max_tag_bytes || t.chars().any(char::is_control)) {
        let shown: String = t.chars().take(32).collect();
        return Err(ApiError::bad_request(
            "invalid_tag",
            format!(
                "tag {shown:?}…: at most {} bytes (limits.max_tag_bytes), no control characters",
                limits.max_tag_bytes
            ),
        ));
    }
    Ok(())
}

/// A media type as RFC 9110 §8.3.1 writes it (`type/subtype` plus parameters), at most 255 bytes.
pub fn content_type(value: &str) -> Result<(), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_content_type",
            format!(
                "content type {:?} is not a media type like application/pdf",
                value.chars().take(64).collect::<String>()
            ),
        )
    };
    if value.len() > 255 {
        return Err(bad());
    }
    let m: mime::Mime = value.parse().map_err(|_| bad())?;
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
    if !token(m.type_().as_str()) || !token(m.subtype().as_str()) {
        return Err(bad());
    }
    Ok(())
}

/// Nesting of a JSON value (a scalar is 0, an object of scalars 1), without recursion.
pub fn depth(v: &serde_json::Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            serde_json::Value::Object(m) => stack.extend(m.values().map(|x| (x, d + 1))),
            serde_json::Value::Array(a) => stack.extend(a.iter().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    deepest
}

/// Custom attributes: a JSON object of at most `max_bytes` and `limits.max_attribute_depth`
/// levels; returns it in compact form.
pub fn attributes(limits: &Limits, max_bytes: usize, json: &str) -> Result<String, ApiError> {
    if json.len() > max_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "attributes_too_large",
            format!(
                "custom attributes are {} bytes; the limit is {max_bytes} (storage.max_attributes_bytes)",
                json.len()
            ),
        ));
    }
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(v @ serde_json::Value::Object(_)) => {
            if depth(&v) > limits.max_attribute_depth {
                return Err(ApiError::bad_request(
                    "attributes_too_deep",
                    format!(
                        "custom attributes nest deeper than {} levels (limits.max_attribute_depth)",
                        limits.max_attribute_depth
                    ),
                ));
            }
            Ok(v.to_string())
        }
        _ => Err(ApiError::bad_request("invalid_attributes", "custom attributes must be a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_tags_types_and_attributes_are_bounded() {
        let l = Limits::default();
        assert!(name(&l, "годовой отчёт.pdf").is_ok());
        assert_eq!(name(&l, "invoice\u{202E}fdp.exe").unwrap_err().code, "invalid_name");
        assert_eq!(name(&l, &"a".repeat(1025)).unwrap_err().code, "invalid_name");
        assert_eq!(name(&l, "a\nb").unwrap_err().code, "invalid_name");
        assert_eq!(description(&l, &"d".repeat(l.max_description_bytes + 1)).unwrap_err().status, 413);
        assert_eq!(tags(&l, &vec!["t".to_string(); 65]).unwrap_err().code, "too_many_tags");
        assert_eq!(tags(&l, &["x".repeat(129)]).unwrap_err().code, "invalid_tag");
        assert!(content_type("application/pdf").is_ok());
        assert!(content_type("text/plain; charset=utf-8").is_ok());
        for bad in ["pdf", "", "a/b/c", "text/", "/plain", "text/pl ain"] {
            assert_eq!(content_type(bad).unwrap_err().code, "invalid_content_type", "{bad:?}");
        }
        assert!(attributes(&l, 65536, r#"{"a":{"b":1}}"#).is_ok());
        let deep = format!("{}1{}", r#"{"a":"#.repeat(9), "}".repeat(9));
        assert_eq!(attributes(&l, 65536, &deep).unwrap_err().code, "attributes_too_deep");
        assert_eq!(attributes(&l, 8, r#"{"a":"long value"}"#).unwrap_err().status, 413);
        assert_eq!(attributes(&l, 65536, "[1]").unwrap_err().code, "invalid_attributes");
    }
}
