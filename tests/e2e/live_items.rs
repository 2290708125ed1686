//! Live catalog changes: a value set through `POST /models/{name}/items` is what the next
//! query's filter reads, a deleted item is never served, and an item added with features is
//! placed by the two-tower item tower and retrieved before any retraining.

use serde_json::{json, Value};

use crate::server_support::start;
use crate::support::*;

/// Synthetic data with `in_stock` and `price` columns; a model that filters on them and a
/// two-tower policy that places items by genre.
fn setup(ws: &Workspace) -> std::path::PathBuf {
    let data = ws.path("data");
    Synth::small().write(&data);
    let items = data.join("items.csv");
    let csv: String = std::fs::read_to_string(&items)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(k, line)| {
            if k == 0 {
                format!("{line},in_stock,price\n")
            } else {
                format!("{line},true,{}.5\n", 10 + k % 7)
            }
        })
        .collect();
    std::fs::write(&items, csv).unwrap();
    ws.write(
        "model.yaml",
        "model: {name: shop}\n\
         connectors:\n  - {id: ratings, type: file, path: data/ratings.csv}\n  - {id: items, type: file, path: data/items.csv}\n\
         fetch:\n  events: SELECT user_id, item_id, timestamp FROM ratings\n  items: SELECT item_id, title, genre, year, in_stock, price FROM items\n\
         policies:\n  - {name: popular, type: popular}\n  - name: two_tower\n    type: two_tower\n    hidden: 32\n    item_features: [genre]\n    batch_size: 256\n    epochs: 8\n\
         training: {seed: 7}\n",
    )
}

fn post_items(addr: &str, body: &Value) -> (u16, Value) {
    http(addr, "POST", "/models/shop/items", Some(&body.to_string()))
}

fn ids(addr: &str, query: &str, user: &str) -> Vec<String> {
    crate::live::ids(addr, "shop", query, user)
}

#[test]
fn item_changes_apply_to_the_next_query_and_an_added_item_is_retrieved() {
    let ws = Workspace::new();
    let file = setup(&ws);
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let server = start(&ws);
    let addr = &server.addr;
    let in_stock = "SELECT * FROM popular(limit = 300) WHERE item.in_stock LIMIT 10";

    // Out of stock: gone from the filtered query as soon as the change is acknowledged.
    let before = ids(addr, in_stock, "u1");
    let (status, r) = post_items(
        addr,
        &json!([{"item_id": before[0], "attributes": {"in_stock": false}}]),
    );
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        (r["updated"].clone(), r["added"].clone()),
        (json!(1), json!(0)),
        "{r}"
    );
    let after = ids(addr, in_stock, "u1");
    assert!(
        !after.contains(&before[0]),
        "{} still served: {after:?}",
        before[0]
    );
    assert_eq!(after[..9], before[1..], "the rest keep their order");

    // A price: the filter reads the new value; other columns keep theirs.
    let cheap = "SELECT * FROM popular(limit = 300) WHERE item.price < 5 LIMIT 10";
    assert!(ids(addr, cheap, "u1").is_empty());
    assert_eq!(
        post_items(
            addr,
            &json!({"item_id": before[5], "attributes": {"price": 2.5}})
        )
        .0,
        200
    );
    assert_eq!(ids(addr, cheap, "u1"), vec![before[5].clone()]);
    assert!(ids(addr, in_stock, "u1").contains(&before[5]));

    // Deleted: never served, by any retriever or by rank.
    let (status, r) = post_items(addr, &json!({"item_id": before[1], "delete": true}));
    assert_eq!((status, r["deleted"].clone()), (200, json!(1)), "{r}");
    let all = "SELECT * FROM popular(limit = 300) LIMIT 300";
    assert!(!ids(addr, all, "u1").contains(&before[1]));
    let pinned = format!(
        "SELECT * FROM popular(limit = 20) REORDER BY pin(ids = ['{}'], positions = [1]) LIMIT 10",
        before[1]
    );
    assert!(!ids(addr, &pinned, "u1").contains(&before[1]));
    let ranked = crate::live::rank(addr, "shop", "newcomer-without-events", 300);
    assert!(
        !ranked["ids"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| *i == before[1]),
        "{ranked}"
    );

    // An added item with features: the item tower places it among its genre, so users of that
    // genre's group find it much nearer the top than others do. (Synth: item i is in group
    // i / 20 with genre g<group>; user u in group u % 10.)
    let (status, r) = post_items(
        addr,
        &json!([{"item_id": "fresh", "attributes": {"title": "Fresh", "genre": "g3", "year": 2026, "in_stock": true, "price": 3.5}}]),
    );
    assert_eq!((status, r["added"].clone()), (200, json!(1)), "{r}");
    let towers =
        "SELECT * FROM similarity(embedding = 'two_tower', user = $user_id, limit = 201) LIMIT 201";
    let place = |user: usize| -> usize {
        ids(addr, towers, &format!("u{user}"))
            .iter()
            .position(|i| i == "fresh")
            .expect("the added item is retrieved")
    };
    let mean = |group: usize| (0..10).map(|k| place(k * 10 + group)).sum::<usize>() / 10;
    let (own, other) = (mean(3), mean(6));
    assert!(
        own * 3 < other,
        "fresh ranks at {own} on average for group-3 users, {other} for group-6 users"
    );
    // Filters see it like any item.
    assert!(ids(addr, cheap, "u1").contains(&"fresh".to_string()));

    // Wrong batches: refused whole, naming the row and field; nothing of them applies.
    for (body, status, field) in [
        (
            json!([{"item_id": "i7", "attributes": {"price": 1}}, {"item_id": "i8", "attributes": {"colour": "red"}}]),
            422,
            "items[1].attributes.colour",
        ),
        (
            json!([{"item_id": "i7", "attributes": {"in_stock": "no"}}]),
            422,
            "items[0].attributes.in_stock",
        ),
        (
            json!([{"item_id": "i7", "delete": true, "attributes": {"price": 1}}]),
            422,
            "items[0].delete",
        ),
        (
            json!([{"attributes": {"price": 1}}]),
            422,
            "items[0].item_id",
        ),
    ] {
        let (got, r) = post_items(addr, &body);
        assert_eq!((got, r["field"].as_str()), (status, Some(field)), "{r}");
    }
    assert_eq!(ids(addr, cheap, "u1").len(), 2, "i7 was not changed");
    let (status, _) = http(addr, "POST", "/models/nope/items", Some("[]"));
    assert_eq!(status, 404);

    // From the CLI: written to the log, applied by the server at its next poll.
    let changes = ws.write(
        "changes.ndjson",
        &format!(
            "{{\"item_id\": \"{}\", \"attributes\": {{\"price\": 1}}}}\n",
            before[2]
        ),
    );
    let out = ws.ok(&[
        "items",
        "push",
        "--model-name",
        "shop",
        "--file",
        changes.to_str().unwrap(),
    ]);
    assert!(out.contains("1 item changes written"), "{out}");
    poll(
        std::time::Duration::from_secs(30),
        "the pushed price in the filter",
        || {
            let found = ids(addr, cheap, "u1");
            if found.contains(&before[2]) {
                Ok(())
            } else {
                Err(format!("{found:?}"))
            }
        },
    );
    // A one-shot query applies the log too.
    let out = ws.ok(&["query", "--model-name", "shop", "--query", cheap]);
    assert!(out.contains(&before[2]) && out.contains("fresh"), "{out}");
}
