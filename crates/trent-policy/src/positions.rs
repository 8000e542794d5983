//! Where each statement of a policy document sits in its JSON text: the line and column of its
//! opening and closing brace, as IAM's policy simulator reports them (`StartPosition` /
//! `EndPosition` of a matched statement).
//!
//! The parser does not keep source positions (the compiled [`Policy`](crate::Policy) is what
//! the request path evaluates, and it carries nothing it does not need). This is a separate,
//! linear scan of the same text, done only when someone asks where a statement is: the
//! simulator, never the request path.
//!
//! Convention (from AWS's published `simulate-custom-policy` output): lines count from 1;
//! columns count characters from 1 and name the position just after the brace — a statement
//! whose `{` is the 37th character of line 1 starts at column 38.

/// A line and column in a policy document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 1-based line.
    pub line: u32,
    /// 1-based character column just after the brace.
    pub column: u32,
}

/// The start and end of one statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementSpan {
    /// After the statement's `{`.
    pub start: Position,
    /// After the statement's `}`.
    pub end: Position,
}

/// The span of every statement of `json` in document order: the object value of the top-level
/// `Statement` member, or each object element of its array value. For text that is not a
/// well-formed policy document the list may be short or empty; callers look spans up by index
/// and leave positions out when there is none.
#[must_use]
pub fn statement_positions(json: &str) -> Vec<StatementSpan> {
    let mut spans = Vec::new();
    // Open containers: `{` or `[`.
    let mut stack: Vec<char> = Vec::new();
    let (mut line, mut column) = (1u32, 0u32);
    let (mut in_string, mut escaped) = (false, false);
    // The key being read (only keys of the top-level object are collected).
    let mut key: Option<String> = None;
    let mut expect_key = false;
    // The current top-level member is `Statement`; its value is an array.
    let (mut statement_value, mut statement_array) = (false, false);
    // The start of the statement being read, and the depth its object opened at.
    let mut open: Option<(Position, usize)> = None;
    for c in json.chars() {
        column = column.saturating_add(1);
        let here = Position {
            line,
            column: column.saturating_add(1),
        };
        if c == '\n' {
            line = line.saturating_add(1);
            column = 0;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            } else if let Some(k) = key.as_mut() {
                k.push(c);
            }
            if !in_string && let Some(k) = key.take() {
                statement_value = k == "Statement";
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                if stack.len() == 1 && expect_key {
                    key = Some(String::new());
                    expect_key = false;
                }
            }
            ',' if stack.len() == 1 => {
                expect_key = true;
                statement_value = false;
            }
            '{' => {
                stack.push('{');
                let depth = stack.len();
                let statement = statement_value
                    && ((depth == 2 && !statement_array) || (depth == 3 && statement_array));
                if statement && open.is_none() {
                    open = Some((here, depth));
                }
                if depth == 1 {
                    expect_key = true;
                }
            }
            '[' => {
                stack.push('[');
                if stack.len() == 2 && statement_value {
                    statement_array = true;
                }
            }
            '}' | ']' => {
                if c == '}'
                    && let Some((start, depth)) = open
                    && depth == stack.len()
                {
                    spans.push(StatementSpan { start, end: here });
                    open = None;
                }
                stack.pop();
                if stack.len() == 1 {
                    statement_array = false;
                    statement_value = false;
                }
            }
            _ => {}
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: u32, column: u32) -> Position {
        Position { line, column }
    }

    #[test]
    fn matches_aws_published_example() {
        // AWS CLI's simulate-custom-policy example: Start {1, 38}, End {1, 167}.
        let doc = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2018-08-16T12:00:00Z"}}}}"#;
        assert_eq!(
            statement_positions(doc),
            vec![StatementSpan {
                start: pos(1, 38),
                end: pos(1, 167)
            }]
        );
    }

    #[test]
    fn arrays_lines_and_strings_with_braces() {
        let doc = "{\n  \"Sid\": \"x\",\n  \"Statement\": [\n    {\"Sid\": \"a{\\\"}\", \"Effect\": \"Allow\"},\n    {\n      \"Sid\": \"b\"\n    }\n  ],\n  \"Other\": {\"Statement\": [{}]}\n}";
        assert_eq!(
            statement_positions(doc),
            vec![
                StatementSpan {
                    start: pos(4, 6),
                    end: pos(4, 40)
                },
                StatementSpan {
                    start: pos(5, 6),
                    end: pos(7, 6)
                },
            ]
        );
    }

    #[test]
    fn garbage_gives_no_spans_and_no_panic() {
        for doc in ["", "{", "}}}]]", "{\"Statement\":", "[{\"Statement\":{}}]"] {
            let _ = statement_positions(doc);
        }
        assert!(statement_positions("[{\"Statement\":{}}]").is_empty());
    }
}
