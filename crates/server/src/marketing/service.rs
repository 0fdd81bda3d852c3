//! Coupons' rules: templates (checked before they are stored), claims (audience here, stock and
//! limits in the sequencer), the consumer's coupons, the coupon center, and what a coupon would
//! take off a bill (to preselect the best one at checkout).

use super::engine::Claim;
use super::model::*;
use super::store;
use crate::app::AppState;
use crate::db::{Db, MerchantScope, now_us};
use crate::error::{Error, Result};
use crate::http::{List, Page, Reply};
use crate::identity::{Principal, PrincipalKind};
use crate::ids::{CouponId, CouponTemplateId};
use crate::payments::engine::{IdemKey, Op};

pub const CHANNELS: [&str; 5] = ["dine_in", "pickup", "delivery", "scan_and_go", "store_pay"];
const MAX_STOCK: i64 = 10_000_000;
/// The highest points price a template may carry.
pub const MAX_POINTS_PRICE: i64 = 10_000_000;

pub fn parse_coupon_id(raw: &str) -> Result<String> {
    CouponId::parse(raw.trim())
        .map(|c| c.as_str().to_owned())
        .map_err(|_| {
            Error::invalid("coupon_invalid", "coupon must be a coupon id (cpn_…).").param("coupon")
        })
}

fn time(raw: &Option<String>, param: &'static str) -> Result<Option<i64>> {
    match raw {
        None => Ok(None),
        Some(t) => t
            .parse::<jiff::Timestamp>()
            .map(|t| Some(t.as_microsecond()))
            .map_err(|e| {
                Error::invalid(
                    "time_invalid",
                    format!("{param} must be an RFC 3339 time ({e})."),
                )
                .param(param)
            }),
    }
}

fn template_not_found() -> Error {
    Error::not_found("template_not_found", "No such coupon.").param("id")
}

/// `POST /v1/coupon-templates` (a merchant's manager or key).
pub async fn create_template(
    app: &AppState,
    scope: &MerchantScope,
    input: CreateTemplate,
) -> Result<Template> {
    let row = checked_template(app, scope, input).await?;
    let mut tx = app.db.begin().await?;
    store::insert_template(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(row.public())
}

/// A template checked against every rule, ready to store (in the caller's transaction).
pub async fn checked_template(
    app: &AppState,
    scope: &MerchantScope,
    input: CreateTemplate,
) -> Result<TemplateRow> {
    if !scope.owns(&input.merchant_id) {
        return Err(
            Error::not_found("merchant_not_found", "No such merchant.").param("merchant_id")
        );
    }
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
        return Err(
            Error::invalid("name_invalid", "name must be 1 to 80 characters.").param("name"),
        );
    }
    let currency = crate::payments::service::parse_currency(&input.currency)?;
    let money = |v: Option<i64>, param: &'static str| -> Result<Option<i64>> {
        match v {
            Some(a) if !(1..=10_000_000).contains(&a) => Err(Error::invalid(
                "amount_out_of_range",
                format!("{param} must be between 1 and 10000000 minor units."),
            )
            .param(param)),
            other => Ok(other),
        }
    };
    let (amount_off, percent_off, max_discount, product_id) = match input.kind.as_str() {
        "amount_off" => {
            let a = money(input.amount_off, "amount_off")?.ok_or_else(|| {
                Error::invalid(
                    "amount_off_required",
                    "An amount_off coupon needs amount_off.",
                )
                .param("amount_off")
            })?;
            (Some(a), None, None, None)
        }
        "percent_off" => {
            let p = input.percent_off.ok_or_else(|| {
                Error::invalid(
                    "percent_off_required",
                    "A percent_off coupon needs percent_off.",
                )
                .param("percent_off")
            })?;
            if !(1..=99).contains(&p) {
                return Err(Error::invalid(
                    "percent_off_out_of_range",
                    "percent_off must be between 1 and 99.",
                )
                .param("percent_off"));
            }
            (
                None,
                Some(p),
                money(input.max_discount, "max_discount")?,
                None,
            )
        }
        "free_item" => {
            let product = input.product_id.clone().ok_or_else(|| {
                Error::invalid(
                    "product_id_required",
                    "A free_item coupon names its product_id.",
                )
                .param("product_id")
            })?;
            crate::catalog::service::get_product(&app.db, scope, &product)
                .await
                .map_err(|e| e.param("product_id"))?;
            (None, None, None, Some(product))
        }
        _ => {
            return Err(Error::invalid(
                "kind_invalid",
                "kind must be amount_off, percent_off or free_item.",
            )
            .param("kind"));
        }
    };
    let min_spend = input.min_spend.unwrap_or(0);
    if !(0..=100_000_000).contains(&min_spend) {
        return Err(Error::invalid(
            "min_spend_out_of_range",
            "min_spend must be between 0 and 100000000.",
        )
        .param("min_spend"));
    }
    // 满 X 减 Y takes off less than X: a threshold the coupon itself would pay for in full (or
    // more) is a mistake in the offer, not an offer.
    if let Some(off) = amount_off
        && min_spend > 0
        && off >= min_spend
    {
        return Err(Error::invalid(
            "amount_off_not_below_min_spend",
            "amount_off must be less than min_spend when a minimum spend is set.",
        )
        .param("amount_off"));
    }
    for s in &input.store_ids {
        if !crate::stores::service::own_store_exists(&app.db, scope, s).await? {
            return Err(
                Error::not_found("store_not_found", format!("No store {s} of yours."))
                    .param("store_ids"),
            );
        }
    }
    for c in &input.channels {
        if !CHANNELS.contains(&c.as_str()) {
            return Err(Error::invalid(
                "channel_invalid",
                format!("channels are among {}.", CHANNELS.join(", ")),
            )
            .param("channels"));
        }
    }
    let now = now_us();
    let claim_starts_at = time(&input.claim_starts_at, "claim_starts_at")?.unwrap_or(now);
    let claim_ends_at = time(&input.claim_ends_at, "claim_ends_at")?;
    let use_starts_at = time(&input.use_starts_at, "use_starts_at")?;
    let use_ends_at = time(&input.use_ends_at, "use_ends_at")?;
    for (a, b, param) in [
        (Some(claim_starts_at), claim_ends_at, "claim_ends_at"),
        (use_starts_at, use_ends_at, "use_ends_at"),
    ] {
        if let (Some(a), Some(b)) = (a, b)
            && b <= a
        {
            return Err(
                Error::invalid("window_invalid", "A window must end after it starts.").param(param),
            );
        }
    }
    if let Some(d) = input.valid_days_after_claim
        && !(1..=3_650).contains(&d)
    {
        return Err(Error::invalid(
            "valid_days_out_of_range",
            "valid_days_after_claim must be between 1 and 3650.",
        )
        .param("valid_days_after_claim"));
    }
    if !(1..=MAX_STOCK).contains(&input.total_stock) {
        return Err(Error::invalid(
            "total_stock_out_of_range",
            format!("total_stock must be between 1 and {MAX_STOCK}."),
        )
        .param("total_stock"));
    }
    let limit = input.per_consumer_limit.unwrap_or(1);
    if !(1..=100).contains(&limit) {
        return Err(Error::invalid(
            "per_consumer_limit_out_of_range",
            "per_consumer_limit must be between 1 and 100.",
        )
        .param("per_consumer_limit"));
    }
    let audience = input.audience.clone().unwrap_or_else(|| "everyone".into());
    let audience_ok = matches!(audience.as_str(), "everyone" | "followers" | "members")
        || audience
            .strip_prefix("tier:")
            .is_some_and(|t| !t.is_empty() && t.chars().count() <= 40);
    if !audience_ok {
        return Err(Error::invalid(
            "audience_invalid",
            "audience is everyone, followers, members or tier:<name>.",
        )
        .param("audience"));
    }
    let points_price = match input.points_price {
        Some(p) if !(1..=MAX_POINTS_PRICE).contains(&p) => {
            return Err(Error::invalid(
                "points_price_out_of_range",
                format!("points_price must be between 1 and {MAX_POINTS_PRICE}."),
            )
            .param("points_price"));
        }
        other => other,
    };
    let row = TemplateRow {
        id: CouponTemplateId::generate().as_str().to_owned(),
        merchant_id: input.merchant_id.clone(),
        name,
        kind: input.kind.clone(),
        amount_off,
        percent_off,
        max_discount,
        product_id,
        min_spend,
        currency: currency.code().to_owned(),
        store_ids: serde_json::to_string(&input.store_ids).map_err(Error::internal)?,
        channels: serde_json::to_string(&input.channels).map_err(Error::internal)?,
        claim_starts_at,
        claim_ends_at,
        use_starts_at,
        use_ends_at,
        valid_days_after_claim: input.valid_days_after_claim,
        total_stock: input.total_stock,
        issued: 0,
        per_consumer_limit: limit,
        audience,
        stackable: input.stackable.unwrap_or(false),
        created_at: now,
        updated_at: now,
        points_price,
    };
    Ok(row)
}

/// The merchant's own template, or `404 template_not_found` (for attaching it to a message).
pub async fn own_template_row(
    app: &AppState,
    scope: &MerchantScope,
    id: &str,
) -> Result<TemplateRow> {
    own_template(app, scope, id).await
}

/// Checks that a template is the scoped merchant's and in `currency`, for a member program to
/// give it (`404 template_not_found` for another merchant's or an unknown one,
/// `400 currency_mismatch` for another currency).
pub async fn check_own_template(
    db: &crate::db::Db,
    scope: &MerchantScope,
    id: &str,
    currency: &str,
) -> Result<()> {
    let t = store::template(db, id)
        .await?
        .filter(|t| scope.owns(&t.merchant_id))
        .ok_or_else(template_not_found)?;
    if t.currency != currency {
        return Err(Error::invalid(
            "currency_mismatch",
            format!(
                "This coupon is in {}; the program is in {currency}.",
                t.currency
            ),
        ));
    }
    Ok(())
}

/// How many coupons of a template the consumer holds (used or not).
pub async fn held(app: &AppState, user_id: &str, template_id: &str) -> Result<i64> {
    Ok(store::held(&app.db, user_id, template_id).await?)
}

/// A template by id, whoever's it is (public facts: consumers see it in the coupon center).
pub async fn template_row(app: &AppState, id: &str) -> Result<Option<TemplateRow>> {
    Ok(store::template(&app.db, id).await?)
}

/// The names of the templates `ids` (one query; ids that name no template are left out).
pub async fn template_names(
    db: &Db,
    ids: &[&str],
) -> Result<std::collections::HashMap<String, String>> {
    if ids.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let ids = serde_json::to_string(ids).map_err(Error::internal)?;
    Ok(store::template_names(db, ids).await?.into_iter().collect())
}

async fn own_template(app: &AppState, scope: &MerchantScope, id: &str) -> Result<TemplateRow> {
    store::template(&app.db, id)
        .await?
        .filter(|t| scope.owns(&t.merchant_id))
        .ok_or_else(template_not_found)
}

pub async fn templates(
    app: &AppState,
    scope: &MerchantScope,
    page: &Page,
) -> Result<List<Template>> {
    let rows = store::templates_of(
        &app.db,
        scope.merchant_id(),
        page.starting_after.as_deref(),
        page.fetch_limit(),
    )
    .await?;
    let list = page.finish(rows);
    Ok(List {
        data: list.data.iter().map(TemplateRow::public).collect(),
        has_more: list.has_more,
    })
}

/// Issued, used, expired, the discount given and the sales made with a template's coupons.
pub async fn stats(app: &AppState, scope: &MerchantScope, id: &str) -> Result<TemplateStats> {
    let t = own_template(app, scope, id).await?;
    let s = store::stats(&app.db, id, now_us()).await?;
    let sales = store::sales(&app.db, id).await?;
    Ok(TemplateStats {
        issued: t.issued,
        used: s.used,
        expired: s.expired,
        discount_given: s.discount_given,
        sales,
        template: t.public(),
    })
}

/// Whether the consumer is in the template's audience: `everyone`; `followers` (follows the
/// merchant); `members` (holds an open card of the merchant's program); `tier:<name>` (that
/// card's tier is `<name>`, exactly: a higher tier is a different audience).
async fn in_audience(app: &AppState, t: &TemplateRow, user_id: &str) -> Result<bool> {
    match t.audience.as_str() {
        "everyone" => Ok(true),
        "followers" => {
            Ok(
                crate::followers::service::follow_state(&app.db, user_id, &t.merchant_id)
                    .await?
                    .is_some(),
            )
        }
        audience => {
            let membership =
                crate::members::service::membership(&app.db, user_id, &t.merchant_id).await?;
            Ok(match (audience, membership) {
                (_, None) => false,
                ("members", Some(_)) => true,
                (other, Some(m)) => other
                    .strip_prefix("tier:")
                    .is_some_and(|tier| m.tier.as_deref() == Some(tier)),
            })
        }
    }
}

/// A consumer claims a coupon of a template. A template priced in points is not claimed free:
/// `409 coupon_exchange_only` (members exchange points for it, see [`exchange_claim`]).
pub async fn claim(
    app: &AppState,
    principal: &Principal,
    template_id: &str,
    via: &'static str,
    key: Option<String>,
    hash: &str,
) -> Result<Reply> {
    if principal.kind != PrincipalKind::Consumer {
        return Err(Error::forbidden(
            "consumer_only",
            "Only consumers claim coupons.",
        ));
    }
    if principal.guest {
        return Err(Error::forbidden(
            "phone_login_required",
            "Log in with your phone to claim coupons.",
        ));
    }
    // A retry answers as the first request did, before any refusal made outside the sequencer.
    // A keyed claim already applied gets its stored reply, even when a check made before the
    // sequencer (sold out from memory, the audience) would now refuse it; racing retries that
    // miss it are answered by the sequencer, which is why a keyed request also leaves the
    // in-memory sold-out refusal to the sequencer.
    if let Some(reply) =
        crate::http::idempotency::lookup(&app.db, &principal.id, key.as_deref(), hash).await?
    {
        return Ok(reply);
    }
    // Sold out: answered from memory, without touching the database.
    if key.is_none() && app.coupons_sold_out.contains(template_id) {
        return Err(super::engine::sold_out());
    }
    let t = store::template(&app.db, template_id)
        .await?
        .ok_or_else(template_not_found)?;
    if t.points_price.is_some() {
        return Err(Error::conflict(
            "coupon_exchange_only",
            "This coupon is exchanged for member points on the merchant's member card, not claimed.",
        ));
    }
    let claim = eligible_claim(app, &t, &principal.id, via, key.is_some()).await?;
    let idem = key.map(|key| IdemKey {
        scope: principal.id.clone(),
        key,
        hash: hash.to_owned(),
    });
    app.payments.run(Op::Claim(Box::new(claim)), idem).await
}

/// The claim a member's points exchange makes (`via: "points"`), checked as a claim is checked
/// before the sequencer (sold out from memory, the audience), after the template is found to be
/// priced in points by the card's merchant (`409 coupon_not_exchangeable` otherwise). The
/// sequencer then holds the stock, the limit, the claim window and the points.
/// `keyed`: the request carries an Idempotency-Key, so the sold-out refusal is left to the
/// sequencer (which answers a retry with the first reply).
pub async fn exchange_claim(
    app: &AppState,
    user_id: &str,
    template_id: &str,
    merchant_id: &str,
    keyed: bool,
) -> Result<Claim> {
    let t = store::template(&app.db, template_id)
        .await?
        .ok_or_else(|| template_not_found().param("coupon_template_id"))?;
    if t.merchant_id != merchant_id || t.points_price.is_none() {
        return Err(super::engine::not_exchangeable());
    }
    eligible_claim(app, &t, user_id, "points", keyed).await
}

/// A claim of `t` for `user_id` once the checks every claim passes before the sequencer hold:
/// not known sold out (unless `keyed`: a keyed request may be a retry of the claim that sold
/// it out, and the sequencer answers it), and the consumer in the template's audience.
async fn eligible_claim(
    app: &AppState,
    t: &TemplateRow,
    user_id: &str,
    via: &'static str,
    keyed: bool,
) -> Result<Claim> {
    if !keyed && app.coupons_sold_out.contains(&t.id) {
        return Err(super::engine::sold_out());
    }
    if !in_audience(app, t, user_id).await? {
        return Err(Error::forbidden(
            "coupon_not_eligible",
            format!("This coupon is for {} only.", t.audience),
        ));
    }
    Ok(Claim {
        template_id: t.id.clone(),
        user_id: user_id.to_owned(),
        coupon_id: CouponId::generate().as_str().to_owned(),
        via,
    })
}

/// The most coupons a member card offers for points.
pub const EXCHANGE_OFFERS: i64 = 50;

/// The coupons a member holding `points` may exchange points for at a merchant, cheapest first:
/// its templates priced in points, in their claim window, whose audience the member is in, each
/// with whether it is sold out and whether the member may exchange for one now.
pub async fn exchange_offers(
    app: &AppState,
    user_id: &str,
    merchant_id: &str,
    points: i64,
) -> Result<Vec<ExchangeOffer>> {
    let now = now_us();
    let mut out = Vec::new();
    for t in store::exchangeable_of(&app.db, merchant_id, now, EXCHANGE_OFFERS).await? {
        let Some(price) = t.points_price else {
            continue;
        };
        if !in_audience(app, &t, user_id).await? {
            continue;
        }
        let held = store::held(&app.db, user_id, &t.id).await?;
        let sold_out = t.issued >= t.total_stock || app.coupons_sold_out.contains(&t.id);
        out.push(ExchangeOffer {
            points_price: price,
            sold_out,
            held,
            exchangeable: !sold_out && held < t.per_consumer_limit && points >= price,
            template: t.public(),
        });
    }
    Ok(out)
}

/// The consumer's coupons, newest first.
pub async fn mine(app: &AppState, user_id: &str, page: &Page) -> Result<List<Coupon>> {
    let rows = store::coupons_of(
        &app.db,
        user_id,
        page.starting_after.as_deref(),
        page.fetch_limit(),
    )
    .await?;
    let list = page.finish(rows);
    let now = now_us();
    let mut templates: std::collections::HashMap<String, TemplateRow> = Default::default();
    let mut data = Vec::with_capacity(list.data.len());
    for c in list.data {
        if !templates.contains_key(&c.template_id)
            && let Some(t) = store::template(&app.db, &c.template_id).await?
        {
            templates.insert(t.id.clone(), t);
        }
        if let Some(t) = templates.get(&c.template_id) {
            data.push(c.public(t, now));
        }
    }
    Ok(List {
        data,
        has_more: list.has_more,
    })
}

/// What the consumer's coupons would take off a bill at a store, best first (only those that
/// can be used on it). `base` is the bill (store-pay) or the order's subtotal.
pub async fn usable(
    app: &AppState,
    user_id: &str,
    store_id: &str,
    channel: &str,
    base: i64,
) -> Result<Vec<(Coupon, i64)>> {
    let store = crate::stores::service::get_store(&app.db, store_id).await?;
    let now = now_us();
    let rows = store::coupons_of(&app.db, user_id, None, 100).await?;
    let mut out = Vec::new();
    for c in rows {
        if c.merchant_id != store.merchant_id || c.status_at(now) != "active" || c.valid_from > now
        {
            continue;
        }
        let Some(t) = store::template(&app.db, &c.template_id).await? else {
            continue;
        };
        let stores = t.stores();
        let channels = t.channel_list();
        if (!stores.is_empty() && !stores.contains(&store.id))
            || (!channels.is_empty() && !channels.iter().any(|x| x == channel))
            || base < t.min_spend
            || t.kind == "free_item"
        {
            continue;
        }
        let d = discount_of(&t, base, None).min(base - 1);
        if d > 0 {
            out.push((c.public(&t, now), d));
        }
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.1));
    Ok(out)
}

/// The coupon center: what the consumer may claim from stores near them, most useful first
/// (value, nearness, and whether they already shop there), then what is sold out (marked, so a
/// consumer who saw a poster knows why it cannot be claimed). Coupons priced in points are on
/// member cards, not here.
pub async fn center(
    app: &AppState,
    principal: Option<&Principal>,
    near: o2o_geo::LatLng,
) -> Result<Vec<Offer>> {
    let radius = o2o_geo::Radius::parse_m(5_000).map_err(Error::internal)?;
    let stores = crate::stores::service::nearby(&app.db, near, radius, 100).await?;
    let mut nearest: std::collections::HashMap<String, (String, u32, String)> = Default::default();
    for s in &stores.data {
        let d = s.distance_m.unwrap_or(u32::MAX);
        nearest
            .entry(s.merchant_id.clone())
            .and_modify(|e| {
                if d < e.1 {
                    *e = (s.id.clone(), d, s.merchant.name.clone());
                }
            })
            .or_insert((s.id.clone(), d, s.merchant.name.clone()));
    }
    if nearest.is_empty() {
        return Ok(Vec::new());
    }
    let merchants: Vec<&String> = nearest.keys().collect();
    let merchants_json = serde_json::to_string(&merchants).map_err(Error::internal)?;
    let now = now_us();
    let templates = store::center_templates_of(&app.db, merchants_json.clone(), now).await?;
    let user = principal.filter(|p| p.kind == PrincipalKind::Consumer);
    let shopped: Vec<String> = match user {
        Some(p) => store::shopped_at(&app.db, &p.id, merchants_json).await?,
        None => Vec::new(),
    };
    let mut offers = Vec::new();
    for t in templates {
        if t.audience != "everyone" {
            let eligible = match user {
                Some(p) => in_audience(app, &t, &p.id).await?,
                None => false,
            };
            if !eligible {
                continue;
            }
        }
        let Some((store_id, distance, merchant_name)) = nearest.get(&t.merchant_id).cloned() else {
            continue;
        };
        // A template for some stores only: the nearest of those within reach.
        let allowed = t.stores();
        let (store_id, distance) = if allowed.is_empty() {
            (store_id, distance)
        } else {
            match stores
                .data
                .iter()
                .filter(|s| allowed.contains(&s.id))
                .min_by_key(|s| s.distance_m.unwrap_or(u32::MAX))
            {
                Some(s) => (s.id.clone(), s.distance_m.unwrap_or(u32::MAX)),
                None => continue,
            }
        };
        let sold_out = t.issued >= t.total_stock || app.coupons_sold_out.contains(&t.id);
        let claimable = !sold_out
            && match user {
                Some(p) => {
                    let held = store::coupons_of(&app.db, &p.id, None, 100)
                        .await?
                        .iter()
                        .filter(|c| c.template_id == t.id)
                        .count() as i64;
                    held < t.per_consumer_limit
                }
                None => true,
            };
        offers.push(Offer {
            sold_out,
            shopped_here: shopped.contains(&t.merchant_id),
            template: t.public(),
            merchant_name,
            store_id,
            distance_m: distance,
            claimable,
        });
    }
    let value = |o: &Offer| -> f64 {
        let t = &o.template;
        let v = match t.kind.as_str() {
            "amount_off" => t.amount_off.unwrap_or(0) as f64,
            "percent_off" => t
                .max_discount
                .map(|m| m as f64)
                .unwrap_or(t.percent_off.unwrap_or(0) as f64 * 50.0),
            _ => 1_500.0,
        };
        let shopped = if o.shopped_here { 1.5 } else { 1.0 };
        v * shopped / (1.0 + f64::from(o.distance_m) / 500.0)
    };
    // Claimable first by value; sold-out ones after every coupon still in stock.
    offers.sort_by(|a, b| {
        a.sold_out
            .cmp(&b.sold_out)
            .then_with(|| value(b).total_cmp(&value(a)))
    });
    Ok(offers)
}

/// A coupon of the consumer's (for its page).
pub async fn coupon(app: &AppState, user_id: &str, id: &str) -> Result<Coupon> {
    let c = store::coupon(&app.db, id)
        .await?
        .filter(|c| c.user_id == user_id)
        .ok_or_else(|| Error::not_found("coupon_not_found", "No such coupon.").param("id"))?;
    let t = store::template(&app.db, &c.template_id)
        .await?
        .ok_or_else(template_not_found)?;
    Ok(c.public(&t, now_us()))
}

/// How long a coupon's code shown at the counter stays valid, in seconds.
pub const COUPON_CODE_TTL_S: i64 = 300;

/// A fresh code (signed token) for one of the consumer's coupons, to be scanned at the counter:
/// (the code, when it expires in UTC microseconds). Only an active coupon gets one.
pub async fn coupon_code(app: &AppState, user_id: &str, id: &str) -> Result<(String, i64)> {
    let c = store::coupon(&app.db, id)
        .await?
        .filter(|c| c.user_id == user_id)
        .ok_or_else(|| Error::not_found("coupon_not_found", "No such coupon.").param("id"))?;
    match c.status_at(now_us()) {
        "used" => {
            return Err(
                Error::conflict("coupon_used", "This coupon was used already.").param("id"),
            );
        }
        "expired" => {
            return Err(Error::conflict("coupon_expired", "This coupon has expired.").param("id"));
        }
        _ => {}
    }
    let mut tx = app.db.begin().await?;
    let code = crate::codes::service::issue_token(
        &mut tx,
        &app.keys,
        o2o_codes::TokenKind::Coupon,
        &c.id,
        Some(&c.merchant_id),
        None,
        Some(user_id),
        COUPON_CODE_TTL_S,
    )
    .await?;
    tx.commit().await?;
    let (_, claims, _) = o2o_codes::token::parse(&code).map_err(Error::internal)?;
    Ok((code, claims.expires_at.saturating_mul(1_000_000)))
}
