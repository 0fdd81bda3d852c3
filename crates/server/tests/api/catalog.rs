use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn latte() -> Value {
    json!({
        "name_zh": "拿铁", "name_en": "Latte", "description": "双份浓缩与牛奶",
        "price": 2800, "currency": "CNY", "barcode": "6901234567892",
        "option_groups": [
            {"key": "size", "name_zh": "杯型", "name_en": "Size", "choice": "single", "required": true,
             "options": [{"key": "medium", "name_zh": "中杯", "price_delta": 0},
                         {"key": "large", "name_zh": "大杯", "price_delta": 300}]},
            {"key": "milk", "name_zh": "奶", "choice": "single",
             "options": [{"key": "oat", "name_zh": "燕麦奶", "price_delta": 400}]}
        ]
    })
}

/// A product in the shop's catalog; returns its id.
async fn product(app: &TestApp, token: &str, body: Value) -> String {
    let r = app.post("/v1/products", body, Some(token)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn menu(app: &TestApp, store: &str) -> Value {
    let r = app.get(&format!("/v1/stores/{store}/menu"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

fn menu_item<'a>(menu: &'a Value, id: &str) -> &'a Value {
    menu["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["products"].as_array().unwrap())
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("{id} on the menu: {menu}"))
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(width, height, |x, y| {
        image::Rgba([(x % 256) as u8, (y % 256) as u8, 120, 255])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test]
async fn a_manager_creates_lists_and_updates_products_in_categories() {
    let app = spawn_app().await;
    let shop = app.shop("Catalog Cafe").await;
    let cat = app
        .post(
            "/v1/categories",
            json!({"name_zh": "咖啡", "name_en": "Coffee", "position": 1}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(cat.status, StatusCode::CREATED, "{}", cat.body);
    let cat_id = cat.body["id"].as_str().unwrap();
    assert!(cat_id.starts_with("cat_"));
    let mut body = latte();
    body["category_id"] = json!(cat_id);
    let r = app.post("/v1/products", body, Some(&shop.owner)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("prd_"));
    assert_eq!(r.body["price"], 2800);
    assert_eq!(r.body["option_groups"][0]["options"][1]["price_delta"], 300);
    assert_eq!(r.body["barcode"], "6901234567892");
    let americano = product(
        &app,
        &shop.owner,
        json!({"name_zh": "美式咖啡", "price": 2200, "category_id": cat_id}),
    )
    .await;

    let page = app.get("/v1/products?limit=1", Some(&shop.owner)).await;
    assert_eq!(page.body["data"][0]["id"], americano.as_str());
    assert_eq!(page.body["has_more"], true);
    let next = app
        .get(
            &format!("/v1/products?limit=1&starting_after={americano}"),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(next.body["data"][0]["id"], id.as_str());
    assert_eq!(next.body["has_more"], false);
    let cats = app.get("/v1/categories", Some(&shop.owner)).await;
    assert_eq!(cats.body["data"][0]["name_zh"], "咖啡");

    let r = app
        .patch(
            &format!("/v1/products/{id}"),
            json!({"price": 3000, "name_en": null, "barcode": "036000291452"}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["price"], 3000);
    assert_eq!(r.body["name_en"], Value::Null);
    assert_eq!(r.body["name_zh"], "拿铁");
    assert_eq!(r.body["barcode"], "0036000291452");
    let got = app
        .get(&format!("/v1/products/{id}"), Some(&shop.owner))
        .await;
    assert_eq!(got.body["price"], 3000);

    let found = app
        .get(
            &format!("/v1/stores/{}/products/by-barcode/036000291452", shop.store),
            None,
        )
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(found.body["id"], id.as_str());
}

#[tokio::test]
async fn a_retried_product_creation_with_the_same_key_makes_one_product() {
    let app = spawn_app().await;
    let shop = app.shop("Idem Cafe").await;
    let a = app
        .post_idem("/v1/products", latte(), Some(&shop.owner), "k-1")
        .await;
    let b = app
        .post_idem("/v1/products", latte(), Some(&shop.owner), "k-1")
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.body, b.body);
    assert_eq!(app.count("catalog_products").await, 1);
    let c = app
        .post_idem(
            "/v1/products",
            json!({"name_zh": "茶", "price": 1}),
            Some(&shop.owner),
            "k-1",
        )
        .await;
    assert_eq!(c.code(), "idempotency_key_reused");
}

#[tokio::test]
async fn store_overrides_change_the_menu_price_and_sold_out_items_are_marked() {
    let app = spawn_app().await;
    let shop = app.shop("Override Cafe").await;
    let id = product(&app, &shop.owner, latte()).await;
    let m = menu(&app, &shop.store).await;
    let item = menu_item(&m, &id);
    assert_eq!(item["price"], 2800);
    assert_eq!(item["price_major"], "28.00");
    assert_eq!(item["sold_out"], false);

    let put = |body: Value| {
        let app = &app;
        let path = format!("/v1/stores/{}/products/{id}", shop.store);
        let token = shop.owner.clone();
        async move {
            app.send(
                app.client
                    .put(app.url(&path))
                    .bearer_auth(token)
                    .json(&body),
            )
            .await
        }
    };
    let r = put(json!({"price": 2600, "stock": 5})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["sold_out"], false);
    let m = menu(&app, &shop.store).await;
    assert_eq!(menu_item(&m, &id)["price"], 2600);
    assert_eq!(menu_item(&m, &id)["stock"], 5);

    let r = put(json!({"price": 2600, "stock": 0})).await;
    assert_eq!(r.body["sold_out"], true);
    let m = menu(&app, &shop.store).await;
    assert_eq!(menu_item(&m, &id)["sold_out"], true);

    let r = put(json!({"available": false})).await;
    assert_eq!(r.body["sold_out"], true);
    let m = menu(&app, &shop.store).await;
    assert_eq!(menu_item(&m, &id)["sold_out"], true);
    assert_eq!(menu_item(&m, &id)["price"], 2800);
    let quote = app
        .post(
            &format!("/v1/stores/{}/quote", shop.store),
            json!({"product_id": id, "options": {"size": ["large"]}}),
            None,
        )
        .await;
    assert_eq!(quote.status, StatusCode::CONFLICT, "{}", quote.body);
    assert_eq!(quote.code(), "product_sold_out");

    let r = put(json!({})).await;
    assert_eq!(r.body["sold_out"], false);
    let quote = app
        .post(
            &format!("/v1/stores/{}/quote", shop.store),
            json!({"product_id": id, "options": {"size": ["large"], "milk": ["oat"]}}),
            None,
        )
        .await;
    assert_eq!(quote.status, StatusCode::OK, "{}", quote.body);
    assert_eq!(quote.body["unit_price"], 2800 + 300 + 400);
    let bad = app
        .post(
            &format!("/v1/stores/{}/quote", shop.store),
            json!({"product_id": id, "options": {"size": ["large"], "spice": ["hot"]}}),
            None,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.code(), "unknown_option_group");
}

#[tokio::test]
async fn a_price_change_shows_on_the_cached_menu_at_once_and_on_another_node_soon() {
    let app = spawn_app().await;
    let shop = app.shop("Cache Cafe").await;
    let id = product(&app, &shop.owner, latte()).await;
    let other = app.second_node().await;
    // Both nodes have the menu cached.
    assert_eq!(
        menu_item(&menu(&app, &shop.store).await, &id)["price"],
        2800
    );
    assert_eq!(
        menu_item(&menu(&other, &shop.store).await, &id)["price"],
        2800
    );
    let first = app
        .get(&format!("/v1/stores/{}/menu", shop.store), None)
        .await;
    let etag = first.headers["etag"].to_str().unwrap().to_owned();
    let not_modified = app
        .send(
            app.client
                .get(app.url(&format!("/v1/stores/{}/menu", shop.store)))
                .header("if-none-match", &etag),
        )
        .await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
    // A client that accepts gzip gets the same menu compressed, under a tag of its own that
    // answers 304 while the menu is unchanged; a client refusing gzip gets plain JSON.
    let url = app.url(&format!("/v1/stores/{}/menu", shop.store));
    let gz = app
        .client
        .get(&url)
        .header("accept-encoding", "gzip, deflate, br")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.status(), StatusCode::OK);
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert_eq!(gz.headers()["vary"], "accept-encoding");
    let gz_etag = gz.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(gz_etag, etag);
    let bytes = gz.bytes().await.unwrap();
    let mut plain = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut plain)
        .unwrap();
    assert!(
        bytes.len() < plain.len(),
        "{} ≥ {}",
        bytes.len(),
        plain.len()
    );
    assert_eq!(serde_json::from_str::<Value>(&plain).unwrap(), first.body);
    let refused = app
        .client
        .get(&url)
        .header("accept-encoding", "gzip;q=0, identity")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::OK);
    assert!(refused.headers().get("content-encoding").is_none());
    assert_eq!(refused.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(refused.headers()["vary"], "accept-encoding");
    // `*` covers gzip only when gzip is not named.
    for (accept, compressed) in [("*", true), ("gzip;Q=0, *", false), ("br", false)] {
        let r = app
            .client
            .get(&url)
            .header("accept-encoding", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.headers().get("content-encoding").is_some(),
            compressed,
            "{accept}"
        );
    }
    let unchanged = app
        .client
        .get(&url)
        .header("accept-encoding", "gzip")
        .header("if-none-match", &gz_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);

    let r = app
        .patch(
            &format!("/v1/products/{id}"),
            json!({"price": 3100}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The node that made the change shows it on the very next read.
    assert_eq!(
        menu_item(&menu(&app, &shop.store).await, &id)["price"],
        3100
    );
    // Another node notices the new catalog version within its recheck window.
    tokio::time::sleep(std::time::Duration::from_millis(
        o2o_server::catalog::cache::RECHECK_MS + 200,
    ))
    .await;
    assert_eq!(
        menu_item(&menu(&other, &shop.store).await, &id)["price"],
        3100
    );
    other.stop().await;
}

#[tokio::test]
async fn a_real_png_becomes_photos_and_a_text_file_named_png_is_refused() {
    let app = spawn_app().await;
    let shop = app.shop("Photo Cafe").await;
    let id = product(&app, &shop.owner, latte()).await;
    let upload = |bytes: Vec<u8>| {
        let app = &app;
        let path = format!("/v1/products/{id}/photo");
        let token = shop.owner.clone();
        async move {
            app.send(
                app.client
                    .post(app.url(&path))
                    .bearer_auth(token)
                    .header("content-type", "image/png")
                    .body(bytes),
            )
            .await
        }
    };
    let r = upload(b"this is a text file renamed latte.png\n".to_vec()).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.body);
    assert_eq!(r.code(), "unsupported_image_type");
    // A PNG signature with garbage after it is not an image either.
    let mut broken = png(10, 10);
    broken.truncate(30);
    let r = upload(broken).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), "invalid_image");
    assert_eq!(app.count("catalog_photos").await, 0);
    let r = upload(vec![0u8; 6 * 1024 * 1024]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);

    let r = upload(png(900, 600)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let small = r.body["photo"]["small"].as_str().unwrap().to_owned();
    let large = r.body["photo"]["large"].as_str().unwrap().to_owned();
    assert_eq!(app.count("catalog_photos").await, 2);
    let m = menu(&app, &shop.store).await;
    assert_eq!(menu_item(&m, &id)["photo"]["small"], small.as_str());

    for (url, width) in [(&small, 160), (&large, 480)] {
        let res = app.client.get(app.url(url)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "image/jpeg");
        assert!(
            res.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("max-age")
        );
        let etag = res.headers()["etag"].to_str().unwrap().to_owned();
        let bytes = res.bytes().await.unwrap();
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!(img.width(), width);
        assert_eq!(img.height(), width * 2 / 3);
        let again = app
            .client
            .get(app.url(url))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }
}

#[tokio::test]
async fn another_merchants_products_stores_and_categories_are_not_found() {
    let app = spawn_app().await;
    let a = app.shop("Tenant A").await;
    let b = app.shop("Tenant B").await;
    let id = product(&app, &a.owner, latte()).await;
    let cat = app
        .post("/v1/categories", json!({"name_en": "Tea"}), Some(&a.owner))
        .await;
    let cat_id = cat.body["id"].as_str().unwrap();

    let r = app.get(&format!("/v1/products/{id}"), Some(&b.owner)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .patch(
            &format!("/v1/products/{id}"),
            json!({"price": 1}),
            Some(&b.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "product_not_found");
    // B cannot put A's product on B's store, nor its own product on A's store.
    let own = product(&app, &b.owner, json!({"name_en": "Tea", "price": 900})).await;
    for (store, prd) in [(&b.store, &id), (&a.store, &own)] {
        let r = app
            .send(
                app.client
                    .put(app.url(&format!("/v1/stores/{store}/products/{prd}")))
                    .bearer_auth(&b.owner)
                    .json(&json!({"available": false})),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    }
    let r = app
        .post(
            "/v1/products",
            json!({"name_en": "Tea", "price": 900, "category_id": cat_id}),
            Some(&b.owner),
        )
        .await;
    assert_eq!(r.code(), "category_not_found");
    let r = app
        .post(
            &format!("/v1/products/{id}/photo"),
            json!({}),
            Some(&b.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let list = app.get("/v1/products", Some(&b.owner)).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    // A's menu does not list B's product, and A's barcode is not found at B's store.
    let m = menu(&app, &a.store).await;
    assert!(!m.to_string().contains(&own));
    let r = app
        .get(
            &format!("/v1/stores/{}/products/by-barcode/6901234567892", b.store),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A cashier cannot edit the catalog.
    let r = app.post("/v1/products", latte(), Some(&a.cashier)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bad_product_input_is_refused_with_its_code_and_nothing_is_written() {
    let app = spawn_app().await;
    let shop = app.shop("Bad Input Cafe").await;
    let long = "咖".repeat(81);
    let cases: Vec<(Value, &str, StatusCode)> = vec![
        (
            json!({"name_zh": "拿铁", "price": -1}),
            "price_negative",
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name_zh": "拿铁", "price": 1_000_000_000_000i64}),
            "price_too_high",
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name_zh": "拿铁", "price": "28"}),
            "invalid_type",
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name_zh": long, "price": 100}),
            "name_too_long",
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"price": 100}),
            "name_required",
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name_zh": "拿铁", "price": 100, "barcode": "6901234567891"}),
            "invalid_barcode",
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name_zh": "拿铁", "price": 100, "barcode": "12ab"}),
            "invalid_barcode",
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name_zh": "拿铁", "price": 100, "currency": "XYZ"}),
            "currency_unknown",
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name_zh": "拿铁", "price": 100, "colour": "red"}),
            "unknown_field",
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name_zh": "拿铁", "price": 100, "option_groups": [{"key": "size", "name_zh": "杯型", "choice": "several", "options": []}]}),
            "invalid_enum_value",
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name_zh": "拿铁", "price": 100, "option_groups": [{"key": "size", "name_zh": "杯型", "choice": "single",
            "options": [{"key": "small", "name_zh": "小杯", "price_delta": -100}]}]}),
            "price_negative",
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name_zh": "拿铁", "price": 100, "option_groups": [{"key": "size", "name_zh": "杯型", "choice": "single", "options": []}]}),
            "invalid_options",
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name_zh": "拿铁", "price": 100, "category_id": "cat_nothing"}),
            "category_not_found",
            StatusCode::NOT_FOUND,
        ),
    ];
    for (body, code, status) in cases {
        let r = app
            .post("/v1/products", body.clone(), Some(&shop.owner))
            .await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert_eq!(r.code(), code, "{body}");
    }
    assert_eq!(app.count("catalog_products").await, 0);

    let id = product(&app, &shop.owner, latte()).await;
    let r = app
        .post(
            "/v1/products",
            json!({"name_zh": "另一个", "price": 100, "barcode": "6901234567892"}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "barcode_taken");
    let r = app
        .patch(
            &format!("/v1/products/{id}"),
            json!({"price": -5}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.code(), "price_negative");
    let put = app
        .send(
            app.client
                .put(app.url(&format!("/v1/stores/{}/products/{id}", shop.store)))
                .bearer_auth(&shop.owner)
                .json(&json!({"stock": -1})),
        )
        .await;
    assert_eq!(put.status, StatusCode::BAD_REQUEST);
    assert_eq!(put.code(), "stock_out_of_range");
    assert_eq!(app.count("catalog_store_products").await, 0);
    let r = app
        .get(
            &format!("/v1/stores/{}/products/by-barcode/123", shop.store),
            None,
        )
        .await;
    assert_eq!(r.code(), "invalid_barcode");
    let r = app.get("/v1/stores/sto_nothing/menu", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let got = app
        .get(&format!("/v1/products/{id}"), Some(&shop.owner))
        .await;
    assert_eq!(got.body["price"], 2800);
}

#[tokio::test]
async fn a_table_code_landing_shows_the_stores_menu() {
    let app = spawn_app().await;
    let shop = app.shop("Landing Cafe").await;
    let id = product(&app, &shop.owner, latte()).await;
    let sold = product(&app, &shop.owner, json!({"name_zh": "可颂", "price": 1500})).await;
    let r = app
        .send(
            app.client
                .put(app.url(&format!("/v1/stores/{}/products/{sold}", shop.store)))
                .bearer_auth(&shop.owner)
                .json(&json!({"stock": 0})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let table = app
        .post(
            &format!("/v1/stores/{}/tables", shop.store),
            json!({"label": "A1"}),
            Some(&shop.owner),
        )
        .await;
    let code = app
        .post(
            "/v1/qr-codes",
            json!({"kind": "table", "store_id": shop.store, "table_id": table.body["id"]}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(code.status, StatusCode::CREATED, "{}", code.body);
    let html = app
        .client
        .get(code.body["url"].as_str().unwrap())
        .header("accept-language", "zh-CN")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("拿铁"), "{html}");
    assert!(html.contains("¥28.00"));
    assert!(html.contains(&id));
    assert!(html.contains("已售罄"));
    let store_page = app
        .client
        .get(app.url(&format!("/stores/{}", shop.store)))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(store_page.contains("Latte") && store_page.contains("Sold out"));
}
