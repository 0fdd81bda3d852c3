//! Webhook endpoints and deliveries (Standard Webhooks).
