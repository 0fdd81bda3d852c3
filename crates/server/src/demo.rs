//! Demo data: a verified café merchant with two stores in Shanghai (real coordinates, opening
//! hours, tables, a free-WiFi code at the first), its menu with photos it draws itself (see
//! `demo_menu`), an owner, a manager and a cashier, a platform operator and a few consumers.
//! Seeding happens once per database: a marker in `settings` is written in the same transaction,
//! so running `--demo` again reuses what is there.

use crate::app::AppState;
use crate::db::{now_us, query};
use crate::identity::service::create_account;
use crate::identity::{Email, PrincipalKind, Role, store as identity_store};
use crate::ids::{OperatorId, StaffId, UserId};
use crate::merchants::model::MerchantMode;
use crate::merchants::service::{NewMerchant, create_merchant};
use crate::stores::model::{CreateStore, CreateTable};
use crate::stores::service::{add_table, create_store};

/// The demo's shared password for every staff and operator login.
pub const DEMO_PASSWORD: &str = "o2o-demo-2026";

/// Logins the demo made, for printing.
pub struct DemoReport {
    pub created: bool,
    pub lines: Vec<String>,
}

struct DemoStore {
    name: &'static str,
    address: &'static str,
    lat: f64,
    lng: f64,
    hours: &'static str,
    tables: &'static [&'static str],
}

const STORES: &[DemoStore] = &[
    DemoStore {
        name: "莲花咖啡 静安寺店",
        address: "上海市静安区南京西路 1601 号",
        lat: 31.2237,
        lng: 121.4453,
        hours: "Mo-Fr 07:30-22:00; Sa,Su 08:00-23:00",
        tables: &["A1", "A2", "A3", "A4", "B1", "B2"],
    },
    DemoStore {
        name: "莲花咖啡 外滩店",
        address: "上海市黄浦区中山东一路 18 号",
        lat: 31.2400,
        lng: 121.4900,
        hours: "Mo-Su 00:00-24:00",
        tables: &["1", "2", "3", "4", "5", "6", "7", "8"],
    },
];

const CONSUMER_PHONES: &[&str] = &["+8613800000001", "+8613800000002", "+8613800000003"];

fn report(created: bool) -> DemoReport {
    let mut lines = vec![
        format!("merchant owner    owner@lotus.demo   / {DEMO_PASSWORD}"),
        format!("store manager     manager@lotus.demo / {DEMO_PASSWORD}"),
        format!("cashier           cashier@lotus.demo / {DEMO_PASSWORD}"),
        format!("platform operator operator@o2o.demo  / {DEMO_PASSWORD}"),
    ];
    lines.push(format!(
        "consumers         {} (log in with a code from GET /v1/dev/outbox?to=<phone>)",
        CONSUMER_PHONES.join(", ")
    ));
    DemoReport { created, lines }
}

/// Seeds the demo data unless this database already has it.
pub async fn seed(app: &AppState) -> anyhow::Result<DemoReport> {
    let seeded: Option<(String,)> = app
        .db
        .fetch_optional(query(
            "SELECT value FROM settings WHERE key = 'demo_seeded'",
        ))
        .await?;
    if seeded.is_some() {
        return Ok(report(false));
    }
    let hash = app.passwords.hash(DEMO_PASSWORD).await?;
    let mut tx = app.db.begin().await?;
    // Re-checked inside the write: two processes starting at once seed once.
    if tx
        .fetch_optional::<(String,)>(query(
            "SELECT value FROM settings WHERE key = 'demo_seeded'",
        ))
        .await?
        .is_some()
    {
        return Ok(report(false));
    }
    let (created, scope) = create_merchant(
        &mut tx,
        NewMerchant {
            name: "莲花咖啡 Lotus Coffee".to_owned(),
            mode: MerchantMode::Trading,
            owner_email: Email::parse("owner@lotus.demo")?,
            owner_password_hash: hash.clone(),
            verified: true,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    for (email, role) in [
        ("manager@lotus.demo", Role::Manager),
        ("cashier@lotus.demo", Role::Cashier),
    ] {
        create_account(
            &mut tx,
            StaffId::generate().as_str(),
            PrincipalKind::Staff,
            Some(&created.merchant.id),
            Some(role),
            &Email::parse(email)?,
            &hash,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    create_account(
        &mut tx,
        OperatorId::generate().as_str(),
        PrincipalKind::Operator,
        None,
        None,
        &Email::parse("operator@o2o.demo")?,
        &hash,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut store_ids = Vec::new();
    for s in STORES {
        let store = create_store(
            &mut tx,
            &scope,
            CreateStore {
                merchant_id: created.merchant.id.clone(),
                name: s.name.to_owned(),
                address: s.address.to_owned(),
                lat: s.lat,
                lng: s.lng,
                timezone: "Asia/Shanghai".to_owned(),
                opening_hours: s.hours.to_owned(),
                delivery_radius_m: Some(3_000),
                fence_radius_m: Some(150),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        store_ids.push(store.id.clone());
        for label in s.tables {
            add_table(
                &mut tx,
                &scope,
                &store.id,
                CreateTable {
                    label: (*label).to_owned(),
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    crate::demo_menu::seed(&mut tx, &scope, &store_ids).await?;
    // The first store's free-WiFi code: its landing is the WiFi login.
    if let Some(first) = store_ids.first() {
        crate::codes::service::ensure_code(
            &mut tx,
            &scope,
            &app.config.public_url,
            first,
            crate::codes::model::QrKind::Wifi,
            None,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    // Two coupons in the coupon center: 满30减5, and 八折 capped at ¥10.
    for (name, kind, amount_off, percent_off, max_discount, min_spend, stock) in [
        (
            "满30减5",
            "amount_off",
            Some(500),
            None,
            None,
            Some(3_000),
            500,
        ),
        (
            "八折券 最高减10元",
            "percent_off",
            None,
            Some(20),
            Some(1_000),
            None,
            200,
        ),
    ] {
        let row = crate::marketing::service::checked_template(
            app,
            &scope,
            crate::marketing::model::CreateTemplate {
                merchant_id: created.merchant.id.clone(),
                name: name.to_owned(),
                kind: kind.to_owned(),
                amount_off,
                percent_off,
                max_discount,
                product_id: None,
                min_spend,
                currency: "CNY".to_owned(),
                store_ids: Vec::new(),
                channels: Vec::new(),
                claim_starts_at: None,
                claim_ends_at: None,
                use_starts_at: None,
                use_ends_at: None,
                valid_days_after_claim: Some(30),
                total_stock: stock,
                per_consumer_limit: Some(1),
                audience: None,
                stackable: None,
                points_price: None,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        crate::marketing::store::insert_template(&mut tx, &row).await?;
    }
    let now = now_us();
    for phone in CONSUMER_PHONES {
        identity_store::insert_user(
            &mut tx,
            UserId::generate().as_str(),
            Some(phone),
            false,
            now,
        )
        .await?;
    }
    tx.execute(
        query("INSERT INTO settings (key, value) VALUES ('demo_seeded', $1)")
            .bind(crate::db::rfc3339(now)),
    )
    .await?;
    tx.commit().await?;
    Ok(report(true))
}
