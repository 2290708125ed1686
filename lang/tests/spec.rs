//! Every example of `spec/feedql.md`: `feedql` blocks parse and pass the checks, `feedql-error`
//! blocks fail, and the rendered error shown in the spec is what the parser prints.

#[test]
fn spec_examples() {
    let path = format!(
        "{}/../spec/feedql.md",
        std::env::var("CARGO_MANIFEST_DIR").unwrap()
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut blocks: Vec<(String, String)> = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(tag)) => current = Some((tag.trim().to_string(), String::new())),
            (Some(_), Some(_)) => blocks.push(current.take().unwrap()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    let (mut ok, mut bad) = (0, 0);
    let mut last_error: Option<String> = None;
    for (tag, body) in &blocks {
        match tag.as_str() {
            "feedql" => {
                if let Err(e) = feed_lang::parse(body) {
                    panic!("spec example does not parse:\n{body}\n{}", e.render(body));
                }
                ok += 1;
            }
            "feedql-error" => {
                let e = feed_lang::parse(body).expect_err(body);
                last_error = Some(e.render(body));
                bad += 1;
            }
            "text" => {
                if let Some(rendered) = last_error.take() {
                    assert_eq!(
                        rendered.trim_end(),
                        body.trim_end(),
                        "the spec shows a stale error rendering"
                    );
                }
            }
            _ => {}
        }
    }
    assert!(
        ok >= 8 && bad >= 3,
        "{ok} examples and {bad} error examples found"
    );
}
