//! The log line format of API.md:
//! `2024-01-01 12:00:00 | INFO | api-gateway | GET /health 200 0.4ms trace_id=<32 hex>`,
//! or with `LOG_FORMAT=json` one JSON object per line with the same fields.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::OnceLock;

use opentelemetry::trace::TraceContextExt;
use serde_json::{Map, Value};
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::span::Id;
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::config::LogFormat;

/// Target of the one-line-per-request event. Its structured fields (method,
/// path, status, duration) are already in the message, so text lines do not
/// repeat them; JSON lines keep them as separate members.
pub const ACCESS_TARGET: &str = "loja::access";

/// A layer writing every event as one Loja Veloz log line to `writer`.
pub struct LineLayer<W> {
    service: &'static str,
    format: LogFormat,
    writer: W,
    dispatch: OnceLock<WeakDispatch>,
}

impl<W> LineLayer<W> {
    /// A layer for `service` writing `format` lines to `writer`.
    pub fn new(service: &'static str, format: LogFormat, writer: W) -> Self {
        LineLayer {
            service,
            format,
            writer,
            dispatch: OnceLock::new(),
        }
    }

    /// Renders one line, newline included.
    fn render(&self, event: &Event<'_>, fields: Fields) -> String {
        let meta = event.metadata();
        let trace_id = fields.trace_id;
        let now = chrono::Utc::now();
        match self.format {
            LogFormat::Text => {
                let mut line = format!(
                    "{} | {} | {} | {}",
                    now.format("%Y-%m-%d %H:%M:%S"),
                    meta.level(),
                    self.service,
                    fields.message
                );
                if meta.target() != ACCESS_TARGET {
                    for (name, value) in &fields.rest {
                        let _ = match value {
                            Value::String(s) => write!(line, " {name}={s}"),
                            other => write!(line, " {name}={other}"),
                        };
                    }
                }
                if let Some(id) = trace_id {
                    let _ = write!(line, " trace_id={id}");
                }
                line.push('\n');
                line
            }
            LogFormat::Json => {
                let mut obj = Map::new();
                obj.insert(
                    "timestamp".into(),
                    now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                        .into(),
                );
                obj.insert("level".into(), meta.level().as_str().into());
                obj.insert("service".into(), self.service.into());
                obj.insert("message".into(), fields.message.into());
                obj.insert("target".into(), meta.target().into());
                if let Some(id) = trace_id {
                    obj.insert("trace_id".into(), id.into());
                }
                for (name, value) in fields.rest {
                    obj.entry(name).or_insert(value);
                }
                let mut line = Value::Object(obj).to_string();
                line.push('\n');
                line
            }
        }
    }
}

impl<S, W> Layer<S> for LineLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_register_dispatch(&self, dispatch: &Dispatch) {
        let _ = self.dispatch.set(dispatch.downgrade());
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        // An event may name its trace itself (the access line does);
        // otherwise it belongs to the trace of the span it happened in.
        if fields.trace_id.is_none() {
            let span = ctx.event_span(event).map(|span| span.id());
            fields.trace_id = span.and_then(|id| self.trace_id(&id));
        }
        let line = self.render(event, fields);
        let _ = self
            .writer
            .make_writer_for(event.metadata())
            .write_all(line.as_bytes());
    }
}

impl<W> LineLayer<W> {
    /// The trace id of span `id`, read from the OpenTelemetry layer's data.
    fn trace_id(&self, id: &Id) -> Option<String> {
        let dispatch = self.dispatch.get()?.upgrade()?;
        let cx = tracing_opentelemetry::get_otel_context(id, &dispatch)?;
        let otel_span = cx.span();
        let sc = otel_span.span_context();
        sc.is_valid().then(|| sc.trace_id().to_string())
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    trace_id: Option<String>,
    rest: Vec<(String, Value)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else if field.name() == "trace_id" {
            self.trace_id = (!value.is_empty()).then(|| value.to_owned());
        } else {
            self.rest.push((field.name().to_owned(), value.into()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.rest
                .push((field.name().to_owned(), format!("{value:?}").into()));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.rest.push((field.name().to_owned(), value.into()));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.rest.push((field.name().to_owned(), value.into()));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.rest.push((field.name().to_owned(), value.into()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.rest.push((field.name().to_owned(), value.into()));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.rest
            .push((field.name().to_owned(), value.to_string().into()));
    }
}
