//! No input makes the parser panic (or overflow its stack): random text, and random sequences of
//! FeedQL tokens, which reach much deeper into the grammar than random bytes do.
//!
//! CI runs 3000 cases per property. A long fuzz run:
//! `FEEDQL_FUZZ_CASES=3000000 cargo test --release -p feed-lang --test lang no_panic`.

use proptest::prelude::*;

const TOKENS: &[&str] = &[
    "SELECT",
    "*",
    "FROM",
    "WHERE",
    "ORDER",
    "BY",
    "REORDER",
    "LIMIT",
    "OFFSET",
    "AND",
    "OR",
    "NOT",
    "IN",
    "BETWEEN",
    "LIKE",
    "IS",
    "NULL",
    "TRUE",
    "score",
    "(",
    ")",
    "[",
    "]",
    ",",
    "=",
    "<",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "^",
    ".",
    "item",
    "year",
    "popular",
    "similarity",
    "diversity",
    "seen",
    "truncate",
    "contains",
    "$user_id",
    "'x'",
    "''",
    "1",
    "0.5",
    "-3",
    "value_model",
    "limit",
    "name",
    "--c\n",
    ";",
    "'",
    "$",
    "é",
    "\n",
];

fn cases() -> u32 {
    std::env::var("FEEDQL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

fn tokens() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(TOKENS), 0..40).prop_map(|t| t.join(" "))
}

fn check(text: &str) {
    let _ = feed_lang::parse(text);
    let _ = feed_lang::parse_score(text);
    if let Err(e) = feed_lang::parse(text) {
        let _ = e.render(text);
        let _ = e.one_line(text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        check(&text);
    }

    #[test]
    fn random_token_sequences_never_panic(text in tokens()) {
        check(&text);
    }

    #[test]
    fn queries_with_a_valid_prefix_never_panic(tail in tokens()) {
        check(&format!("SELECT * FROM popular(limit = 10) WHERE {tail}"));
    }
}

#[test]
fn deep_nesting_is_refused_not_crashed() {
    for text in [
        format!(
            "SELECT * WHERE {}1{}",
            "(".repeat(100_000),
            ")".repeat(100_000)
        ),
        format!("SELECT * WHERE {}item.x", "NOT ".repeat(10_000)),
        format!("SELECT * ORDER BY score({}1)", "2^".repeat(10_000)),
        format!("SELECT * ORDER BY score({}1)", "- ".repeat(8_000)),
        format!("SELECT * ORDER BY score({}1)", "1 + ".repeat(4_000)),
        format!("SELECT * WHERE {}", vec!["item.a = 1"; 2_000].join(" AND ")),
        "x".repeat(1 << 20),
    ] {
        let e = feed_lang::parse(&text).unwrap_err();
        assert_eq!(e.kind, feed_lang::ErrorKind::Limit, "{}", e.render(&text));
        let _ = e.render(&text);
    }
}

#[test]
fn words_and_strings_do_not_count_as_operators() {
    let names: Vec<String> = (0..100)
        .map(|i| format!("contains(item.notes, 'Nottingham {i} or not')"))
        .collect();
    let text = format!("SELECT * WHERE {}", names.join(" OR "));
    assert!(feed_lang::parse(&text).is_ok());
}
