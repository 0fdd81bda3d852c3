//! Refusals as a page says them. The API's messages are English sentences for developers, some
//! naming request fields (`lat must be a number.`) or a parser's reason; a page shows the
//! sentence kept here for the refusal's code, in its own language. A code not kept here is
//! shown in the service's words.
//!
//! Each entry is (code, zh-CN, en). An English text of `None` keeps the service's English
//! sentence, which is already meant for people and often says more (an amount, a limit); a
//! `Some` replaces it where that sentence is for developers. `{field}` in a text is the refused
//! field's label as its form shows it (see [`FIELDS`]), else the field's name.

use super::i18n::{Lang, T};
use crate::error::Error;

/// The sentence a page shows for a refusal (`e` is never an internal failure here: those are
/// error pages).
pub fn said(t: T, e: &Error) -> String {
    if t.lang == Lang::Zh
        && !e.args.is_empty()
        && let Some(text) = detailed(e)
    {
        return text;
    }
    let text = match REFUSALS
        .iter()
        .find(|(code, _, _)| *code == e.code.as_ref())
    {
        Some((_, zh, _)) if t.lang == Lang::Zh => *zh,
        Some((_, _, Some(en))) => *en,
        _ => return e.message.clone(),
    };
    if !text.contains("{field}") {
        return text.to_owned();
    }
    let param = e.param.as_deref().unwrap_or_default();
    let label = match FIELDS.iter().find(|(name, _)| *name == param) {
        Some((_, key)) => t.s(key),
        None => param,
    };
    text.replace("{field}", label)
}

/// The Chinese sentence of [`DETAILED`] for `e`, its figures filled in from [`Error::args`];
/// `None` when none is kept for its code (and reason), or the refusal lacks a figure the
/// sentence names.
fn detailed(e: &Error) -> Option<String> {
    let reason = e
        .args
        .iter()
        .find(|(n, _)| *n == "reason")
        .map(|(_, r)| r.as_str());
    DETAILED
        .iter()
        .filter(|(code, why, _)| *code == e.code.as_ref() && why.is_none_or(|w| Some(w) == reason))
        .find_map(|(_, _, template)| filled(template, e))
}

/// `template` with each `{name}` replaced by the refusal's figure of that name; `None` if one
/// is missing.
fn filled(template: &str, e: &Error) -> Option<String> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}')? + open;
        let name = &rest[open + 1..close];
        let (_, value) = e.args.iter().find(|(n, _)| *n == name)?;
        out.push_str(value);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Chinese sentences that say more than a refusal's plain one: its figures (`{name}` is the
/// figure kept as `name`, see [`Error::arg`]) or, for a code refused for several reasons, the
/// one it was refused for (the figure `reason`). Each is (code, reason, zh-CN). The service's
/// English sentence says as much already. A refusal without what a sentence needs is said by
/// its plain sentence in [`REFUSALS`].
static DETAILED: &[(&str, Option<&str>, &str)] = &[
    ("amount_exceeds_due", None, "这笔订单只剩 {due} 待付。"),
    ("product_sold_out", None, "“{name}”已售罄或余量不足。"),
    ("too_many_items", None, "一单最多 {max} 种商品。"),
    (
        "quantity_out_of_range",
        None,
        "每种商品的数量须在 1 到 {max} 之间。",
    ),
    (
        "coupon_limit_reached",
        None,
        "你已持有 {held} 张该券，每人限领 {limit} 张。",
    ),
    (
        "points_insufficient",
        None,
        "兑换此券需要 {price} 积分，会员卡现有 {points} 积分。",
    ),
    (
        "otp_rate_limited",
        None,
        "验证码刚刚发送过，请 {wait} 秒后再试。",
    ),
    (
        "rate_limited",
        None,
        "每小时最多发送 {per_hour} 条消息，请 {wait} 秒后再试。",
    ),
    // Why a coupon does not apply to a bill.
    (
        "coupon_not_applicable",
        Some("not_yet"),
        "这张券还没到可用时间。",
    ),
    (
        "coupon_not_applicable",
        Some("other_merchant"),
        "这张券不是这家商户的。",
    ),
    (
        "coupon_not_applicable",
        Some("currency"),
        "这张券只能用于 {currency} 付款。",
    ),
    (
        "coupon_not_applicable",
        Some("store"),
        "这张券不能在这家门店使用。",
    ),
    (
        "coupon_not_applicable",
        Some("channel"),
        "这张券不能用于这种消费方式。",
    ),
    (
        "coupon_not_applicable",
        Some("min_spend"),
        "满 {min} 才能用这张券，这笔消费为 {base}。",
    ),
    (
        "coupon_not_applicable",
        Some("free_item"),
        "请先把赠品加入订单，再用这张券。",
    ),
    (
        "coupon_not_applicable",
        Some("nothing_off"),
        "这张券对这笔消费没有优惠。",
    ),
];

/// The labels forms give their fields: (field, text key).
static FIELDS: &[(&str, &str)] = &[
    ("lat", "console.lat"),
    ("lng", "console.lng"),
    ("delivery_radius_m", "console.delivery_radius"),
    ("fence_radius_m", "console.fence_radius"),
];

type Entry = (&'static str, &'static str, Option<&'static str>);

static REFUSALS: &[Entry] = &[
    // Forms and fields
    (
        "invalid_form",
        "表单无法读取，请重新填写后提交。",
        Some("The form could not be read; fill it in and send it again."),
    ),
    (
        "invalid_type",
        "有一项填写的格式不对，请检查后重试。",
        Some("A field holds the wrong kind of value; check the form and try again."),
    ),
    (
        "invalid_number",
        "“{field}”须为数字。",
        Some("{field} must be a number."),
    ),
    (
        "invalid_value",
        "有一项内容过长或为空，请检查后重试。",
        None,
    ),
    ("text_invalid", "文字过长，请缩短后重试。", None),
    ("name_too_long", "名称过长。", None),
    (
        "invalid_name",
        "名称不能包含控制字符。",
        Some("A name may not contain control characters."),
    ),
    (
        "name_required",
        "请填写中文名或英文名。",
        Some("Give a name in Chinese, in English, or both."),
    ),
    (
        "name_invalid",
        "名称须为 1 至 80 个字。",
        Some("A name is 1 to 80 characters."),
    ),
    ("description_too_long", "描述过长。", None),
    (
        "invalid_description",
        "描述不能包含控制字符。",
        Some("A description may not contain control characters."),
    ),
    (
        "unsupported_media_type",
        "请通过页面上的表单提交。",
        Some("Send the form from the page."),
    ),
    (
        "body_timeout",
        "提交中断，请重试。",
        Some("The form stopped arriving before its end; send it again."),
    ),
    // Accounts and logins
    (
        "invalid_phone",
        "请输入正确的手机号，例如 13800000001。",
        None,
    ),
    ("invalid_email", "请输入正确的邮箱地址。", None),
    ("weak_password", "密码须为 8 至 128 个字符。", None),
    ("invalid_credentials", "邮箱或密码错误。", None),
    ("email_taken", "该邮箱已注册。", None),
    ("otp_invalid", "验证码错误或已过期。", None),
    ("invalid_code_format", "验证码是短信中的 6 位数字。", None),
    (
        "otp_attempts_exceeded",
        "验证码错误次数过多，请重新获取。",
        None,
    ),
    ("otp_rate_limited", "验证码发送过于频繁，请稍后再试。", None),
    ("phone_login_required", "请先用手机号登录。", None),
    ("login_required", "请先用手机号登录。", None),
    (
        "authentication_required",
        "请先登录。",
        Some("Log in first."),
    ),
    (
        "invalid_token",
        "登录已过期，请重新登录。",
        Some("Your login has expired; log in again."),
    ),
    ("unauthenticated", "请登录商家后台。", None),
    ("consumer_only", "只有顾客可以这样做。", None),
    ("staff_only", "只有商家员工可以这样做。", None),
    ("insufficient_role", "你的角色无权进行此操作。", None),
    (
        "birthday_invalid",
        "生日请按 月-日 填写，例如 05-17。",
        Some("Give your birthday as month-day, for example 05-17."),
    ),
    ("birthday_already_set", "生日已填写，不能修改。", None),
    (
        "csrf_failed",
        "页面已过期，请刷新后重试。",
        Some("This page has expired; reload it and try again."),
    ),
    // Stores, catalog, codes
    ("store_not_found", "找不到这家门店。", None),
    ("merchant_not_found", "找不到该商家。", None),
    ("product_not_found", "找不到该商品。", None),
    (
        "invalid_barcode",
        "条码无效：须是 13 位（EAN-13）或 12 位（UPC-A）数字，且校验位正确。",
        None,
    ),
    ("category_not_found", "找不到该分类。", None),
    ("table_not_found", "找不到该桌台。", None),
    ("table_label_taken", "本店已有同名桌台。", None),
    ("price_invalid", "请按元填写价格，例如 28.00。", None),
    ("price_negative", "价格不能为负数。", None),
    ("price_too_high", "价格过高。", None),
    ("stock_out_of_range", "库存数量超出范围。", None),
    ("barcode_taken", "已有其他商品使用该条码。", None),
    ("product_sold_out", "该商品已售罄。", None),
    ("option_required", "请为该商品选择规格。", None),
    ("too_many_options", "每组规格只能选一项。", None),
    (
        "unknown_option",
        "所选规格不存在，请重新选择。",
        Some("That option is not on the menu; choose again."),
    ),
    (
        "unknown_option_group",
        "所选规格不存在，请重新选择。",
        Some("That option is not on the menu; choose again."),
    ),
    ("duplicate_option", "同一规格选了两次。", None),
    (
        "unsupported_image_type",
        "请上传 JPEG、PNG 或 WebP 图片。",
        None,
    ),
    (
        "invalid_image",
        "无法读取这张图片。",
        Some("The image could not be read."),
    ),
    ("qr_invalid", "这不是有效的 o2o 二维码。", None),
    (
        "qr_unknown",
        "这不是有效的 o2o 二维码，请勿用它付款。",
        None,
    ),
    ("qr_revoked", "已作废的二维码不能更换，请新建一个。", None),
    ("qr_not_payable", "这不是门店收款码。", None),
    ("qr_not_a_table", "这不是桌台的二维码。", None),
    (
        "coordinates_invalid",
        "纬度和经度须为数字（单位：度）。",
        Some("Latitude and longitude must be numbers in degrees."),
    ),
    (
        "invalid_timezone",
        "请填写 IANA 时区名称，例如 Asia/Shanghai。",
        None,
    ),
    (
        "invalid_opening_hours",
        "营业时间格式不对，例如：Mo-Fr 07:00-22:00; Sa,Su 08:00-23:00。",
        Some("Write the opening hours like this: Mo-Fr 07:00-22:00; Sa,Su 08:00-23:00."),
    ),
    (
        "radius_out_of_range",
        "配送范围须在 0 至 50 公里之间。",
        Some("The delivery radius is 0 to 50 km."),
    ),
    ("fee_bps_out_of_range", "手续费率须在 0 至 10% 之间。", None),
    (
        "url_invalid",
        "请填写以 http:// 或 https:// 开头的完整网址。",
        Some("Enter a whole address starting with http:// or https://."),
    ),
    (
        "webhook_url_not_allowed",
        "该网址指向内网，不能接收通知。",
        None,
    ),
    ("webhook_url_unresolvable", "无法解析该网址的域名。", None),
    (
        "webhook_endpoint_limit",
        "通知地址已达上限，请先删除一个。",
        None,
    ),
    (
        "events_empty",
        "请至少选择一种事件。",
        Some("Choose at least one event."),
    ),
    ("event_type_unknown", "有未知的事件类型。", None),
    // Orders
    ("store_closed", "门店当前未营业，请查看营业时间。", None),
    ("merchant_not_trading", "该商家暂不接单。", None),
    ("items_required", "请至少选择一件商品。", None),
    ("too_many_items", "一单的商品种类过多。", None),
    ("quantity_out_of_range", "请填写整数件数。", None),
    (
        "order_empty",
        "订单金额为零，无需支付（赠品需与付费商品同单）。",
        None,
    ),
    ("order_not_found", "找不到该订单。", None),
    (
        "not_your_order",
        "已有人付款的桌台订单只能由店员取消。",
        None,
    ),
    ("order_not_expired", "该订单的保留时间还没到期。", None),
    ("order_not_open", "该订单已不能再加菜。", None),
    ("nothing_to_place", "所有菜品都已下单到厨房。", None),
    ("order_not_placed", "请先下单到厨房再付款。", None),
    (
        "order_has_unsent_items",
        "还有菜品未下单到厨房，请先下单或删除。",
        None,
    ),
    ("order_already_paid", "该订单已付清。", None),
    ("order_not_payable", "该订单当前不能付款。", None),
    ("order_unpaid", "该订单尚未付清，请先收款。", None),
    (
        "order_transition_invalid",
        "订单当前状态不能进行这一步。",
        None,
    ),
    ("amount_exceeds_due", "金额超过了订单待付金额。", None),
    ("amount_must_be_due", "该订单须一次付清。", None),
    (
        "pickup_at_invalid",
        "请选择一个取餐时间。",
        Some("Choose a pickup time."),
    ),
    (
        "pickup_at_out_of_range",
        "取餐时间须在备餐时间之后、7 天之内。",
        None,
    ),
    ("address_required", "请填写配送地址。", None),
    (
        "delivery_required",
        "请填写配送地址并在地图上定位。",
        Some("Give the delivery address and its place on the map."),
    ),
    (
        "contact_phone_invalid",
        "请填写正确的联系电话。",
        Some("Enter a phone number to call on delivery."),
    ),
    ("delivery_unavailable", "该门店不提供配送。", None),
    ("outside_delivery_area", "该地址超出门店的配送范围。", None),
    ("below_minimum_order", "未达到起送金额。", None),
    (
        "delivery_fee_out_of_range",
        "配送费超出范围。",
        Some("The delivery fee is out of range."),
    ),
    (
        "min_order_out_of_range",
        "起送金额超出范围。",
        Some("The minimum order is out of range."),
    ),
    (
        "promise_minutes_out_of_range",
        "承诺送达时间须在 5 至 240 分钟之间。",
        Some("The promised delivery time is 5 to 240 minutes."),
    ),
    (
        "prep_minutes_out_of_range",
        "备餐时间须在 0 至 240 分钟之间。",
        Some("The preparation time is 0 to 240 minutes."),
    ),
    (
        "barcode_not_found",
        "照片中没有识别到条码，请靠近些拍摄，或手动输入条码。",
        None,
    ),
    (
        "not_scan_and_go",
        "只有扫码购的购物车可以拍条码添加。",
        None,
    ),
    (
        "pickup_number_ambiguous",
        "多个订单使用该取餐号，请扫描取餐码。",
        None,
    ),
    ("code_expired", "该码已过期，请顾客刷新。", None),
    ("code_wrong_store", "该码属于另一家门店。", None),
    ("code_used", "该码已使用过。", None),
    ("no_code", "该订单当前没有可出示的码。", None),
    ("step_invalid", "没有这一步。", None),
    // Payments and wallets
    ("amount_invalid", "金额须大于零。", None),
    ("amount_too_large", "金额超过单笔支付上限。", None),
    ("insufficient_funds", "余额不足。", None),
    ("provider_declined", "银行未确认这笔资金变动。", None),
    ("merchant_not_verified", "该商家暂不能收款。", None),
    ("pay_code_invalid", "付款码是以 19 开头的 18 位数字。", None),
    (
        "pay_code_required",
        "请扫描顾客的付款码，或记录现金收款。",
        Some("Scan the customer's pay code, or record cash."),
    ),
    ("payment_not_found", "找不到该笔支付。", None),
    ("payment_not_refundable", "该笔支付当前不能退款。", None),
    ("refund_exceeds_payment", "退款金额超过可退金额。", None),
    ("card_not_found", "找不到该会员卡。", None),
    ("card_closed", "该会员卡已注销，重新入会即可恢复。", None),
    (
        "card_wrong_merchant",
        "该会员卡属于其他商家，请用钱包支付。",
        None,
    ),
    ("date_invalid", "日期格式须为 YYYY-MM-DD。", None),
    ("overloaded", "当前付款人数较多，请稍后重试。", None),
    ("shutting_down", "服务正在重启，请稍后重试。", None),
    (
        "idempotency_key_reused",
        "该表单已提交过其他内容，请刷新页面后重试。",
        Some("This form was already sent with other content; reload the page and try again."),
    ),
    (
        "idempotency_key_in_use",
        "上一次提交仍在处理中，请稍后刷新。",
        Some("The last submission is still being handled; reload in a moment."),
    ),
    // Coupons and members
    ("coupon_sold_out", "该券已被领完。", None),
    ("coupon_not_claimable", "该券当前不在领取时间内。", None),
    ("coupon_limit_reached", "你已达到该券的领取上限。", None),
    ("coupon_not_found", "找不到你的这张券。", None),
    ("coupon_used", "该券已使用。", None),
    ("coupon_expired", "该券已过期。", None),
    ("coupon_not_stackable", "该订单已用券，不能叠加使用。", None),
    ("coupon_not_applicable", "这张券不能用于这笔消费。", None),
    ("coupon_not_payers", "这张券不属于出示付款码的顾客。", None),
    (
        "coupon_code_required",
        "请扫描顾客出示的券码。",
        Some("Scan the coupon code the customer shows."),
    ),
    (
        "card_capture_manual_unsupported",
        "会员卡付款即时扣款；先授权后扣款请用钱包。",
        None,
    ),
    ("coupon_not_eligible", "该券仅限特定顾客领取。", None),
    ("coupon_not_allowed", "券只能由持券顾客本人使用。", None),
    (
        "coupon_exchange_only",
        "该券需用积分兑换，不能直接发放。",
        None,
    ),
    ("template_not_found", "找不到该券。", None),
    (
        "amount_off_not_below_min_spend",
        "减免金额须小于使用门槛。",
        Some("The amount off must be less than the minimum spend."),
    ),
    ("amount_out_of_range", "金额超出范围。", None),
    (
        "percent_off_out_of_range",
        "折扣须在 1% 至 99% 之间。",
        Some("The discount is 1 % to 99 %."),
    ),
    (
        "min_spend_out_of_range",
        "使用门槛超出范围。",
        Some("The minimum spend is out of range."),
    ),
    ("window_invalid", "结束时间须晚于开始时间。", None),
    (
        "time_invalid",
        "时间格式不对。",
        Some("That time could not be read."),
    ),
    (
        "valid_days_out_of_range",
        "有效天数须在 1 至 3650 天之间。",
        Some("A coupon is good for 1 to 3650 days."),
    ),
    (
        "total_stock_out_of_range",
        "发放总量超出范围。",
        Some("The number of coupons is out of range."),
    ),
    (
        "per_consumer_limit_out_of_range",
        "每人限领须在 1 至 100 张之间。",
        Some("Each consumer may claim 1 to 100."),
    ),
    (
        "points_price_out_of_range",
        "兑换积分超出范围。",
        Some("The points price is out of range."),
    ),
    (
        "product_id_required",
        "赠品券须指定商品。",
        Some("A free-item coupon names its product."),
    ),
    ("program_not_found", "该商家没有会员计划。", None),
    ("points_insufficient", "积分不足。", None),
    (
        "coupon_not_exchangeable",
        "该券不能用这张卡的积分兑换。",
        None,
    ),
    (
        "program_currency_locked",
        "已有会员持卡，会员计划的币种不能更改。",
        None,
    ),
    ("tier_name_invalid", "等级名称须为 1 至 32 个字。", None),
    ("tier_duplicate", "每个等级的名称和门槛须各不相同。", None),
    ("bonus_invalid", "赠送金额须大于零且不超过充值门槛。", None),
    (
        "min_top_up_duplicate",
        "每条赠送规则的充值门槛须各不相同。",
        None,
    ),
    ("rate_limited", "发送过于频繁，请稍后再试。", None),
    ("message_not_found", "找不到该消息。", None),
    // Console settings
    ("api_key_not_found", "找不到该 API 密钥。", None),
    (
        "position_out_of_range",
        "排序值超出范围。",
        Some("The position is out of range."),
    ),
    (
        "invalid_option_key",
        "规格组和规格的代号须为 1 至 32 个小写字母、数字、_ 或 -。",
        None,
    ),
    ("too_many_option_groups", "规格组过多。", None),
    ("duplicate_option_key", "两个规格组的代号相同。", None),
    ("invalid_options", "每个规格组的选项数量超出范围。", None),
    ("photo_not_found", "该商品还没有照片。", None),
    (
        "count_out_of_range",
        "一次可生成 1 至 5 个码。",
        Some("Make 1 to 5 codes at a time."),
    ),
    (
        "invalid_mcc",
        "商户类别码须为 4 位数字。",
        Some("The merchant category code is 4 digits."),
    ),
    (
        "invalid_city",
        "城市名须含拉丁字母。",
        Some("The city's name needs Latin letters."),
    ),
    (
        "emv_invalid",
        "门店信息无法写入收款码，请缩短名称或城市名。",
        Some("The store's details do not fit a pay code; shorten its name or city."),
    ),
    (
        "url_too_long",
        "网址过长。",
        Some("The address is too long."),
    ),
    (
        "kind_invalid",
        "请选择券的类型。",
        Some("Choose the kind of coupon."),
    ),
    (
        "amount_off_required",
        "满减券须填写减免金额。",
        Some("A money-off coupon needs the amount it takes off."),
    ),
    (
        "percent_off_required",
        "折扣券须填写折扣。",
        Some("A percent-off coupon needs its discount."),
    ),
    (
        "audience_invalid",
        "请选择券的发放对象。",
        Some("Choose who may claim the coupon."),
    ),
    (
        "invalid_audience",
        "请选择消息的接收对象。",
        Some("Choose who receives the message."),
    ),
    ("currency_mismatch", "币种不一致。", None),
    (
        "currency_invalid",
        "币种无效。",
        Some("Choose a currency such as CNY."),
    ),
    ("qr_not_found", "找不到这个码。", None),
    (
        "code_busy",
        "这个码正在由另一个请求生成，请稍后再试。",
        None,
    ),
    // Whatever the request: said the same everywhere.
    ("already_applied", "这项操作已经完成过了。", None),
    (
        "resource_conflict",
        "与已有的记录冲突，请检查后重试。",
        None,
    ),
    ("timeout", "处理超时，请稍后再试。", None),
    ("coupon_invalid", "请选择一张券。", Some("Choose a coupon.")),
    ("too_many_rules", "充值赠送规则过多。", None),
    (
        "min_top_up_invalid",
        "充值门槛超出范围。",
        Some("The top-up threshold is out of range."),
    ),
    (
        "points_per_yuan_invalid",
        "每元积分数超出范围。",
        Some("The points per yuan are out of range."),
    ),
    (
        "min_spend_invalid",
        "等级门槛须为零或正数。",
        Some("A tier's threshold is zero or more."),
    ),
    (
        "percent_off_invalid",
        "会员折扣超出范围。",
        Some("The member discount is out of range."),
    ),
    (
        "coupon_template_id_invalid",
        "请选择一张券。",
        Some("Choose a coupon."),
    ),
    (
        "bonus_budget_insufficient",
        "商家的赠送预算不足，暂时不能赠送。",
        None,
    ),
    ("inbox_item_not_found", "找不到该消息。", None),
    (
        "invalid_action",
        "请选择关注或取消关注。",
        Some("Choose follow or unfollow."),
    ),
    ("user_not_found", "找不到该顾客。", None),
    ("hold_not_expired", "预授权尚未到期。", None),
    ("payment_not_capturable", "该笔支付不在待确认状态。", None),
    (
        "payment_not_cancelable",
        "该笔支付不能撤销，请改为退款。",
        None,
    ),
    ("amount_exceeds_hold", "确认金额不能超过预授权金额。", None),
    ("cashier_only", "只有商家的收银员可以这样做。", None),
    (
        "qr_not_allowed",
        "收银台请扫描顾客的付款码或记录现金。",
        None,
    ),
    // WiFi
    ("invalid_mac", "设备地址格式不对。", None),
    (
        "mac_required",
        "路由器未提供设备地址，请重新连接 WiFi。",
        Some("The router did not say which device this is; connect to the WiFi again."),
    ),
    ("wifi_key_not_found", "该门店尚未设置 WiFi。", None),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn each_code_is_said_once_and_every_text_is_written() {
        let mut seen = HashSet::new();
        for (code, zh, en) in REFUSALS {
            assert!(seen.insert(*code), "{code} twice");
            assert!(!zh.trim().is_empty(), "{code}");
            assert!(
                zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{code}: {zh}"
            );
            if let Some(en) = en {
                assert!(en.is_ascii() && en.ends_with('.'), "{code}: {en}");
            }
            assert_eq!(
                zh.contains("{field}"),
                en.is_some_and(|en| en.contains("{field}"))
            );
        }
    }

    #[test]
    fn each_detailed_sentence_is_kept_once_and_has_a_plain_one_beside_it() {
        let mut seen = HashSet::new();
        for (code, reason, zh) in DETAILED {
            assert!(seen.insert((*code, *reason)), "{code} {reason:?} twice");
            assert!(
                REFUSALS.iter().any(|(c, _, _)| c == code),
                "{code} has no plain sentence for a refusal without its figures"
            );
            // A sentence says more than the plain one: a figure, or the reason it is kept for.
            assert!(reason.is_some() || zh.contains('{'), "{code}: {zh}");
            assert!(
                !zh.contains("{field}") && !zh.contains("{reason}"),
                "{code}"
            );
            assert_eq!(zh.matches('{').count(), zh.matches('}').count(), "{code}");
        }
    }

    #[test]
    fn a_page_says_a_kept_refusal_in_its_language_and_others_in_the_services_words() {
        let zh = T { lang: Lang::Zh };
        let en = T { lang: Lang::En };
        // A parser's reason never reaches a page.
        let e = Error::invalid(
            "pickup_at_invalid",
            "pickup_at must be an RFC 3339 time (failed to parse year).",
        );
        assert_eq!(said(zh, &e), "请选择一个取餐时间。");
        assert_eq!(said(en, &e), "Choose a pickup time.");
        // Kept in Chinese, the English sentence is the service's own.
        let e = Error::invalid(
            "amount_exceeds_due",
            "Only ¥45.00 is left to pay on this order.",
        );
        assert_eq!(said(zh, &e), "金额超过了订单待付金额。");
        assert_eq!(said(en, &e), "Only ¥45.00 is left to pay on this order.");
        // With its figure kept, the Chinese sentence names it too.
        let e = e.arg("due", "¥45.00");
        assert_eq!(said(zh, &e), "这笔订单只剩 ¥45.00 待付。");
        assert_eq!(said(en, &e), "Only ¥45.00 is left to pay on this order.");
        // A figure the sentence names but the refusal lacks: the plain sentence.
        let e = Error::conflict("coupon_limit_reached", "You already hold 2 of this coupon.")
            .arg("held", 2);
        assert_eq!(said(zh, &e), "你已达到该券的领取上限。");
        let e = e.arg("limit", 2);
        assert_eq!(said(zh, &e), "你已持有 2 张该券，每人限领 2 张。");
        // A code refused for several reasons: the sentence kept for its reason, else the plain one.
        let e = Error::invalid(
            "coupon_not_applicable",
            "This coupon needs a spend of at least ¥30.00 (this bill is ¥25.00).",
        )
        .arg("reason", "min_spend")
        .arg("min", "¥30.00")
        .arg("base", "¥25.00");
        assert_eq!(said(zh, &e), "满 ¥30.00 才能用这张券，这笔消费为 ¥25.00。");
        let e = Error::invalid(
            "coupon_not_applicable",
            "This coupon is not good at this store.",
        )
        .arg("reason", "store");
        assert_eq!(said(zh, &e), "这张券不能在这家门店使用。");
        assert_eq!(said(en, &e), "This coupon is not good at this store.");
        let e = Error::invalid("coupon_not_applicable", "A reason not kept.").arg("reason", "new");
        assert_eq!(said(zh, &e), "这张券不能用于这笔消费。");
        // A field is named by its form's label.
        let e = Error::invalid("invalid_number", "lat must be a number.").param("lat");
        assert_eq!(said(zh, &e), "“纬度”须为数字。");
        assert_eq!(said(en, &e), "Latitude must be a number.");
        // Not kept: the service's words in both.
        let e = Error::invalid("something_new", "Something new went wrong.");
        assert_eq!(said(zh, &e), "Something new went wrong.");
        assert_eq!(said(en, &e), "Something new went wrong.");
    }
}
