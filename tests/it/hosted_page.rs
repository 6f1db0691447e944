//! The hosted login page as served: per app, escaped, locked down by its headers, and its
//! assets from the binary.

use crate::{
    both_backends,
    harness::{Backend, TestApp},
    passage::create_app,
};
use keyhaven::passage::apps::{self, AppChanges};

both_backends!(the_login_page_is_served_per_app);

async fn the_login_page_is_served_per_app(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |s| s.default_language = "de".into()).await;
    let changes = AppChanges::from_json(serde_json::json!({"name": "Tom & <Jerry>"})).unwrap();
    apps::update(&app.passage(), &p.app_id, changes)
        .await
        .unwrap();

    let res = app
        .http
        .get(app.url(&format!("/login/{}", p.app_id)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let headers = res.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    let page = res.text().await.unwrap();
    assert!(page.contains("<h1>Tom &amp; &lt;Jerry&gt;</h1>"), "{page}");
    assert!(!page.contains("<Jerry>"));
    assert!(page.contains(r#"<html lang="de">"#));
    assert!(page.contains(&format!(r#"data-app-id="{}""#, p.app_id)));
    assert!(page.contains(r#"autocomplete="username webauthn""#));
    // No inline script: the policy would block it.
    assert!(!page.contains("<script>"));

    let missing = app
        .http
        .get(app.url("/login/no-such-app"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await.unwrap().contains("No such app"));

    // The page names its assets by version; so named they are kept for good, else briefly.
    for (path, kind, needle) in [
        ("/login/assets/login.js", "text/javascript", "conditional"),
        ("/login/assets/login.css", "text/css", "--accent"),
    ] {
        let start = page.find(&format!("{path}?v=")).expect(path);
        let versioned = &page[start..start + page[start..].find('"').unwrap()];
        for (url, cache) in [
            (versioned, "public, max-age=31536000, immutable"),
            (path, "public, max-age=300"),
        ] {
            let res = app.http.get(app.url(url)).send().await.unwrap();
            assert_eq!(res.status(), 200, "{url}");
            let headers = res.headers().clone();
            let content_type = headers["content-type"].to_str().unwrap();
            assert!(content_type.starts_with(kind), "{url}: {content_type}");
            assert_eq!(headers["cache-control"], cache, "{url}");
            assert_eq!(headers["x-content-type-options"], "nosniff", "{url}");
            assert!(res.text().await.unwrap().contains(needle), "{url}");
        }
    }
}
