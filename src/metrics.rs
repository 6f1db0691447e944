//! Prometheus metrics: HTTP requests by route and status, OTP outcomes, deliveries by provider.

use std::{sync::Arc, time::Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};
use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OtpLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    provider: &'static str,
    channel: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RiskLabels {
    signal: &'static str,
    refused: &'static str,
}

pub struct Metrics {
    registry: Registry,
    refusals: Family<RefusalLabels, Counter>,
    passkey_risks: Family<RiskLabels, Counter>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    otps: Family<OtpLabels, Counter>,
    deliveries: Family<DeliveryLabels, Counter>,
    pub outbox_pending: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("keyhaven");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ])
        });
        let otps = Family::<OtpLabels, Counter>::default();
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        let outbox_pending = Gauge::default();
        let refusals = Family::<RefusalLabels, Counter>::default();
        let passkey_risks = Family::<RiskLabels, Counter>::default();
        registry.register(
            "passkey_risk_signals",
            "Verified passkey logins with a risk signal (counter_regressed, \
             backup_eligibility_changed), and whether the strict policy refused them",
            passkey_risks.clone(),
        );
        registry.register(
            "send_refusals",
            "Messages refused by a sending limit (country, recipient, prefix, tenant)",
            refusals.clone(),
        );
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests",
            latency.clone(),
        );
        registry.register("otps", "One-time passwords by outcome", otps.clone());
        registry.register(
            "deliveries",
            "Delivery attempts by provider and result",
            deliveries.clone(),
        );
        registry.register(
            "outbox_pending",
            "Messages waiting in the outbox",
            outbox_pending.clone(),
        );
        Metrics {
            registry,
            refusals,
            passkey_risks,
            requests,
            latency,
            otps,
            deliveries,
            outbox_pending,
        }
    }
}

impl Metrics {
    /// `outcome`: created, verified, failed (wrong code), locked, expired, resent, deleted.
    pub fn otp(&self, outcome: &'static str) {
        self.otps.get_or_create(&OtpLabels { outcome }).inc();
    }

    pub fn delivery(&self, provider: &'static str, channel: &'static str, result: &'static str) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                provider,
                channel,
                result,
            })
            .inc();
    }

    /// A message refused by the sending limit `limit`.
    pub fn send_refused(&self, limit: &'static str) {
        self.refusals.get_or_create(&RefusalLabels { limit }).inc();
    }

    /// A verified passkey login that raised `signal`; `refused` under the strict policy.
    pub fn passkey_risk(&self, signal: &'static str, refused: bool) {
        let refused = if refused { "true" } else { "false" };
        self.passkey_risks
            .get_or_create(&RiskLabels { signal, refused })
            .inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Middleware: counts and times every request by its route template (never the raw path,
/// which would carry ids).
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(req).await;
    metrics
        .latency
        .get_or_create(&RouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(start.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}
