//! Page texts in zh-CN and en. The language comes from the `lang` cookie (set by the switcher),
//! else from `Accept-Language`, else zh-CN.

use std::collections::HashMap;
use std::sync::OnceLock;

/// A page language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "zh-CN" | "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The first supported language in an `Accept-Language` header (quality order respected).
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut langs: Vec<(f32, Lang)> = header
            .split(',')
            .filter_map(|part| {
                let mut it = part.trim().split(';');
                let tag = it.next()?.trim().to_ascii_lowercase();
                let q = it
                    .find_map(|p| {
                        p.trim()
                            .strip_prefix("q=")
                            .and_then(|v| v.parse::<f32>().ok())
                    })
                    .unwrap_or(1.0);
                let lang = if tag.starts_with("zh") {
                    Lang::Zh
                } else if tag.starts_with("en") {
                    Lang::En
                } else {
                    return None;
                };
                Some((q, lang))
            })
            .collect();
        langs.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
        langs.first().map(|(_, l)| *l)
    }

    /// The other language (for the switcher).
    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    /// The switcher's label for this language.
    pub fn label(self) -> &'static str {
        match self {
            Lang::Zh => "中文",
            Lang::En => "English",
        }
    }
}

/// Translates keys for one language; templates call `t.s("key")`.
#[derive(Clone, Copy, Debug)]
pub struct T {
    pub lang: Lang,
}

impl T {
    pub fn s(&self, key: &str) -> &'static str {
        match by_key().get(key) {
            Some((zh, en)) => match self.lang {
                Lang::Zh => zh,
                Lang::En => en,
            },
            None => "?",
        }
    }

    /// The text of a value's name (a role, a code's kind) under `prefix` (`prefix` + `name` is
    /// the key), or the name itself where no text is kept for it.
    pub fn named(&self, prefix: &str, name: &str) -> String {
        match self.s(&format!("{prefix}{name}")) {
            "?" => name.to_owned(),
            text => text.to_owned(),
        }
    }
}

/// Every kept text by key, built on first use: a page asks for dozens, and the tables hold
/// about a thousand.
fn by_key() -> &'static HashMap<&'static str, (&'static str, &'static str)> {
    static BY_KEY: OnceLock<HashMap<&'static str, (&'static str, &'static str)>> = OnceLock::new();
    BY_KEY.get_or_init(|| {
        let mut map = HashMap::new();
        for (k, zh, en) in TEXTS
            .iter()
            .chain(crate::orders::texts::TEXTS)
            .chain(crate::members::texts::TEXTS)
            .chain(crate::marketing::texts::TEXTS)
        {
            // Keys are unique (a test checks); were one not, the first would stand, as before.
            map.entry(*k).or_insert((*zh, *en));
        }
        map
    })
}

/// (key, zh-CN, en)
static TEXTS: &[(&str, &str, &str)] = &[
    ("app.name", "o2o 到店", "o2o"),
    (
        "app.tagline",
        "扫码点单、到店支付、领券、会员",
        "Scan, order, pay and save at shops near you",
    ),
    ("nav.home", "首页", "Home"),
    ("nav.me", "我的", "Me"),
    ("nav.login", "登录", "Log in"),
    ("nav.logout", "退出登录", "Log out"),
    ("nav.console", "商家后台", "Merchant console"),
    ("home.nearby", "附近门店", "Stores near you"),
    (
        "home.locating",
        "正在获取你的位置…",
        "Finding where you are…",
    ),
    (
        "home.default_center",
        "未获取到位置，显示人民广场附近的门店。",
        "Location unavailable: showing stores near People's Square.",
    ),
    ("home.use_location", "使用我的位置", "Use my location"),
    ("home.none", "附近暂无门店。", "No stores nearby yet."),
    ("home.recent", "最近看过", "Recently viewed"),
    ("store.open", "营业中", "Open now"),
    ("store.closed", "已打烊", "Closed"),
    ("store.verified", "已认证商家", "Verified merchant"),
    ("store.unverified", "未认证商家", "Unverified merchant"),
    ("store.hours", "营业时间", "Opening hours"),
    ("store.address", "地址", "Address"),
    ("store.distance", "距离", "Distance"),
    (
        "store.not_found",
        "找不到这家门店。",
        "This store does not exist.",
    ),
    ("login.title", "手机号登录", "Log in with your phone"),
    ("login.phone", "手机号", "Mobile number"),
    ("login.send_code", "获取验证码", "Send code"),
    ("login.code", "验证码", "Code"),
    (
        "login.code_sent",
        "验证码已发送至尾号",
        "We sent a code to the number ending",
    ),
    ("login.submit", "登录", "Log in"),
    (
        "login.guest_kept",
        "登录后，你以游客身份做过的事都会保留。",
        "Anything you did as a guest stays with you after logging in.",
    ),
    ("me.title", "我的", "Me"),
    ("me.phone", "手机尾号", "Phone ending"),
    ("me.birthday", "生日（月-日）", "Birthday (month-day)"),
    ("me.birthday_save", "保存生日", "Save birthday"),
    (
        "me.birthday_hint",
        "会员店会在您生日当天送上生日券；生日设置后不可更改。",
        "Shops whose member card you hold send a birthday coupon on the day; it cannot be changed once set.",
    ),
    (
        "me.guest",
        "你正在以游客身份浏览。",
        "You are browsing as a guest.",
    ),
    ("console.title", "商家后台", "Merchant console"),
    ("console.signup", "商家入驻", "Sign up your business"),
    ("console.login", "商家登录", "Merchant login"),
    (
        "console.login_staff_only",
        "商家后台仅供商家员工登录；平台运营账号请使用管理接口（/v1/admin）。",
        "The console is for a merchant's staff. Platform operators use the admin API (/v1/admin).",
    ),
    ("console.email", "邮箱", "Email"),
    (
        "console.password",
        "密码（至少 8 位）",
        "Password (8+ characters)",
    ),
    ("console.merchant_name", "商家名称", "Business name"),
    ("console.mode", "经营模式", "Mode"),
    (
        "console.mode.trading",
        "交易（收款）",
        "Trading (takes payments)",
    ),
    (
        "console.mode.listing",
        "仅展示（不收款）",
        "Listing (no payments)",
    ),
    ("console.create_account", "创建商家", "Create merchant"),
    (
        "console.have_account",
        "已有账号？登录",
        "Have an account? Log in",
    ),
    (
        "console.no_account",
        "还没有账号？入驻",
        "No account yet? Sign up",
    ),
    ("console.stores", "门店", "Stores"),
    ("console.add_store", "新增门店", "Add a store"),
    ("console.store_name", "门店名称", "Store name"),
    ("console.lat", "纬度", "Latitude"),
    ("console.lng", "经度", "Longitude"),
    ("console.timezone", "时区", "Time zone"),
    (
        "console.opening_hours",
        "营业时间（OSM 格式）",
        "Opening hours (OSM syntax)",
    ),
    (
        "console.delivery_radius",
        "配送半径（米）",
        "Delivery radius (m)",
    ),
    ("console.fence_radius", "到店范围（米）", "Fence radius (m)"),
    ("console.save", "保存", "Save"),
    ("console.tables", "桌台", "Tables"),
    ("console.add_table", "新增桌台", "Add table"),
    ("console.table_label", "桌号", "Table label"),
    ("console.no_tables", "还没有桌台。", "No tables yet."),
    ("console.no_stores", "还没有门店。", "No stores yet."),
    ("console.staff", "员工", "Staff"),
    ("console.add_staff", "新增员工", "Add staff"),
    ("console.role", "角色", "Role"),
    ("console.role.owner", "店主", "Owner"),
    ("console.role.manager", "店长", "Manager"),
    ("console.role.cashier", "收银员", "Cashier"),
    ("console.api_keys", "API 密钥", "API keys"),
    ("console.create_key", "创建密钥", "Create key"),
    ("console.key_name", "用途", "Name"),
    (
        "console.key_once",
        "请立即复制：此密钥只显示这一次。",
        "Copy it now: this secret is shown only once.",
    ),
    ("console.revoke", "吊销", "Revoke"),
    ("console.revoked", "已吊销", "Revoked"),
    ("console.signed_in_as", "当前登录", "Signed in as"),
    ("webhooks.title", "Webhook 通知", "Webhooks"),
    (
        "webhooks.managers_only",
        "只有店长和店主可以管理 Webhook。",
        "Only managers and owners manage webhooks.",
    ),
    (
        "webhooks.none",
        "还没有 Webhook 地址。登记一个，订单和付款事件就会推送到你的系统。",
        "No webhook endpoints yet. Register one and order and payment events reach your own system.",
    ),
    (
        "webhooks.secret_once",
        "签名密钥只显示这一次，请立即复制，用它验证每条推送的签名。",
        "Copy the signing secret now: it is shown only once. Use it to verify each delivery's signature.",
    ),
    ("webhooks.enabled", "启用中", "Enabled"),
    ("webhooks.disabled", "已停用", "Disabled"),
    (
        "webhooks.disabled_because",
        "停用原因：",
        "Disabled because:",
    ),
    ("webhooks.enable", "重新启用", "Enable"),
    ("webhooks.delete", "删除", "Delete"),
    ("webhooks.events", "事件", "Events"),
    (
        "webhooks.events_hint",
        "（不选则推送全部事件）",
        "(none chosen: every event)",
    ),
    (
        "webhooks.no_deliveries",
        "还没有推送记录。",
        "Nothing delivered yet.",
    ),
    ("webhooks.event", "事件", "Event"),
    ("webhooks.delivery_status", "状态", "Status"),
    ("webhooks.attempts", "尝试次数", "Attempts"),
    ("webhooks.last_answer", "最近应答", "Last answer"),
    ("webhooks.next_attempt", "下次重试", "Next attempt"),
    ("webhooks.status.pending", "等待重试", "Pending"),
    ("webhooks.status.succeeded", "成功", "Delivered"),
    ("webhooks.status.failed", "失败", "Failed"),
    ("webhooks.replay", "重新推送", "Send again"),
    ("webhooks.new", "登记 Webhook 地址", "Register an endpoint"),
    ("webhooks.url", "接收地址", "URL"),
    ("webhooks.create", "登记", "Register"),
    ("codes.pay_to", "向商家付款", "Pay this shop"),
    ("codes.amount", "金额（元）", "Amount (CNY)"),
    ("codes.pay", "付款", "Pay"),
    (
        "codes.check_merchant",
        "付款前请核对商家名称。",
        "Check the merchant's name before you pay.",
    ),
    (
        "codes.listing_only",
        "该商家暂不支持在线付款。",
        "This merchant does not take payments here.",
    ),
    ("codes.table", "桌号", "Table"),
    (
        "codes.table_welcome",
        "欢迎光临，请在本桌点单。",
        "Welcome! Order from this table.",
    ),
    ("codes.view_store", "查看门店", "View the store"),
    ("codes.product", "商品", "Product"),
    (
        "codes.wifi",
        "登录即可连接门店免费 WiFi。",
        "Log in to use the store's free WiFi.",
    ),
    (
        "codes.warning_title",
        "这不是有效的 o2o 码",
        "This is not a valid o2o code",
    ),
    (
        "codes.unknown",
        "无法识别此二维码，它可能被篡改或覆盖。",
        "This code is not recognised; it may have been tampered with or pasted over.",
    ),
    (
        "codes.revoked",
        "此二维码已被商家停用。",
        "The merchant has withdrawn this code.",
    ),
    (
        "codes.do_not_pay",
        "请勿付款，并告知店员。",
        "Do not pay; tell the staff.",
    ),
    ("codes.pay_code", "付款码", "Pay code"),
    (
        "codes.pay_code_hint",
        "向收银员出示此码付款，每个码只能使用一次。",
        "Show this code to the cashier; each code works once.",
    ),
    (
        "codes.refreshes",
        "付款码每分钟自动更新。",
        "The code refreshes every minute.",
    ),
    ("console.codes", "二维码", "Codes"),
    (
        "console.qr_sheet",
        "打印全部桌码（PDF）",
        "Print all table codes (PDF)",
    ),
    ("console.code.store_pay", "门店收款码", "Store pay code"),
    ("console.code.wifi", "WiFi 码", "WiFi code"),
    ("console.code.table", "桌码", "Table code"),
    ("console.code.product", "商品码", "Product code"),
    ("console.code.campaign", "活动码", "Campaign code"),
    (
        "console.more_codes",
        "仅显示最新 100 个二维码；全部请用 GET /v1/qr-codes。",
        "Showing the newest 100 codes; GET /v1/qr-codes lists them all.",
    ),
    ("console.make_code", "生成", "Make code"),
    // Followers, messages and the inbox; the WiFi login.
    ("inbox.title", "消息", "Inbox"),
    ("inbox.unread", "未读", "Unread"),
    (
        "inbox.empty",
        "还没有消息。关注商家后，它发的消息会出现在这里。",
        "No messages yet. Follow a shop and its messages appear here.",
    ),
    ("inbox.mark_read", "标为已读", "Mark read"),
    ("inbox.new", "新", "New"),
    ("follow.follow", "关注", "Follow"),
    ("follow.unfollow", "取消关注", "Unfollow"),
    ("follow.following", "已关注", "Following"),
    (
        "follow.hint",
        "关注后，商家的消息会发到你的「消息」，可随时取消关注。",
        "Follow to get this shop's messages in your inbox; unfollow any time.",
    ),
    ("follow.login_to_follow", "登录后关注", "Log in to follow"),
    ("console.messages", "消息", "Messages"),
    ("messages.title", "群发消息", "Messages to followers"),
    ("messages.followers", "关注者", "Followers"),
    ("messages.reachable", "可送达", "Reachable"),
    ("messages.new", "写消息", "New message"),
    ("messages.msg_title", "标题", "Title"),
    ("messages.body", "内容", "Message"),
    ("messages.audience", "发送对象", "Audience"),
    ("messages.audience.followers", "全部关注者", "All followers"),
    ("messages.audience.members", "全部会员", "All members"),
    ("messages.audience.tier", "会员等级：", "Members of tier: "),
    ("messages.send", "发送", "Send"),
    ("messages.sent_list", "已发消息", "Sent messages"),
    ("messages.none", "还没有发过消息。", "No messages yet."),
    ("messages.status.queued", "排队中", "Queued"),
    ("messages.status.sending", "发送中", "Sending"),
    ("messages.status.sent", "已送达", "Delivered"),
    ("messages.progress", "已送达", "Delivered"),
    ("wifi.title", "免费 WiFi", "Free WiFi"),
    (
        "wifi.intro",
        "用手机号登录即可免费上网。",
        "Log in with your phone number to get online for free.",
    ),
    ("wifi.follow", "关注", "Follow"),
    (
        "wifi.follow_hint",
        "可选：接收该商家的消息，可随时取消关注。",
        "Optional: get this shop's messages; unfollow any time.",
    ),
    ("wifi.already_following", "你已关注", "You follow"),
    ("wifi.connect", "连接上网", "Get online"),
    ("wifi.online", "已连接，可以上网了", "You're online"),
    ("wifi.until", "有效期至", "Online until"),
    ("wifi.continue", "继续访问", "Continue"),
    (
        "pay.from_wallet",
        "从钱包余额付款",
        "Paid from your wallet balance",
    ),
    (
        "pay.top_up_first",
        "余额不足？去充值",
        "Not enough in your wallet? Top up",
    ),
    (
        "pay.error.amount",
        "请输入正确的金额，例如 25.00。",
        "Enter an amount in yuan, such as 25.00.",
    ),
    (
        "pay.error.too_large",
        "金额超出单笔上限。",
        "That amount is over the limit for one payment.",
    ),
    (
        "pay.error.insufficient",
        "钱包余额不足，未扣款。",
        "Your wallet does not hold enough; nothing was paid.",
    ),
    ("receipt.title", "付款凭证", "Receipt"),
    ("receipt.merchant", "商家", "Merchant"),
    ("receipt.store", "门店", "Store"),
    ("receipt.time", "时间", "Time"),
    ("receipt.refunded", "已退款", "Refunded"),
    ("receipt.coupon_discount", "优惠券抵扣", "Coupon"),
    ("receipt.member_discount", "会员折扣", "Member discount"),
    ("receipt.number", "单号", "Payment number"),
    ("status.succeeded", "支付成功", "Paid"),
    ("status.refunded", "已全额退款", "Refunded"),
    ("status.partially_refunded", "部分退款", "Partly refunded"),
    ("status.requires_capture", "待确认", "Awaiting capture"),
    ("status.canceled", "已取消", "Canceled"),
    ("status.failed", "支付失败", "Failed"),
    ("wallet.title", "钱包", "Wallet"),
    ("wallet.balance", "可用余额", "Balance"),
    ("wallet.held", "冻结中", "Held"),
    ("wallet.top_up", "充值", "Top up"),
    (
        "wallet.top_up_submit",
        "从银行卡充值",
        "Top up from the bank",
    ),
    (
        "wallet.sandbox",
        "测试环境：资金来自沙箱银行。",
        "Sandbox: the money comes from the sandbox bank.",
    ),
    ("wallet.entries", "收支明细", "Activity"),
    ("wallet.no_entries", "还没有收支记录。", "No activity yet."),
    ("wallet.kind.top_up", "充值", "Top-up"),
    ("wallet.kind.withdrawal", "提现", "Withdrawal"),
    ("wallet.kind.top_up_refund", "充值退款", "Top-up refunded"),
    ("wallet.kind.payment", "付款", "Payment"),
    ("wallet.kind.refund", "退款", "Refund"),
    ("wallet.kind.hold", "冻结", "Hold"),
    ("wallet.kind.release", "解冻", "Released"),
    ("wallet.kind.other", "其他", "Other"),
    ("counter.title", "收银台", "Counter"),
    ("counter.store", "门店", "Store"),
    ("counter.switch", "切换", "Switch"),
    ("counter.pay_code", "顾客付款码", "Customer's pay code"),
    (
        "counter.pay_code_hint",
        "扫码或输入 18 位数字",
        "Scan, or type the 18 digits",
    ),
    ("counter.take", "收款", "Take payment"),
    ("counter.cash", "记录现金", "Record cash"),
    ("counter.today", "今日收款", "Today's payments"),
    ("counter.none", "今天还没有收款。", "No payments yet today."),
    ("counter.refund", "退款", "Refund"),
    ("counter.refund_all", "全额", "All"),
    ("counter.method.cash", "现金", "Cash"),
    ("counter.method.pay_code", "付款码", "Pay code"),
    ("counter.method.qr", "扫码付", "Scanned code"),
    ("counter.received", "收款", "Payment received"),
    ("counter.received_speech", "收款", "Payment received, "),
    ("counter.speech_unit", "元", " yuan"),
    ("counter.listening", "等待收款…", "Waiting for payments…"),
    (
        "counter.offline",
        "实时播报已断开，请刷新页面。",
        "Live announcements stopped; reload the page.",
    ),
    (
        "counter.error.pay_code",
        "付款码应为 19 开头的 18 位数字。",
        "A pay code is 18 digits starting with 19.",
    ),
    ("balance.title", "账户余额", "Balance"),
    ("balance.pending", "待结算", "Pending"),
    ("balance.available", "可提现", "Available"),
    ("balance.cash", "现金（店内）", "Cash (in the till)"),
    (
        "balance.explain",
        "扫码和付款码收款先进入待结算，结算后转为可提现；现金由门店自行保管。",
        "Scanned and pay-code payments are pending until settlement, then available; cash stays in the store.",
    ),
    ("balance.timezone", "结算时区", "Settlement time zone"),
    ("balance.timezone_save", "保存", "Save"),
    (
        "balance.timezone_explain",
        "每个营业日按此时区计算，次日结算前一日的收款；留空则使用第一家门店的时区。",
        "Business days are counted in this zone, and each day settles what came in the day before; left empty, the first store's zone is used.",
    ),
    ("statement.title", "日账单", "Daily statement"),
    ("statement.date", "日期", "Date"),
    ("statement.show", "查看", "Show"),
    ("statement.gross", "收款", "Gross"),
    ("statement.refunds", "退款", "Refunds"),
    ("statement.fees", "平台服务费", "Platform fees"),
    ("statement.net", "净收入", "Net"),
    ("statement.cash", "其中现金", "Of which cash"),
    ("statement.csv", "下载 CSV", "Download CSV"),
    ("error.title", "出错了", "Something went wrong"),
    ("error.back", "返回首页", "Back to home"),
    (
        "error.not_found",
        "页面不存在。",
        "This page does not exist.",
    ),
    (
        "error.choice",
        "请从给出的选项中选择。",
        "Choose one of the options given.",
    ),
    (
        "error.form",
        "无法读取提交的表单，请返回重试。",
        "The form sent could not be read; go back and try again.",
    ),
    (
        "error.csrf",
        "表单已过期，请返回重试。",
        "This form has expired; go back and try again.",
    ),
    ("menu.title", "菜单", "Menu"),
    ("menu.other", "其他", "More"),
    ("menu.sold_out", "已售罄", "Sold out"),
    ("menu.empty", "暂无菜单。", "No menu yet."),
    (
        "menu.table_hint",
        "在本桌浏览菜单",
        "The menu for your table",
    ),
    ("catalog.title", "商品与菜单", "Products and menu"),
    ("catalog.store", "门店", "Store"),
    ("catalog.products", "商品", "Products"),
    ("catalog.no_products", "还没有商品。", "No products yet."),
    ("catalog.base_price", "价格（元）", "Price (yuan)"),
    ("catalog.save", "保存价格", "Save price"),
    (
        "catalog.store_price",
        "本店价格（元，可空）",
        "Store price (yuan, optional)",
    ),
    ("catalog.stock", "库存（可空）", "Stock (optional)"),
    ("catalog.available", "本店有售", "Available here"),
    ("catalog.save_store", "保存本店设置", "Save for this store"),
    ("catalog.photo", "照片", "Photo"),
    ("catalog.upload", "上传照片", "Upload photo"),
    ("catalog.add_product", "添加商品", "Add product"),
    ("catalog.name_zh", "中文名", "Chinese name"),
    ("catalog.name_en", "英文名", "English name"),
    ("catalog.description", "描述", "Description"),
    ("catalog.category", "分类", "Category"),
    (
        "catalog.barcode",
        "条码（EAN-13 / UPC-A）",
        "Barcode (EAN-13 / UPC-A)",
    ),
    ("catalog.categories", "分类", "Categories"),
    ("catalog.add_category", "添加分类", "Add category"),
    ("console.catalog", "商品", "Catalog"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_supported_language() {
        assert_eq!(Lang::from_accept_language("en-US,en;q=0.9"), Some(Lang::En));
        assert_eq!(
            Lang::from_accept_language("fr;q=1, zh-CN;q=0.8, en;q=0.5"),
            Some(Lang::Zh)
        );
        assert_eq!(Lang::from_accept_language("fr"), None);
    }

    #[test]
    fn every_key_has_both_languages_and_is_unique() {
        let mut seen = std::collections::HashSet::new();
        for (k, zh, en) in TEXTS
            .iter()
            .chain(crate::orders::texts::TEXTS)
            .chain(crate::members::texts::TEXTS)
            .chain(crate::marketing::texts::TEXTS)
        {
            assert!(seen.insert(*k), "duplicate key {k}");
            assert!(!zh.is_empty() && !en.is_empty(), "{k}");
        }
        assert_eq!(T { lang: Lang::En }.s("nav.login"), "Log in");
        assert_eq!(T { lang: Lang::Zh }.s("nav.login"), "登录");
    }
}
