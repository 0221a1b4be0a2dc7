//! Plain-text tables for the terminal (`bantin sources`, `bantin subscriptions`): the JSON
//! status the HTTP API serves, laid out in padded columns, so the CLI and the API never say
//! different things.

use serde_json::Value;

/// One JSON value as a cell: strings bare, `null` as `-`, anything else as JSON.
pub fn cell(x: &Value) -> String {
    match x {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The rows (the first is the header) in columns padded to their widest cell, two spaces
/// apart; the last column is not padded (it is the long free text, an error message).
pub fn render<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N.saturating_sub(1))
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        for (i, w) in widths.iter().enumerate() {
            out.push_str(&format!("{:<w$}  ", r[i], w = *w));
        }
        if let Some(last) = r.last() {
            out.push_str(last);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_to_the_widest_cell_and_the_last_is_free() {
        let rows = [
            ["id".to_string(), "state".into(), "error".into()],
            [
                "tay-ninh".into(),
                cell(&Value::Null),
                cell(&"a long one".into()),
            ],
            [cell(&serde_json::json!(7)), "ok".into(), "".into()],
        ];
        assert_eq!(
            render(&rows),
            "id        state  error\ntay-ninh  -      a long one\n7         ok     \n"
        );
    }
}
