//! Integration tests: each spawns the real server on port 0 with a fresh database and drives it
//! over HTTP. They run on SQLite, and on PostgreSQL when `O2O_TEST_POSTGRES_URL` is set.

mod catalog;
mod codes;
mod conventions;
mod coupon_pages;
mod coupons;
mod followers;
mod helpers;
mod identity;
mod members;
mod merchants;
mod nats;
mod order_pages;
mod orders;
mod pages;
mod payment_pages;
mod payments;
mod stores;
mod tenancy;
mod webhooks;
