//! The guest side of the host's template engine: Handlebars (strict mode, no HTML escaping) over
//! the templates the host passes in each call. Everything that can run away — partial recursion,
//! nested blocks, huge loops, output — runs here, inside the wasm limits the host sets.

use std::cell::RefCell;
use std::collections::BTreeMap;

use handlebars::{Handlebars, RenderError, RenderErrorReason, TemplateError, TemplateErrorReason};

// Generated glue: the canonical ABI passes the request's fields as eight flat arguments.
#[allow(clippy::too_many_arguments)]
mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "engine",
    });
}

use bindings::{export, Failure, Guest, Request, Template};

struct Engine;

/// What one instance has compiled so far. The host keeps an instance for the renders of one
/// plugin run and hands it on to the next run of the same source, so a template rendered again
/// (the presenter measures its script template, fills it, then renders the prompt) is parsed
/// once: the registry holds exactly the templates the current call passed, and a template it
/// dropped because a call did not pass it comes back from `kept` without being parsed again. A
/// body that changed is compiled again; a render sees exactly the templates it was given.
struct Compiled {
    registry: Handlebars<'static>,
    /// The bodies the registry holds now, by name.
    bodies: BTreeMap<String, String>,
    /// Every template compiled here, by name and body, within [`KEPT_BYTES`] of bodies.
    kept: BTreeMap<(String, String), handlebars::Template>,
    kept_bytes: usize,
}

/// Template text whose compiled form an instance keeps for later calls; past it, what was kept
/// is forgotten (and parsed again when a call passes it).
const KEPT_BYTES: usize = 1 << 20;

impl Compiled {
    fn new() -> Compiled {
        let mut registry = Handlebars::new();
        // Narration is spoken, not HTML: "&" must stay "&".
        registry.register_escape_fn(handlebars::no_escape);
        Compiled {
            registry,
            bodies: BTreeMap::new(),
            kept: BTreeMap::new(),
            kept_bytes: 0,
        }
    }

    /// Makes the registry hold exactly `templates`' bodies (parsing only what it never saw);
    /// fails only if `name` itself does not compile (another one that does not is only missing
    /// as a partial).
    fn hold(&mut self, templates: &[Template], name: &str) -> Result<(), Failure> {
        let Compiled {
            registry,
            bodies,
            kept,
            kept_bytes,
        } = self;
        bodies.retain(|held, _| {
            let passed = templates.iter().any(|t| &t.name == held);
            if !passed {
                registry.unregister_template(held);
            }
            passed
        });
        for template in templates {
            if bodies.get(&template.name) == Some(&template.body) {
                continue;
            }
            bodies.remove(&template.name);
            registry.unregister_template(&template.name);
            let key = (template.name.clone(), template.body.clone());
            if let Some(compiled) = kept.get(&key) {
                registry.register_template(&template.name, compiled.clone());
            } else {
                match registry.register_template_string(&template.name, &template.body) {
                    Ok(()) => {
                        if *kept_bytes + template.body.len() > KEPT_BYTES {
                            kept.clear();
                            *kept_bytes = 0;
                        }
                        if let Some(compiled) = registry.get_template(&template.name) {
                            *kept_bytes += template.body.len();
                            kept.insert(key, compiled.clone());
                        }
                    }
                    Err(e) if template.name == name => return Err(compile_failure(name, &e)),
                    Err(_) => continue,
                }
            }
            bodies.insert(template.name.clone(), template.body.clone());
        }
        Ok(())
    }
}

thread_local! {
    static COMPILED: RefCell<Option<Compiled>> = const { RefCell::new(None) };
}

impl Guest for Engine {
    fn render(request: Request) -> Result<String, Failure> {
        let Request {
            templates,
            name,
            context_json,
            strict,
            max_output_bytes,
        } = request;
        let mut out = Capped {
            bytes: Vec::new(),
            cap: max_output_bytes as usize,
        };
        COMPILED.with_borrow_mut(|compiled| {
            let compiled = compiled.get_or_insert_with(Compiled::new);
            compiled.hold(&templates, &name)?;
            compiled.registry.set_strict_mode(strict);
            let context: serde_json::Value =
                serde_json::from_str(&context_json).map_err(|e| Failure {
                    template: name.clone(),
                    message: format!("the context is not JSON: {e}"),
                    line: None,
                    column: None,
                })?;
            // Moved into the render's context, not copied (`render_to_write` would serialise
            // the value into a second one).
            compiled
                .registry
                .render_with_context_to_write(&name, &context.into(), &mut out)
                .map_err(|e| render_failure(&name, &e, out.cap))
        })?;
        String::from_utf8(out.bytes).map_err(|e| Failure {
            template: name,
            message: format!("the output is not UTF-8: {e}"),
            line: None,
            column: None,
        })
    }
}

/// A writer that refuses to grow past `cap` bytes.
struct Capped {
    bytes: Vec<u8>,
    cap: usize,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.cap {
            return Err(std::io::Error::other(OUTPUT_CAP));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const OUTPUT_CAP: &str = "output cap";

fn compile_failure(name: &str, err: &TemplateError) -> Failure {
    let (line, column) = match err.pos() {
        Some((line, column)) => (Some(line as u32), Some(column as u32)),
        None => (None, None),
    };
    Failure {
        template: name.to_string(),
        message: compile_words(err.reason()),
        line,
        column,
    }
}

/// A compile error in words an editor reads (the parser's own text names grammar rules).
fn compile_words(reason: &TemplateErrorReason) -> String {
    match reason {
        TemplateErrorReason::MismatchingClosedHelper(open, closed)
        | TemplateErrorReason::MismatchingClosedDecorator(open, closed) => format!(
            "the block {{{{#{open}}}}} is closed by {{{{/{closed}}}}}: close it with {{{{/{open}}}}}"
        ),
        TemplateErrorReason::InvalidSyntax(_) => "this is not valid Handlebars: check that every \
            {{ has its }}, and that every {{#block}} is closed by its {{/block}}"
            .into(),
        TemplateErrorReason::InvalidParam(param) => {
            format!("{param:?} cannot be used as a value here")
        }
        TemplateErrorReason::NestedSubexpression => {
            "a ( … ) inside another ( … ) is not supported: split it over two steps".into()
        }
        other => other.to_string(),
    }
}

/// A render error in words an editor reads (the library's name Rust types: `Some("author")`).
fn render_words(reason: &RenderErrorReason) -> String {
    match reason {
        RenderErrorReason::MissingVariable(Some(path)) => format!(
            "this content has no field \"{path}\": use a field it has, or wrap it in \
             {{{{#if {path}}}}}…{{{{/if}}}} when it is optional"
        ),
        RenderErrorReason::MissingVariable(None) => {
            "this content lacks a field the template uses".into()
        }
        RenderErrorReason::PartialNotFound(name) | RenderErrorReason::TemplateNotFound(name) => {
            format!("there is no template \"{name}\" to include")
        }
        RenderErrorReason::HelperNotFound(name) => format!(
            "there is no helper \"{name}\": Handlebars' own (if, unless, each, with, lookup, eq…) \
             are the ones templates can use"
        ),
        RenderErrorReason::TemplateError(err) => compile_words(err.reason()),
        other => other.to_string(),
    }
}

fn render_failure(name: &str, err: &RenderError, cap: usize) -> Failure {
    let message = if err.to_string().contains(OUTPUT_CAP) {
        format!("the output is longer than {cap} bytes")
    } else {
        render_words(err.reason())
    };
    Failure {
        template: err
            .template_name
            .clone()
            .unwrap_or_else(|| name.to_string()),
        message,
        line: err.line_no.map(|l| l as u32),
        column: err.column_no.map(|c| c as u32),
    }
}

export!(Engine with_types_in bindings);
