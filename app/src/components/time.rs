use chrono::{DateTime, Utc};
use leptos::prelude::*;

/// A moment shown in the reader's own time zone, with how long ago it was.
///
/// The server does not know the browser's zone, so it renders UTC and an
/// empty line for the relative part; after hydration the browser rewrites
/// both in place (same lines, so nothing below moves).
#[component]
pub fn LocalTime(at: DateTime<Utc>, #[prop(optional)] relative: bool) -> impl IntoView {
    let absolute = RwSignal::new(format!("{} UTC", at.format("%Y-%m-%d %H:%M")));
    let ago = RwSignal::new(String::new());
    Effect::new(move |_| {
        absolute.set(browser::local_string(at));
        if relative {
            let update = move || ago.set(how_long_ago(at, browser::now()));
            update();
            if let Ok(handle) = set_interval_with_handle(update, std::time::Duration::from_secs(30))
            {
                on_cleanup(move || handle.clear());
            }
        }
    });
    view! {
        <time datetime=at.to_rfc3339() title=at.to_rfc3339() class="local-time">
            <span class="absolute">{absolute}</span>
            {relative.then(|| view! { <span class="relative muted">{ago}</span> })}
        </time>
    }
}

/// "just now", "5 min ago", "3 h ago", "2 days ago".
pub fn how_long_ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - at).num_seconds();
    match secs {
        s if s < 45 => "just now".to_owned(),
        s if s < 3600 => format!("{} min ago", (s + 30) / 60),
        s if s < 86_400 => format!("{} h ago", s / 3600),
        s if s < 2 * 86_400 => "yesterday".to_owned(),
        s => format!("{} days ago", s / 86_400),
    }
}

/// "42 s", "3 min 05 s", "1 h 02 min".
pub fn duration_words(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {:02} s", s / 60, s % 60),
        s => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

/// The browser's clock and zone (the server's, when rendering there).
pub mod browser {
    use chrono::{DateTime, Utc};

    #[cfg(feature = "hydrate")]
    pub fn now() -> DateTime<Utc> {
        DateTime::from_timestamp_millis(js_sys::Date::now() as i64).unwrap_or_else(Utc::now)
    }

    #[cfg(not(feature = "hydrate"))]
    pub fn now() -> DateTime<Utc> {
        Utc::now()
    }

    /// "26/11/2026, 14:02" or however the reader's locale writes it.
    #[cfg(feature = "hydrate")]
    pub fn local_string(at: DateTime<Utc>) -> String {
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(
            at.timestamp_millis() as f64
        ));
        let options = js_sys::Object::new();
        for (key, value) in [
            ("year", "numeric"),
            ("month", "short"),
            ("day", "numeric"),
            ("hour", "2-digit"),
            ("minute", "2-digit"),
        ] {
            let _ = js_sys::Reflect::set(&options, &key.into(), &value.into());
        }
        date.to_locale_string("default", &options).into()
    }

    #[cfg(not(feature = "hydrate"))]
    pub fn local_string(at: DateTime<Utc>) -> String {
        format!("{} UTC", at.format("%Y-%m-%d %H:%M"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn ages_read_like_people_say_them() {
        let now = Utc::now();
        assert_eq!(how_long_ago(now - Duration::seconds(10), now), "just now");
        assert_eq!(how_long_ago(now - Duration::minutes(5), now), "5 min ago");
        assert_eq!(how_long_ago(now - Duration::hours(3), now), "3 h ago");
        assert_eq!(how_long_ago(now - Duration::hours(30), now), "yesterday");
        assert_eq!(how_long_ago(now - Duration::days(9), now), "9 days ago");
    }

    #[test]
    fn durations_read_like_people_say_them() {
        assert_eq!(duration_words(42), "42 s");
        assert_eq!(duration_words(185), "3 min 05 s");
        assert_eq!(duration_words(3720), "1 h 02 min");
    }
}
