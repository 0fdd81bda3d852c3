use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

fn store_body(mid: &str) -> serde_json::Value {
    json!({
        "merchant_id": mid, "name": "静安寺店", "address": "南京西路 1601 号", "lat": 31.2237, "lng": 121.4453,
        "timezone": "Asia/Shanghai", "opening_hours": "Mo-Fr 07:30-22:00; Sa,Su 08:00-23:00"
    })
}

#[tokio::test]
async fn a_manager_opens_a_store_with_hours_and_defaults() {
    let app = spawn_app().await;
    let (mid, owner) = app.merchant("Store Cafe").await;
    let r = app.post("/v1/stores", store_body(&mid), Some(&owner)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body["id"].as_str().unwrap().starts_with("sto_"));
    assert_eq!(r.body["delivery_radius_m"], 3000);
    assert_eq!(r.body["fence_radius_m"], 200);
    assert_eq!(r.body["merchant"]["name"], "Store Cafe");
    assert!(r.body["open_now"].is_boolean());
    let fetched = app
        .get(
            &format!("/v1/stores/{}", r.body["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(fetched.body["name"], "静安寺店");
}

#[tokio::test]
async fn bad_store_fields_are_rejected_with_their_code_and_nothing_is_written() {
    let app = spawn_app().await;
    let (mid, owner) = app.merchant("Bad Store").await;
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        ("lat", json!(91.0), "invalid_coordinates"),
        ("lng", json!(-181.0), "invalid_coordinates"),
        ("lat", json!("north"), "invalid_type"),
        ("timezone", json!("Mars/Base"), "invalid_timezone"),
        (
            "opening_hours",
            json!("whenever we like"),
            "invalid_opening_hours",
        ),
        ("delivery_radius_m", json!(-5), "radius_out_of_range"),
        ("fence_radius_m", json!(1_000_000), "radius_out_of_range"),
        ("name", json!(""), "invalid_name"),
        ("color", json!("red"), "unknown_field"),
    ];
    for (field, value, code) in cases {
        let mut body = store_body(&mid);
        body[field] = value;
        let r = app.post("/v1/stores", body, Some(&owner)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}: {}", r.body);
        assert_eq!(r.code(), code, "{field}");
        assert_eq!(r.body["error"]["param"], field, "{field}");
    }
    assert_eq!(app.count("stores").await, 0);
}

#[tokio::test]
async fn discovery_lists_the_nearest_stores_first_with_their_distance() {
    let app = spawn_app().await;
    let (mid, owner) = app.merchant("Near Cafe").await;
    let bund = app.store(&mid, &owner, "Bund", 31.2400, 121.4900).await;
    let jingan = app.store(&mid, &owner, "Jing'an", 31.2237, 121.4453).await;
    let _far = app.store(&mid, &owner, "Hangzhou", 30.2741, 120.1551).await;
    let r = app
        .get("/v1/stores?near=31.2304,121.4737&radius_m=10000", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let data = r.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "Hangzhou is outside 10 km");
    assert_eq!(data[0]["id"], bund.as_str());
    assert_eq!(data[1]["id"], jingan.as_str());
    let d0 = data[0]["distance_m"].as_u64().unwrap();
    let d1 = data[1]["distance_m"].as_u64().unwrap();
    assert!(
        (1_700..2_100).contains(&d0),
        "People's Square to the Bund is about 1.9 km, got {d0}"
    );
    assert!(d0 < d1);
    assert_eq!(data[0]["open_now"], true);
    let limited = app
        .get(
            "/v1/stores?near=31.2304,121.4737&radius_m=10000&limit=1",
            None,
        )
        .await;
    assert_eq!(limited.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(limited.body["has_more"], true);
}

#[tokio::test]
async fn discovery_rejects_bad_points_and_radii() {
    let app = spawn_app().await;
    for (q, code) in [
        ("", "near_required"),
        ("?near=abc", "invalid_coordinates"),
        ("?near=95,10", "invalid_coordinates"),
        ("?near=31,121&radius_m=0", "radius_out_of_range"),
        ("?near=31,121&radius_m=999999", "radius_out_of_range"),
        ("?near=31,121&radius_m=-3", "invalid_query"),
        ("?near=31,121&limit=1000", "limit_out_of_range"),
        ("?near=31,121&bogus=1", "invalid_query"),
    ] {
        let r = app.get(&format!("/v1/stores{q}"), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.body);
        assert_eq!(r.code(), code, "{q}");
    }
}

#[tokio::test]
async fn tables_are_added_with_unique_labels() {
    let app = spawn_app().await;
    let (mid, owner) = app.merchant("Table Cafe").await;
    let store = app.store(&mid, &owner, "T", 31.2, 121.4).await;
    let path = format!("/v1/stores/{store}/tables");
    let a1 = app.post(&path, json!({"label": "A1"}), Some(&owner)).await;
    assert_eq!(a1.status, StatusCode::CREATED, "{}", a1.body);
    assert!(a1.body["id"].as_str().unwrap().starts_with("tbl_"));
    app.post(&path, json!({"label": "窗边 3"}), Some(&owner))
        .await;
    let dup = app.post(&path, json!({"label": "A1"}), Some(&owner)).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.code(), "table_label_taken");
    let list = app.get(&path, Some(&owner)).await;
    let labels: Vec<&str> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, vec!["A1", "窗边 3"]);
    // One key, the same body, another store: a reused key, not the first store's table.
    let other = app.store(&mid, &owner, "T2", 31.2, 121.4).await;
    let body = json!({"label": "B1"});
    let r = app
        .post_idem(&path, body.clone(), Some(&owner), "table-key-1")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let again = app
        .post_idem(&path, body.clone(), Some(&owner), "table-key-1")
        .await;
    assert_eq!(again.body, r.body);
    let there = format!("/v1/stores/{other}/tables");
    let r = app
        .post_idem(&there, body, Some(&owner), "table-key-1")
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "idempotency_key_reused");
    let list = app.get(&there, Some(&owner)).await;
    assert_eq!(
        list.body["data"].as_array().unwrap().len(),
        0,
        "{}",
        list.body
    );
}

#[tokio::test]
async fn a_store_is_edited_field_by_field() {
    let app = spawn_app().await;
    let (mid, owner) = app.merchant("Edit Cafe").await;
    let store = app.store(&mid, &owner, "Old", 31.2, 121.4).await;
    let r = app
        .patch(
            &format!("/v1/stores/{store}"),
            json!({"name": "New", "opening_hours": "Mo-Su 09:00-18:00"}),
            Some(&owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "New");
    assert_eq!(r.body["opening_hours"], "Mo-Su 09:00-18:00");
    assert_eq!(r.body["lat"], 31.2);
    let bad = app
        .patch(
            &format!("/v1/stores/{store}"),
            json!({"timezone": "Nowhere"}),
            Some(&owner),
        )
        .await;
    assert_eq!(bad.code(), "invalid_timezone");
    assert_eq!(
        app.get(&format!("/v1/stores/{store}"), None).await.body["timezone"],
        "Asia/Shanghai"
    );
}

#[tokio::test]
async fn a_cashier_cannot_open_stores() {
    let app = spawn_app().await;
    let (mid, owner) = app.merchant("Role Cafe").await;
    app.post(
        &format!("/v1/merchants/{mid}/staff"),
        json!({"email": "c@role.test", "password": "cashier-pass", "role": "cashier"}),
        Some(&owner),
    )
    .await;
    let cashier = app.password_token("c@role.test", "cashier-pass").await;
    let r = app
        .post("/v1/stores", store_body(&mid), Some(&cashier))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("stores").await, 0);
}

#[tokio::test]
async fn a_merchants_stores_are_paged_by_key() {
    let app = spawn_app().await;
    let (mid, owner) = app.merchant("Paged Cafe").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.store(&mid, &owner, &format!("S{i}"), 31.2, 121.4).await);
    }
    ids.reverse(); // newest first
    let p1 = app
        .get(&format!("/v1/merchants/{mid}/stores?limit=2"), Some(&owner))
        .await;
    assert_eq!(p1.body["has_more"], true);
    let got1: Vec<String> = p1.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got1, ids[..2]);
    let p2 = app
        .get(
            &format!(
                "/v1/merchants/{mid}/stores?limit=2&starting_after={}",
                got1[1]
            ),
            Some(&owner),
        )
        .await;
    let got2: Vec<String> = p2.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got2, ids[2..4]);
    let p3 = app
        .get(
            &format!(
                "/v1/merchants/{mid}/stores?limit=2&starting_after={}",
                got2[1]
            ),
            Some(&owner),
        )
        .await;
    assert_eq!(p3.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(p3.body["has_more"], false);
}
