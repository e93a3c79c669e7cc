//! Concord's desktop shell. It only wires the engine library to a window: it starts the engine
//! in-process (state in the app data folder, the console API on loopback), shows the bundled
//! UI pointed at that API with this launch's token, keeps a tray with the sync status,
//! pause/resume and open, raises native notifications for new exceptions and dead-letter
//! spikes, and allows a single instance. No SQL or HTTP logic lives here.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::sync::Mutex;
use std::time::Duration;

use concord::desktop::Desktop;
use tauri::menu::{Menu, MenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, RunEvent, WebviewUrl, WebviewWindowBuilder};
use tauri_plugin_notification::NotificationExt;

#[global_allocator]
static ALLOCATOR: concord::Allocator = concord::Allocator;

/// The running engine and console, owned by the app.
struct Shell(Mutex<Option<Desktop>>);

fn show_main(app: &AppHandle) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

fn notify(app: &AppHandle, title: &str, body: &str) {
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        tracing::warn!(error = %e, "could not show a notification");
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "concord=info,concord_desktop=info".into()),
        )
        .init();
    let demo =
        std::env::args().any(|a| a == "--demo") || std::env::var_os("CONCORD_DEMO").is_some();
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            show_main(app)
        }))
        .plugin(tauri_plugin_notification::init())
        .setup(move |app| {
            let data_dir = app.path().app_data_dir()?;
            let desktop = tauri::async_runtime::block_on(Desktop::start(&data_dir, demo))?;
            let engine = desktop.engine();
            // The UI's boot parameters, and a record of errors before the UI can report them
            // itself (read by the desktop end-to-end test when the window stays empty).
            let boot = format!(
                "window.__CONCORD_ERRORS__ = []; \
                 addEventListener('error', e => __CONCORD_ERRORS__.push(String(e.message))); \
                 addEventListener('unhandledrejection', e => __CONCORD_ERRORS__.push(String(e.reason))); \
                 window.__CONCORD__ = {};",
                serde_json::json!({ "apiBase": desktop.api_base(), "token": desktop.token() })
            );
            WebviewWindowBuilder::new(app, "main", WebviewUrl::App("index.html".into()))
                .title("Concord")
                .inner_size(1280.0, 800.0)
                .min_inner_size(960.0, 600.0)
                .initialization_script(&boot)
                .build()?;

            let status = MenuItem::with_id(app, "status", "Sync: starting", false, None::<&str>)?;
            let pause = MenuItem::with_id(app, "pause", "Pause sync", true, None::<&str>)?;
            let open = MenuItem::with_id(app, "open", "Open Concord", true, None::<&str>)?;
            let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
            let menu = Menu::with_items(app, &[&status, &pause, &open, &quit])?;
            let tray_engine = engine.clone();
            let pause_item = pause.clone();
            let mut tray = TrayIconBuilder::with_id("concord")
                .menu(&menu)
                .tooltip("Concord")
                .on_menu_event(move |app, event| match event.id.as_ref() {
                    "pause" => {
                        let paused = !tray_engine.is_paused();
                        tray_engine.set_paused(paused);
                        let _ =
                            pause_item.set_text(if paused { "Resume sync" } else { "Pause sync" });
                    }
                    "open" => show_main(app),
                    "quit" => app.exit(0),
                    _ => {}
                });
            if let Some(icon) = app.default_window_icon() {
                tray = tray.icon(icon.clone());
            }
            tray.build(app)?;

            // Status and alerts: the engine's metrics every few seconds.
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                let mut last_exceptions: Option<i64> = None;
                let mut last_dead: Option<i64> = None;
                let mut seen_trips: std::collections::BTreeSet<i64> = Default::default();
                loop {
                    if let Ok(m) = engine.metrics().await {
                        let state = if m.paused { "paused" } else { "running" };
                        let _ = status.set_text(format!(
                            "Sync: {state} · {} open exceptions · {} dead letters",
                            m.open_exceptions, m.dead_letters
                        ));
                        if let Some(tray) = handle.tray_by_id("concord") {
                            let _ = tray.set_tooltip(Some(format!("Concord: sync {state}")));
                        }
                        if let Some(before) = last_exceptions
                            && m.open_exceptions > before
                        {
                            let new = m.open_exceptions - before;
                            notify(
                                &handle,
                                "Exceptions need a steward",
                                &format!("{new} new exception(s) to review"),
                            );
                        }
                        if let Some(before) = last_dead
                            && m.dead_letters >= before + 5
                        {
                            notify(
                                &handle,
                                "Dead letters are rising",
                                &format!(
                                    "{} writes failed for good since the last check",
                                    m.dead_letters - before
                                ),
                            );
                        }
                        for trip in &m.breakers {
                            if seen_trips.insert(trip.id) {
                                notify(
                                    &handle,
                                    &format!("Writes to {} are held", trip.system),
                                    &format!(
                                        "The circuit breaker tripped: {}. An admin reviews them, then confirms or discards them.",
                                        trip.reason()
                                    ),
                                );
                            }
                        }
                        last_exceptions = Some(m.open_exceptions);
                        last_dead = Some(m.dead_letters);
                    }
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            });
            app.manage(Shell(Mutex::new(Some(desktop))));
            Ok(())
        })
        .build(tauri::generate_context!())?;
    app.run(|app, event| {
        if let RunEvent::Exit = event {
            let desktop = app
                .try_state::<Shell>()
                .and_then(|s| s.0.lock().ok()?.take());
            if let Some(desktop) = desktop {
                tauri::async_runtime::block_on(desktop.shutdown(Duration::from_secs(5)));
            }
        }
    });
    Ok(())
}
