//! The HTML pages' templates (`reports/templates/`, compiled in), rendered by minijinja with auto-escaping: every
//! value a template prints is escaped unless the template marks it `|safe`, which only the charts' SVG (drawn by
//! plotters, which escapes its own text) is. The pages are fed `Serialize` contexts, so a new field in a context is
//! a new name the template can use, and nothing is assembled as markup in Rust.

use minijinja::Environment;
use serde::Serialize;

const TEMPLATES: [(&str, &str); 5] = [
    ("page.html", include_str!("../../templates/page.html")),
    ("index.html", include_str!("../../templates/index.html")),
    ("compare.html", include_str!("../../templates/compare.html")),
    ("macros.html", include_str!("../../templates/macros.html")),
    (
        "page_style.css",
        include_str!("../../templates/page_style.css"),
    ),
];

fn environment() -> anyhow::Result<Environment<'static>> {
    let mut env = Environment::new();
    // An unknown name in a template is a bug in the template or its context: say so instead of printing nothing.
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .map_err(|error| anyhow::anyhow!("template {name}: {error:#}"))?;
    }
    Ok(env)
}

/// Renders the named template (`index.html`, `compare.html`) with `context`.
pub fn render_page(name: &str, context: &impl Serialize) -> anyhow::Result<String> {
    let env = environment()?;
    let template = env
        .get_template(name)
        .map_err(|error| anyhow::anyhow!("template {name}: {error:#}"))?;
    template
        .render(minijinja::value::Serde(context))
        .map_err(|error| anyhow::anyhow!("rendering template {name}: {error:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_text_is_escaped() {
        let mut env = environment().unwrap();
        env.add_template("toy.html", "<h1>{{ title }}</h1>{{ svg|safe }}")
            .unwrap();
        let page = env
            .get_template("toy.html")
            .unwrap()
            .render(minijinja::context! { title => "a <b> & \"c\"", svg => "<svg/>" })
            .unwrap();
        assert_eq!(page, "<h1>a &lt;b&gt; &amp; &quot;c&quot;</h1><svg/>");
        let error = env
            .get_template("toy.html")
            .unwrap()
            .render(minijinja::context! { svg => "" })
            .unwrap_err();
        assert!(error.to_string().contains("undefined"), "{error}");
    }
}
