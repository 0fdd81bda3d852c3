use crate::helpers::*;
use reqwest::StatusCode;

#[tokio::test]
async fn the_home_page_speaks_the_browsers_language_and_switches() {
    let app = spawn_app().await;
    let zh = app
        .client
        .get(app.url("/"))
        .header("accept-language", "zh-CN,zh;q=0.9")
        .send()
        .await
        .unwrap();
    let zh_html = zh.text().await.unwrap();
    assert!(zh_html.contains("附近门店"), "{zh_html}");
    assert!(zh_html.contains("lang=\"zh-CN\""));
    let en = app
        .client
        .get(app.url("/"))
        .header("accept-language", "en-US,en;q=0.9")
        .send()
        .await
        .unwrap();
    assert!(en.text().await.unwrap().contains("Stores near you"));
    let switch = app
        .client
        .get(app.url("/lang/en?next=/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(switch.status(), StatusCode::SEE_OTHER);
    assert_eq!(switch.headers()["location"], "/login");
    let cookies: Vec<&str> = switch
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        cookies.iter().any(|c| c.starts_with("lang=en")),
        "{cookies:?}"
    );
    let page = app
        .client
        .get(app.url("/login"))
        .header("accept-language", "zh-CN")
        .header("cookie", "lang=en")
        .send()
        .await
        .unwrap();
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Log in with your phone")
    );
}

#[tokio::test]
async fn switching_language_never_redirects_off_site() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/lang/en?next=//evil.example/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/");
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url("/console/signup"))
        .form(&[
            ("csrf", "forged-token-forged-token"),
            ("name", "Evil"),
            ("mode", "trading"),
            ("email", "e@evil.test"),
            ("password", "password-1"),
        ])
        .header("cookie", "o2o_csrf=another-token-entirely-1234")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("merchants").await, 0);
}

#[tokio::test]
async fn session_cookies_are_http_only_and_same_site() {
    let app = spawn_app().await;
    let page = app
        .client
        .get(app.url("/console/signup"))
        .send()
        .await
        .unwrap();
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let csrf = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("o2o_csrf=")
        .to_owned();
    let signup = |name: &'static str, mode: &'static str, email: &'static str| {
        app.client
            .post(app.url("/console/signup"))
            .header("cookie", format!("o2o_csrf={csrf}"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("name", name),
                ("mode", mode),
                ("email", email),
                ("password", "password-1"),
            ])
            .send()
    };
    // A mode the form does not offer is refused, and no merchant is made.
    for mode in ["bogus", ""] {
        let r = signup("Odd Cafe", mode, "o@odd.test").await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{mode}");
        assert_eq!(app.count("merchants").await, 0, "{mode}");
    }
    let r = signup("Good Cafe", "trading", "g@good.test").await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/console");
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("o2o_session="))
        .expect("session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    assert_eq!(app.count("merchants").await, 1);
}

#[tokio::test]
async fn a_cookie_session_cannot_change_state_through_the_api_without_the_csrf_header() {
    let app = spawn_app().await;
    let (mid, owner) = app.merchant("Cookie Cafe").await;
    let r = app
        .client
        .post(app.url("/v1/stores"))
        .header("cookie", format!("o2o_session={owner}"))
        .json(&serde_json::json!({"merchant_id": mid, "name": "X", "address": "x", "lat": 1.0, "lng": 1.0, "timezone": "Asia/Shanghai", "opening_hours": "24/7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("stores").await, 0);
}

#[tokio::test]
async fn an_unknown_page_is_a_friendly_404() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/no/such/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().contains("<html"));
    let r = app
        .client
        .get(app.url("/stores/sto_missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_console_login_opens_the_console_to_staff_only() {
    let app = spawn_app().await;
    let owner = format!("owner-{}@login.test", rand_suffix());
    let res = app
        .post(
            "/v1/merchants",
            serde_json::json!({"name": "Login Cafe", "mode": "trading", "owner": {"email": owner, "password": "secret-pass-1"}}),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let operator = format!("op-{}@login.test", rand_suffix());
    o2o_server::identity::service::add_operator(&app.state, &operator, "operator-pass")
        .await
        .unwrap();
    let login = |email: String, password: &'static str| {
        app.client
            .post(app.url("/console/login"))
            .header("cookie", format!("o2o_csrf={PAGE_CSRF}"))
            .header("accept-language", "en")
            .form(&[
                ("csrf", PAGE_CSRF),
                ("email", &email),
                ("password", password),
            ])
            .send()
    };
    // The owner is let in, with a session.
    let r = login(owner, "secret-pass-1").await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/console");
    assert!(
        r.headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("o2o_session=")),
        "{:?}",
        r.headers()
    );
    // An operator's right password opens no console: the page says why, and no session is
    // given or left behind.
    let (sessions, live) = (
        app.count("sessions").await,
        app.count("live_sessions").await,
    );
    let r = login(operator, "operator-pass").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        !r.headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("o2o_session=")),
        "{:?}",
        r.headers()
    );
    let html = r.text().await.unwrap();
    assert!(html.contains("The console is for a merchant"), "{html}");
    assert_eq!(app.count("sessions").await, sessions + 1);
    assert_eq!(app.count("live_sessions").await, live);
}

#[tokio::test]
async fn the_staff_page_names_roles_in_the_page_language_and_offers_its_form_to_those_who_may_add()
{
    let app = spawn_app().await;
    let shop = app.shop("Staff Cafe").await;
    let (status, html) = get_page(&app, "/console/staff", &shop.owner).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-test=\"staff-submit\""), "{html}");
    assert!(
        html.contains("<td data-role=\"cashier\">Cashier</td>"),
        "{html}"
    );
    assert!(
        html.contains("<td data-role=\"owner\">Owner</td>"),
        "{html}"
    );
    // A cashier adds no one, so the page offers no form.
    let (status, html) = get_page(&app, "/console/staff", &shop.cashier).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-test=\"staff-list\""), "{html}");
    assert!(!html.contains("data-test=\"staff-submit\""), "{html}");
    // In Chinese the roles are Chinese words, not the API's names; so is the console's greeting.
    for path in ["/console/staff", "/console"] {
        let (_, html) = get_page_with(&app, path, &page_cookies(&shop.owner), "zh-CN").await;
        assert!(html.contains("店主"), "{path}: {html}");
        assert!(
            !html.contains(">owner<") && !html.contains(": owner"),
            "{path}: {html}"
        );
    }
}

#[tokio::test]
async fn a_refused_console_form_is_said_in_the_pages_language() {
    let app = spawn_app().await;
    let (_mid, owner) = app.merchant("Words Cafe").await;
    let stores = app.count("stores").await;
    let send = |lang: &'static str, hours: &'static str, lat: &'static str| {
        app.client
            .post(app.url("/console/stores"))
            .header("cookie", page_cookies(&owner))
            .header("accept-language", lang)
            .form(&[
                ("csrf", PAGE_CSRF),
                ("name", "分店"),
                ("address", "人民路 1 号"),
                ("lat", lat),
                ("lng", "121.47"),
                ("timezone", "Asia/Shanghai"),
                ("opening_hours", hours),
                ("delivery_radius_m", "3000"),
                ("fence_radius_m", "200"),
            ])
            .send()
    };
    // (language, opening hours, lat, a sentence the page says, one it must not)
    let cases = [
        (
            "zh-CN",
            "24/7",
            "north",
            "“纬度”须为数字。",
            "must be a number",
        ),
        (
            "en",
            "24/7",
            "north",
            "Latitude must be a number.",
            "须为数字",
        ),
        (
            "zh-CN",
            "whenever",
            "31.23",
            "营业时间格式不对",
            "OpenStreetMap",
        ),
    ];
    for (lang, hours, lat, says, never) in cases {
        let r = send(lang, hours, lat).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{lang} {hours} {lat}");
        let html = r.text().await.unwrap();
        assert!(html.contains(says), "{lang} {hours} {lat}: {html}");
        assert!(!html.contains(never), "{lang} {hours} {lat}: {html}");
    }
    assert_eq!(app.count("stores").await, stores);
}

#[tokio::test]
async fn a_refused_product_is_said_in_chinese_on_the_catalog_console() {
    let app = spawn_app().await;
    let (_mid, owner) = app.merchant("Barcode Cafe").await;
    let form = [
        ("csrf", PAGE_CSRF),
        ("store", ""),
        ("name_zh", "拿铁"),
        ("price", "28.00"),
        // 13 digits, but the check digit is wrong.
        ("barcode", "6901234567891"),
    ];
    let (status, location, _) =
        post_page_in(&app, "/console/catalog/products", &owner, &form, "zh-CN").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.contains("error="), "{location}");
    let (status, html) = get_page_with(&app, &location, &page_cookies(&owner), "zh-CN").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("条码无效：须是 13 位（EAN-13）或 12 位（UPC-A）数字，且校验位正确。"),
        "{html}"
    );
    assert!(!html.contains("check digit"), "{html}");
    let products = app.get("/v1/products", Some(&owner)).await;
    assert_eq!(
        products.body["data"],
        serde_json::json!([]),
        "{}",
        products.body
    );
}
