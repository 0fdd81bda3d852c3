//! Consumer pages for stores: the home page (nearest stores, open or not, and the ones viewed
//! lately) and a store's page. Viewing a store starts a guest session when there is none, so the
//! visit is the consumer's from the first moment and joins their account at login.

use super::model::Store;
use super::service;
use crate::app::AppState;
use crate::http::Path;
use crate::identity::service as identity;
use crate::web::{OrPage, PageCtx, PageError, T};
use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

/// People's Square, Shanghai: where the home page looks when the phone gives no location.
const DEFAULT_CENTER: (f64, f64) = (31.2304, 121.4737);

#[derive(Template)]
#[template(path = "stores/home.html")]
struct HomePage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    stores: Vec<Store>,
    recent: Vec<Store>,
    located: bool,
}

#[derive(Deserialize)]
struct HomeQuery {
    near: Option<String>,
}

async fn home(
    State(app): State<AppState>,
    ctx: PageCtx,
    Query(q): Query<HomeQuery>,
) -> Result<Response, PageError> {
    let parsed = q
        .near
        .as_deref()
        .and_then(|n| o2o_geo::LatLng::parse(n).ok());
    let located = parsed.is_some();
    let center = match parsed {
        Some(c) => c,
        None => o2o_geo::LatLng::new(DEFAULT_CENTER.0, DEFAULT_CENTER.1)
            .map_err(|e| PageError::internal(ctx.t, e))?,
    };
    let radius = o2o_geo::Radius::parse_m(20_000).map_err(|e| PageError::internal(ctx.t, e))?;
    let stores = service::nearby(&app.db, center, radius, 30)
        .await
        .or_page(ctx.t)?
        .data;
    let recent = match &ctx.principal {
        Some(p) if p.kind == crate::identity::PrincipalKind::Consumer => {
            service::recent_visits(&app.db, &p.id, 5)
                .await
                .or_page(ctx.t)?
        }
        _ => Vec::new(),
    };
    ctx.render(&HomePage {
        t: ctx.t,
        logged_in: ctx.logged_in(),
        path: &ctx.path,
        stores,
        recent,
        located,
    })
}

#[derive(Template)]
#[template(path = "stores/store.html")]
struct StorePage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    store: Store,
    menu: crate::catalog::pages::MenuView,
    csrf: &'a str,
    follow: crate::followers::pages::FollowButton,
}

async fn store_page(
    State(app): State<AppState>,
    mut ctx: PageCtx,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let Some(store) = service::find_store(&app.db, &id).await.or_page(ctx.t)? else {
        return Err(PageError {
            status: StatusCode::NOT_FOUND,
            message: ctx.t.s("store.not_found").to_owned(),
            t: ctx.t,
        });
    };
    let consumer_id = match &ctx.principal {
        Some(p) if p.kind == crate::identity::PrincipalKind::Consumer => Some(p.id.clone()),
        Some(_) => None,
        None => {
            let guest = identity::start_guest(&app.db).await.or_page(ctx.t)?;
            ctx.set_session(&guest.token, identity::CONSUMER_SESSION_US / 1_000_000);
            Some(guest.principal.id)
        }
    };
    if let Some(uid) = consumer_id {
        service::record_visit(&app.db, &uid, &store.id)
            .await
            .or_page(ctx.t)?;
    }
    let menu = crate::catalog::pages::store_menu(&app, &store.id, ctx.t).await?;
    let follow =
        crate::followers::pages::follow_button(&app, &ctx, &store.merchant_id, &store.id).await?;
    ctx.render(&StorePage {
        menu,
        csrf: &ctx.csrf,
        follow,
        t: ctx.t,
        logged_in: ctx.logged_in(),
        path: &ctx.path,
        store,
    })
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/stores/{id}", get(store_page))
}
