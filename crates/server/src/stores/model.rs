//! Stores' API shapes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The merchant behind a store, as consumers see it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StoreMerchant {
    pub id: String,
    pub name: String,
    pub verified: bool,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Store {
    pub id: String,
    pub merchant_id: String,
    pub merchant: StoreMerchant,
    pub name: String,
    pub address: String,
    pub lat: f64,
    pub lng: f64,
    /// IANA time zone name.
    pub timezone: String,
    /// OpenStreetMap `opening_hours` syntax.
    pub opening_hours: String,
    /// Whether the store is open now, in its own time zone.
    pub open_now: bool,
    pub delivery_radius_m: i64,
    pub fence_radius_m: i64,
    pub created_at: String,
    /// Distance from the `near` point of a discovery query, in metres.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_m: Option<u32>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStore {
    pub merchant_id: String,
    /// 1 to 80 characters.
    pub name: String,
    /// 1 to 200 characters.
    pub address: String,
    pub lat: f64,
    pub lng: f64,
    /// IANA time zone name, e.g. `Asia/Shanghai`.
    pub timezone: String,
    /// OpenStreetMap `opening_hours`, e.g. `Mo-Fr 07:00-22:00; Sa,Su 08:00-23:00`.
    pub opening_hours: String,
    /// 0 to 50,000 m (0: no delivery). Default 3,000.
    pub delivery_radius_m: Option<i64>,
    /// 10 to 5,000 m. Default 200.
    pub fence_radius_m: Option<i64>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateStore {
    pub name: Option<String>,
    pub address: Option<String>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub timezone: Option<String>,
    pub opening_hours: Option<String>,
    pub delivery_radius_m: Option<i64>,
    pub fence_radius_m: Option<i64>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Table {
    pub id: String,
    pub store_id: String,
    pub label: String,
    pub created_at: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTable {
    /// 1 to 20 characters, unique within the store (`A1`, `窗边 3`).
    pub label: String,
}

impl Store {
    /// The distance for people: metres below a kilometre, else kilometres with one decimal.
    pub fn distance_label(&self) -> Option<String> {
        self.distance_m.map(|m| {
            if m < 1_000 {
                format!("{m} m")
            } else {
                format!("{:.1} km", f64::from(m) / 1_000.0)
            }
        })
    }
}
