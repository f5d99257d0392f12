//! Parser for `--filter` expressions such as `tags.host=a` or `value>=3`.

use crate::clock;
use crate::proto::v1::{Filter, FilterValue, Operator, filter_value};

use super::parse::parse_time;

/// Accepted filter forms, for error messages.
pub const FILTER_FORMS: &str = "FIELD OP VALUE, where FIELD is value, time or tags.<key> and OP is \
     = != > >= < <=, ~ (regular expression), % or like (case-insensitive substring), \
     in (comma-separated list), or the tag tests exists and !exists; \
     for example tags.host=a, value>=3, tags.host~^web, tags.dc in eu,us, tags.host exists. \
     Quote a value (\"3\") to compare it as a string";

/// Characters that end the field name and start a symbolic operator.
const OPERATOR_CHARS: &[char] = &['=', '!', '<', '>', '~', '%'];

/// Symbolic operators, longest first so that `>=` wins over `>`.
const SYMBOLIC_OPERATORS: &[(&str, Operator)] = &[
    ("!=", Operator::Ne),
    (">=", Operator::Gte),
    ("<=", Operator::Lte),
    ("==", Operator::Eq),
    ("=", Operator::Eq),
    (">", Operator::Gt),
    ("<", Operator::Lt),
    ("~", Operator::Regex),
    ("%", Operator::Like),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    Value,
    Time,
    Tag,
}

/// Parses a `--filter` value, resolving relative `time` operands against
/// the current clock.
pub fn parse_filter_arg(text: &str) -> Result<Filter, String> {
    parse_filter(text, clock::now_ns())
}

/// Parses a filter expression into its protobuf form.
///
/// Operands of `value` become integers, doubles (`inf` and `NaN` too, as
/// in `tidemark write`) or booleans when they read as one, and strings
/// otherwise. Operands of `time` are times (see
/// [`parse_time`]) sent as integer nanoseconds. Operands of tags are
/// always strings.
pub fn parse_filter(text: &str, now_ns: i64) -> Result<Filter, String> {
    let invalid =
        |problem: String| format!("invalid filter {text:?}: {problem}; expected {FILTER_FORMS}");

    let trimmed = text.trim();
    let field_end = trimmed
        .find(|c: char| c.is_whitespace() || OPERATOR_CHARS.contains(&c))
        .unwrap_or(trimmed.len());
    let field = &trimmed[..field_end];
    let rest = trimmed[field_end..].trim_start();

    let kind = match field {
        "" => return Err(invalid("the field is missing".to_owned())),
        "value" => FieldKind::Value,
        "time" => FieldKind::Time,
        _ => match field.strip_prefix("tags.") {
            Some(key) if !key.is_empty() => FieldKind::Tag,
            _ => return Err(invalid(format!("unknown field {field:?}"))),
        },
    };

    let (op, operand) = match split_operator(rest) {
        Some(found) => found,
        None if rest.is_empty() => return Err(invalid("the operator is missing".to_owned())),
        None => return Err(invalid(format!("unknown operator in {rest:?}"))),
    };
    let takes_value = !matches!(op, Operator::Exists | Operator::NotExists | Operator::In);
    if takes_value && operand.is_empty() {
        return Err(invalid(
            "the value after the operator is missing".to_owned(),
        ));
    }

    let mut values = Vec::new();
    match op {
        Operator::Exists | Operator::NotExists => {
            if kind != FieldKind::Tag {
                return Err(invalid(format!(
                    "exists and !exists apply only to tags.<key>, not {field}"
                )));
            }
            if !operand.is_empty() {
                return Err(invalid(format!(
                    "{operand:?} follows a test that takes no value"
                )));
            }
        }
        Operator::Regex | Operator::Like if kind == FieldKind::Time => {
            return Err(invalid(
                "time compares with = != > >= < <= and in, not pattern operators".to_owned(),
            ));
        }
        Operator::Regex => {
            let (pattern, _) = unquote(operand);
            if let Err(err) = regex::Regex::new(&pattern) {
                return Err(format!(
                    "invalid filter {text:?}: the regular expression does not compile: {err}"
                ));
            }
            values.push(string_value(pattern));
        }
        Operator::Like => {
            let (needle, _) = unquote(operand);
            values.push(string_value(needle));
        }
        Operator::In => {
            let items = split_list(operand).map_err(invalid)?;
            for (item, quoted) in items {
                values.push(typed_operand(kind, &item, quoted, now_ns).map_err(invalid)?);
            }
        }
        _ => {
            let (item, quoted) = unquote(operand);
            values.push(typed_operand(kind, &item, quoted, now_ns).map_err(invalid)?);
        }
    }

    Ok(Filter {
        field: field.to_owned(),
        op: op as i32,
        values,
    })
}

/// Splits the text after the field into the operator and its operand.
/// Returns `None` when the text starts with no known operator.
fn split_operator(rest: &str) -> Option<(Operator, &str)> {
    let (word, after_word) = match rest.find(char::is_whitespace) {
        Some(end) => (&rest[..end], rest[end..].trim()),
        None => (rest, ""),
    };
    let word_operator = match word.to_ascii_lowercase().as_str() {
        "exists" => Some(Operator::Exists),
        "!exists" => Some(Operator::NotExists),
        "like" => Some(Operator::Like),
        "in" => Some(Operator::In),
        _ => None,
    };
    if let Some(op) = word_operator {
        return Some((op, after_word));
    }

    SYMBOLIC_OPERATORS
        .iter()
        .find(|(symbol, _)| rest.starts_with(symbol))
        .map(|(symbol, op)| (*op, rest[symbol.len()..].trim()))
}

/// Types one operand by field: see [`parse_filter`].
fn typed_operand(
    kind: FieldKind,
    text: &str,
    quoted: bool,
    now_ns: i64,
) -> Result<FilterValue, String> {
    let value = match kind {
        FieldKind::Tag => filter_value::Value::StringValue(text.to_owned()),
        FieldKind::Time => filter_value::Value::IntValue(parse_time(text, now_ns)?),
        FieldKind::Value if quoted => filter_value::Value::StringValue(text.to_owned()),
        FieldKind::Value => {
            if let Ok(number) = text.parse::<i64>() {
                filter_value::Value::IntValue(number)
            } else if let Ok(number) = text.parse::<f64>() {
                filter_value::Value::DoubleValue(number)
            } else if text == "true" || text == "false" {
                filter_value::Value::BoolValue(text == "true")
            } else {
                filter_value::Value::StringValue(text.to_owned())
            }
        }
    };
    Ok(FilterValue { value: Some(value) })
}

fn string_value(text: String) -> FilterValue {
    FilterValue {
        value: Some(filter_value::Value::StringValue(text)),
    }
}

/// Removes one pair of surrounding double quotes and reports whether
/// there were any. Inside quotes, `\"` stands for a quote and `\\` for a
/// backslash.
fn unquote(text: &str) -> (String, bool) {
    match text
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
    {
        Some(inner) if text.len() >= 2 => (inner.replace("\\\"", "\"").replace("\\\\", "\\"), true),
        _ => (text.to_owned(), false),
    }
}

/// Splits an `in` list at commas outside double quotes and unquotes each
/// item. Empty items are rejected.
fn split_list(text: &str) -> Result<Vec<(String, bool)>, String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if in_quotes => {
                current.push(c);
                if let Some(escaped) = chars.next() {
                    current.push(escaped);
                }
            }
            '"' => {
                in_quotes = !in_quotes;
                current.push(c);
            }
            ',' if !in_quotes => items.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if in_quotes {
        return Err("a quoted list item is not closed".to_owned());
    }
    items.push(current);

    let mut parsed = Vec::with_capacity(items.len());
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            return Err("the list after in has an empty item".to_owned());
        }
        parsed.push(unquote(item));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000_000;

    fn string(text: &str) -> FilterValue {
        FilterValue {
            value: Some(filter_value::Value::StringValue(text.to_owned())),
        }
    }

    fn int(number: i64) -> FilterValue {
        FilterValue {
            value: Some(filter_value::Value::IntValue(number)),
        }
    }

    fn double(number: f64) -> FilterValue {
        FilterValue {
            value: Some(filter_value::Value::DoubleValue(number)),
        }
    }

    fn boolean(flag: bool) -> FilterValue {
        FilterValue {
            value: Some(filter_value::Value::BoolValue(flag)),
        }
    }

    #[test]
    fn filter_operators() {
        let cases: &[(&str, &str, Operator, Vec<FilterValue>)] = &[
            ("tags.host=a", "tags.host", Operator::Eq, vec![string("a")]),
            ("tags.host==a", "tags.host", Operator::Eq, vec![string("a")]),
            ("tags.host!=a", "tags.host", Operator::Ne, vec![string("a")]),
            ("value>3", "value", Operator::Gt, vec![int(3)]),
            ("value>=3", "value", Operator::Gte, vec![int(3)]),
            ("value<3.5", "value", Operator::Lt, vec![double(3.5)]),
            ("value<=-1", "value", Operator::Lte, vec![int(-1)]),
            (
                "tags.host~^web-\\d+$",
                "tags.host",
                Operator::Regex,
                vec![string("^web-\\d+$")],
            ),
            (
                "tags.host like abc",
                "tags.host",
                Operator::Like,
                vec![string("abc")],
            ),
            (
                "tags.host LIKE abc",
                "tags.host",
                Operator::Like,
                vec![string("abc")],
            ),
            (
                "tags.host%abc",
                "tags.host",
                Operator::Like,
                vec![string("abc")],
            ),
            (
                "tags.host in a,b",
                "tags.host",
                Operator::In,
                vec![string("a"), string("b")],
            ),
            ("tags.host exists", "tags.host", Operator::Exists, vec![]),
            (
                "tags.host !exists",
                "tags.host",
                Operator::NotExists,
                vec![],
            ),
            ("tags.host EXISTS", "tags.host", Operator::Exists, vec![]),
        ];
        for (text, field, op, values) in cases {
            let filter = parse_filter(text, NOW).unwrap_or_else(|err| panic!("{text:?}: {err}"));
            assert_eq!(filter.field, *field, "field of {text:?}");
            assert_eq!(filter.op, *op as i32, "operator of {text:?}");
            assert_eq!(filter.values, *values, "values of {text:?}");
        }
    }

    #[test]
    fn filter_spacing_and_quotes() {
        let cases: &[(&str, Operator, Vec<FilterValue>)] = &[
            ("  value >= 3  ", Operator::Gte, vec![int(3)]),
            (
                "tags.dc in eu , us",
                Operator::In,
                vec![string("eu"), string("us")],
            ),
            ("tags.name=a b", Operator::Eq, vec![string("a b")]),
            ("tags.name=\"\"", Operator::Eq, vec![string("")]),
            (
                "tags.name=\"a \\\"b\\\"\"",
                Operator::Eq,
                vec![string("a \"b\"")],
            ),
            (
                "tags.dc in \"a,b\",c",
                Operator::In,
                vec![string("a,b"), string("c")],
            ),
        ];
        for (text, op, values) in cases {
            let filter = parse_filter(text, NOW).unwrap_or_else(|err| panic!("{text:?}: {err}"));
            assert_eq!(filter.op, *op as i32, "operator of {text:?}");
            assert_eq!(filter.values, *values, "values of {text:?}");
        }
    }

    #[test]
    fn filter_value_operand_types() {
        let cases: &[(&str, FilterValue)] = &[
            ("value=3", int(3)),
            ("value=3.0", double(3.0)),
            ("value=1e3", double(1000.0)),
            ("value=-1.5e-3", double(-0.0015)),
            ("value=true", boolean(true)),
            ("value=false", boolean(false)),
            ("value=ok", string("ok")),
            ("value=inf", double(f64::INFINITY)),
            ("value<-Infinity", double(f64::NEG_INFINITY)),
            ("value=\"inf\"", string("inf")),
            ("value=infinite", string("infinite")),
            ("value=\"3\"", string("3")),
            ("value~^o", string("^o")),
            ("tags.code=200", string("200")),
            ("tags.flag=true", string("true")),
        ];
        for (text, expected) in cases {
            let filter = parse_filter(text, NOW).unwrap_or_else(|err| panic!("{text:?}: {err}"));
            assert_eq!(filter.values, vec![expected.clone()], "operand of {text:?}");
        }

        // NaN is sent as a double, so the server rejects it with its reason.
        let filter = parse_filter("value=NaN", NOW).unwrap();
        let operand = &filter.values[0].value;
        assert!(
            matches!(operand, Some(filter_value::Value::DoubleValue(number)) if number.is_nan()),
            "operand {operand:?}"
        );
    }

    #[test]
    fn filter_time_operands() {
        let cases: &[(&str, Vec<FilterValue>)] = &[
            ("time>=1000", vec![int(1_000)]),
            (
                "time<2026-12-04T10:00:00Z",
                vec![int(1_796_378_400_000_000_000)],
            ),
            ("time>-1h", vec![int(NOW - 3_600_000_000_000)]),
            ("time in 1,2", vec![int(1), int(2)]),
        ];
        for (text, expected) in cases {
            let filter = parse_filter(text, NOW).unwrap_or_else(|err| panic!("{text:?}: {err}"));
            assert_eq!(filter.values, *expected, "operand of {text:?}");
        }
    }

    #[test]
    fn filter_rejected_forms() {
        let cases: &[(&str, &str)] = &[
            ("", "the field is missing"),
            ("=a", "the field is missing"),
            ("host=a", "unknown field \"host\""),
            ("tags.=a", "unknown field \"tags.\""),
            ("value", "the operator is missing"),
            ("value ?? 3", "unknown operator in \"?? 3\""),
            ("tags.host inx a", "unknown operator"),
            ("value>", "the value after the operator is missing"),
            ("value exists", "apply only to tags.<key>"),
            ("tags.host exists yes", "takes no value"),
            ("time~1", "not pattern operators"),
            ("time>yesterday", "invalid time \"yesterday\""),
            ("tags.dc in a,,b", "empty item"),
            ("tags.dc in", "empty item"),
            ("tags.dc in \"a,b", "not closed"),
            ("tags.host like", "the value after the operator is missing"),
            ("tags.host~", "the value after the operator is missing"),
        ];
        for (text, problem) in cases {
            let err = parse_filter(text, NOW).unwrap_err();
            assert!(err.contains(problem), "input {text:?}: {err}");
            assert!(
                err.contains(&format!("{text:?}")),
                "input {text:?} not named: {err}"
            );
            assert!(
                err.contains("FIELD OP VALUE"),
                "input {text:?}: forms missing: {err}"
            );
        }
    }

    #[test]
    fn filter_invalid_regex_named() {
        let err = parse_filter("tags.host~(", NOW).unwrap_err();
        assert!(err.contains("does not compile"), "{err}");
        assert!(err.contains("tags.host~("), "{err}");
    }
}
