//! Bounds on the search text `q`, checked before tantivy's query parser sees it.
//!
//! The parser recurses once per nesting level: 2 500 `(` overflowed a tokio worker's stack and
//! aborted the node. Length, nesting (parentheses, brackets, braces) and the number of words and
//! operators are therefore limited here, in a single pass that does not recurse itself.

use artstore_cluster_config::Limits;

use crate::QueryError;

/// Checks `text` against the `limits.max_query_*` settings.
pub fn check_text(text: &str, limits: &Limits) -> Result<(), QueryError> {
    if text.len() > limits.max_query_bytes {
        return Err(QueryError::Limit {
            code: "query_too_long",
            message: format!(
                "q: {} bytes; the limit is {} (limits.max_query_bytes)",
                text.len(),
                limits.max_query_bytes
            ),
        });
    }
    let (mut depth, mut deepest, mut terms) = (0usize, 0usize, 0usize);
    let (mut in_quotes, mut in_word) = (false, false);
    for c in text.chars() {
        if in_quotes {
            if c == '"' {
                in_quotes = false;
            }
            continue;
        }
        let opens = matches!(c, '(' | '[' | '{');
        let closes = matches!(c, ')' | ']' | '}');
        if opens {
            depth += 1;
            deepest = deepest.max(depth);
            terms += 1;
        } else if closes {
            depth = depth.saturating_sub(1);
        }
        let word_char = !(c.is_whitespace() || opens || closes);
        if c == '"' {
            in_quotes = true;
            terms += 1;
            in_word = false;
        } else if word_char && !in_word {
            terms += 1;
            in_word = true;
        } else if !word_char {
            in_word = false;
        }
        if deepest > limits.max_query_depth {
            return Err(QueryError::Limit {
                code: "query_too_deep",
                message: format!(
                    "q: nesting deeper than {} levels of (), [] or {{}} (limits.max_query_depth)",
                    limits.max_query_depth
                ),
            });
        }
        if terms > limits.max_query_terms {
            return Err(QueryError::Limit {
                code: "query_too_complex",
                message: format!(
                    "q: more than {} words, phrases and groups (limits.max_query_terms)",
                    limits.max_query_terms
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> Option<&'static str> {
        match check_text(text, &Limits::default()) {
            Ok(()) => None,
            Err(QueryError::Limit { code, .. }) => Some(code),
            Err(e) => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn ordinary_queries_pass() {
        for q in ["годовой отчёт", "name:report OR tags:(2026 annual)", "\"a (quoted ((( phrase\" -draft", ""]
        {
            assert_eq!(code(q), None, "{q}");
        }
    }

    #[test]
    fn deep_long_and_wide_queries_are_refused_by_name() {
        assert_eq!(code(&"(".repeat(2500)), Some("query_too_long"));
        assert_eq!(code(&"(".repeat(17)), Some("query_too_deep"));
        assert_eq!(code(&format!("{}a{}", "[".repeat(17), "]".repeat(17))), Some("query_too_deep"));
        assert_eq!(code(&"(a) ".repeat(16)), None, "many shallow groups are fine");
        assert_eq!(code(&"a ".repeat(65)), Some("query_too_complex"));
        assert_eq!(code(&"x".repeat(2049)), Some("query_too_long"));
    }
}
