//! Query parameters from JSON (HTTP) and from `--param k=v` (CLI).

use feed_engine::{ParamValue, Params};

/// A JSON value as a parameter; objects and nulls are refused.
pub fn from_json(name: &str, v: &serde_json::Value) -> Result<ParamValue, String> {
    Ok(match v {
        serde_json::Value::String(s) => ParamValue::Str(s.clone()),
        serde_json::Value::Number(n) => ParamValue::Num(
            n.as_f64()
                .ok_or_else(|| format!("${name} is not a finite number"))?,
        ),
        serde_json::Value::Bool(b) => ParamValue::Bool(*b),
        serde_json::Value::Array(items) => ParamValue::List(
            items
                .iter()
                .map(|i| from_json(name, i))
                .collect::<Result<_, _>>()?,
        ),
        serde_json::Value::Null => {
            return Err(format!("${name} is null; leave it out or give a value"))
        }
        serde_json::Value::Object(_) => {
            return Err(format!(
                "${name} is an object; parameters are strings, numbers, booleans or lists"
            ))
        }
    })
}

/// The `params` of a request body; an error names the parameter at fault.
pub fn from_json_object(
    map: &serde_json::Map<String, serde_json::Value>,
) -> Result<Params, feed_engine::Error> {
    map.iter()
        .map(|(k, v)| {
            let name = k.trim_start_matches('$');
            let value = from_json(name, v)
                .map_err(|m| feed_engine::Error::invalid(format!("${name}"), m))?;
            Ok((name.to_string(), value))
        })
        .collect()
}

/// `name=value`: true/false and JSON lists are typed; a number only when it reads back the
/// same (`196`, `0.5`), so that ids like `007`, `1e3` or 20-digit numbers stay text; anything
/// else is text.
pub fn from_cli(arg: &str) -> Result<(String, ParamValue), String> {
    let (name, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("`{arg}` is not name=value"))?;
    let name = name.trim().trim_start_matches('$').to_string();
    let plain_number = value
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && n.to_string() == value && value.len() <= 15);
    let parsed = match (
        plain_number,
        serde_json::from_str::<serde_json::Value>(value),
    ) {
        (Some(n), _) => ParamValue::Num(n),
        (None, Ok(v @ (serde_json::Value::Bool(_) | serde_json::Value::Array(_)))) => {
            from_json(&name, &v)?
        }
        _ => ParamValue::Str(value.to_string()),
    };
    Ok((name, parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_values() {
        assert_eq!(from_cli("user_id=196").unwrap().1, ParamValue::Num(196.0));
        assert_eq!(
            from_cli("$name=Drama").unwrap(),
            ("name".into(), ParamValue::Str("Drama".into()))
        );
        assert_eq!(from_cli("ok=true").unwrap().1, ParamValue::Bool(true));
        assert_eq!(
            from_cli("ids=[\"a\",\"b\"]").unwrap().1,
            ParamValue::List(vec![
                ParamValue::Str("a".into()),
                ParamValue::Str("b".into())
            ])
        );
        assert!(from_cli("novalue").is_err());
        assert_eq!(from_cli("id=007").unwrap().1, ParamValue::Str("007".into()));
        assert_eq!(from_cli("id=1e3").unwrap().1, ParamValue::Str("1e3".into()));
        let long = "12345678901234567890";
        assert_eq!(
            from_cli(&format!("id={long}")).unwrap().1,
            ParamValue::Str(long.into())
        );
        assert_eq!(from_cli("w=0.5").unwrap().1, ParamValue::Num(0.5));
    }
}
