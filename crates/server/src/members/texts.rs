//! The members pages' texts in zh-CN and en (looked up by `web::T` after the shared table).

/// (key, zh-CN, en)
pub static TEXTS: &[(&str, &str, &str)] = &[
    ("member.cards", "会员卡", "Member cards"),
    (
        "member.no_cards",
        "还没有会员卡。在支持会员的门店一键加入。",
        "No member cards yet. Join with one tap at a shop that runs a program.",
    ),
    ("member.join", "一键加入会员", "Join as a member"),
    (
        "member.join_hint",
        "这家店有会员卡：充值有赠送，消费积分。",
        "This shop has a member card: bonus on top-ups, points on spending.",
    ),
    ("member.balance", "余额（本金）", "Balance (paid in)"),
    ("member.bonus", "赠送余额", "Bonus balance"),
    ("member.points", "积分", "Points"),
    ("member.tier", "等级", "Tier"),
    ("member.no_tier", "普通会员", "Member"),
    ("member.top_up", "从钱包充值", "Top up from the wallet"),
    ("member.top_up_submit", "充值", "Top up"),
    ("member.bonus_rules", "充值赠送", "Top-up bonuses"),
    ("member.bonus_rule", "充 {} 送 {}", "Top up {} get {}"),
    ("member.history", "卡片记录", "Card history"),
    ("member.no_history", "还没有记录。", "Nothing yet."),
    ("member.close", "退卡", "Leave and close the card"),
    (
        "member.close_hint",
        "退卡时本金退回钱包，赠送余额作废。",
        "Leaving returns the paid-in balance to your wallet; the bonus is forfeited.",
    ),
    ("member.closed", "已退卡", "Closed"),
    ("member.pay_with", "支付方式", "Pay with"),
    ("member.pay_wallet", "钱包", "Wallet"),
    ("member.pay_card", "会员卡", "Member card"),
    ("member.kind.top_up", "充值", "Top-up"),
    ("member.kind.payment", "消费", "Payment"),
    ("member.kind.refund", "退款", "Refund"),
    ("member.kind.close", "退卡", "Closed"),
];
