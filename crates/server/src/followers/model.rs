//! Followers' API shapes and the checked input types: a consent channel, a message's title,
//! body and audience, an inbox item id.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a consumer said "follow": the merchant's page, the WiFi login, a campaign code, or an
/// app calling the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = FollowChannel)]
pub enum Channel {
    Page,
    Wifi,
    Campaign,
    Api,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Page => "page",
            Channel::Wifi => "wifi",
            Channel::Campaign => "campaign",
            Channel::Api => "api",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "page" => Some(Channel::Page),
            "wifi" => Some(Channel::Wifi),
            "campaign" => Some(Channel::Campaign),
            "api" => Some(Channel::Api),
            _ => None,
        }
    }
}

/// `POST /v1/merchants/{id}/followers`: the consumer's explicit consent to follow.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowRequest {
    /// Where the consumer consented (default `api`).
    pub channel: Option<Channel>,
    /// The store where the consumer consented, when there was one (a store of this merchant).
    pub store_id: Option<String>,
}

/// The merchant a consumer follows, as the consumer sees it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FollowedMerchant {
    pub id: String,
    pub name: String,
    pub verified: bool,
}

/// A consumer's follow of one merchant.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Follow {
    /// `fol_…`
    pub id: String,
    pub merchant: FollowedMerchant,
    /// The channel the consumer consented through.
    pub channel: Channel,
    pub store_id: Option<String>,
    /// When the consumer consented (RFC 3339).
    pub followed_at: String,
    /// The consumer muted this merchant: its messages do not reach the inbox.
    pub muted: bool,
}

/// The answer to unfollowing (also when there was nothing to undo).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Unfollowed {
    pub merchant_id: String,
    pub following: bool,
}

/// One follower of a merchant, as the merchant sees it: no phone number, only the consumer id.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Follower {
    /// `fol_…`
    pub id: String,
    pub consumer_id: String,
    pub channel: Channel,
    pub store_id: Option<String>,
    pub followed_at: String,
    pub muted: bool,
}

/// How many follow a merchant, and how many of them a message reaches (not muted).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FollowerCount {
    pub merchant_id: String,
    pub followers: i64,
    pub reachable: i64,
}

/// Whether the consumer muted a merchant.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MuteState {
    pub merchant_id: String,
    pub muted: bool,
}

/// `POST /v1/merchants/{id}/messages`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMessage {
    /// 1 to 64 characters.
    pub title: String,
    /// 1 to 2,000 characters; line breaks are kept.
    pub body: String,
    /// `followers`, `members` (holders of an open card of the merchant's program) or
    /// `tier:<name>` (holders whose card is in that tier).
    pub audience: String,
    /// A coupon template of the merchant's (`cpt_…`) to attach: followers claim it from the
    /// inbox. Another merchant's or an unknown template is `404 template_not_found`.
    pub coupon_template_id: Option<String>,
}

/// A message's delivery state: `queued` (stored, not started), `sending` (the audience is fixed
/// and inbox rows are being written in chunks), `sent` (every recipient has it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Queued,
    Sending,
    Sent,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Queued => "queued",
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
        }
    }

    pub fn parse(s: &str) -> MessageStatus {
        match s {
            "sending" => MessageStatus::Sending,
            "sent" => MessageStatus::Sent,
            _ => MessageStatus::Queued,
        }
    }
}

/// A merchant's message and its delivery progress.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Message {
    /// `msg_…`
    pub id: String,
    pub merchant_id: String,
    pub title: String,
    pub body: String,
    pub audience: String,
    pub coupon_template_id: Option<String>,
    pub status: MessageStatus,
    /// The audience's size when sending started (those who had not muted); `null` while
    /// queued.
    pub recipients: Option<i64>,
    /// Inboxes the message has reached so far. It can end below `recipients` when someone
    /// unfollowed or muted while it was being sent: withdrawn consent always wins.
    pub delivered: i64,
    pub created_at: String,
    pub sent_at: Option<String>,
}

/// One message in a consumer's inbox.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct InboxItem {
    /// `inb_…`
    pub id: String,
    pub message_id: String,
    pub merchant: FollowedMerchant,
    pub title: String,
    pub body: String,
    /// The coupon template the message carries (`cpt_…`), claimable with
    /// `POST /v1/coupon-templates/{id}/claims` `{"via": "campaign"}`.
    pub coupon_template_id: Option<String>,
    pub created_at: String,
    pub read: bool,
    pub read_at: Option<String>,
}

/// A page of the inbox, newest first, with the number of unread items in the whole inbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct Inbox {
    pub data: Vec<InboxItem>,
    pub has_more: bool,
    pub unread_count: i64,
}

/// Who a message is sent to: the merchant's followers, the holders of an open card of its
/// member program, or the holders whose card reached one tier. Holding a card is the
/// consumer's own joining of the program, so members hear member messages as followers hear
/// follower messages; muting the merchant silences both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audience {
    Followers,
    Members,
    /// Card holders whose tier is exactly this name.
    Tier(String),
}

impl Audience {
    pub fn as_string(&self) -> String {
        match self {
            Audience::Followers => "followers".into(),
            Audience::Members => "members".into(),
            Audience::Tier(t) => format!("tier:{t}"),
        }
    }

    /// `followers`, `members` or `tier:<name>` (a tier name is 1 to 32 characters).
    pub fn parse(raw: &str) -> Result<Audience> {
        match raw {
            "followers" => Ok(Audience::Followers),
            "members" => Ok(Audience::Members),
            tier if tier.starts_with("tier:") => {
                let name = &tier["tier:".len()..];
                let n = name.chars().count();
                if n == 0 || n > 32 || name.chars().any(char::is_control) {
                    return Err(invalid_audience());
                }
                Ok(Audience::Tier(name.to_owned()))
            }
            _ => Err(invalid_audience()),
        }
    }

    /// The tier the audience is limited to, if any.
    pub fn tier(&self) -> Option<&str> {
        match self {
            Audience::Tier(t) => Some(t),
            _ => None,
        }
    }
}

fn invalid_audience() -> Error {
    Error::invalid(
        "invalid_audience",
        "audience must be \"followers\", \"members\" or \"tier:<name>\".",
    )
    .param("audience")
}

/// Checked text of a message: no control characters (line breaks allowed in the body).
pub fn parse_text(raw: &str, max_chars: usize, param: &'static str, lines: bool) -> Result<String> {
    let text = raw.trim();
    let n = text.chars().count();
    let bad_char = text
        .chars()
        .any(|c| c.is_control() && !(lines && (c == '\n' || c == '\r' || c == '\t')));
    if n == 0 || n > max_chars || bad_char {
        return Err(Error::invalid(
            "invalid_value",
            format!("{param} must be 1 to {max_chars} characters of text."),
        )
        .param(param));
    }
    Ok(text.replace("\r\n", "\n"))
}

/// The largest title and body of a message, in characters.
pub const MAX_TITLE_CHARS: usize = 64;
pub const MAX_BODY_CHARS: usize = 2_000;

/// An inbox item id: `inb_` + a message id's 26 characters + a user id's 26 characters.
pub fn valid_inbox_id(id: &str) -> bool {
    id.strip_prefix("inb_").is_some_and(|body| {
        body.len() == 52
            && body
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn followers_members_and_a_tier_are_audiences() {
        assert_eq!(Audience::parse("followers").unwrap(), Audience::Followers);
        assert_eq!(Audience::parse("members").unwrap(), Audience::Members);
        assert_eq!(
            Audience::parse("tier:Gold").unwrap(),
            Audience::Tier("Gold".into())
        );
        assert_eq!(
            Audience::parse("tier:Gold").unwrap().as_string(),
            "tier:Gold"
        );
        assert_eq!(
            Audience::parse("tier:").unwrap_err().code,
            "invalid_audience"
        );
        assert_eq!(
            Audience::parse("everyone").unwrap_err().code,
            "invalid_audience"
        );
    }

    #[test]
    fn message_text_is_trimmed_and_bounded() {
        assert_eq!(parse_text("  hi ", 5, "title", false).unwrap(), "hi");
        assert!(parse_text("", 5, "title", false).is_err());
        assert!(parse_text("abcdef", 5, "title", false).is_err());
        assert!(parse_text("a\nb", 5, "title", false).is_err());
        assert_eq!(parse_text("a\r\nb", 5, "body", true).unwrap(), "a\nb");
        assert!(parse_text("a\u{0007}b", 5, "body", true).is_err());
    }

    #[test]
    fn inbox_ids_have_their_shape() {
        let id = format!("inb_{}{}", "0".repeat(26), "a".repeat(26));
        assert!(valid_inbox_id(&id));
        assert!(!valid_inbox_id("inb_short"));
        assert!(!valid_inbox_id(&id.to_uppercase()));
    }
}
