//! A laid-out workflow graph (`insitu_core::pipelines::graph`) drawn as
//! SVG: inputs, steps and outputs as boxes of their own colours, links as
//! curves with the value they carry, scattered steps as a stack of boxes,
//! subworkflows with a double border, conditional steps dashed. Every text
//! is escaped; the drawing has no script and no link.

use insitu_core::pipelines::graph::{Graph, NodeKind};

/// XML text of `s`, safe in content and in attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// At most `n` characters, with "…" when cut.
fn fit(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(n.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

pub fn svg(g: &Graph) -> String {
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="pipeline-graph" viewBox="0 0 {w:.0} {h:.0}" width="{w:.0}" height="{h:.0}" role="img" aria-label="workflow graph">"#,
        w = g.width,
        h = g.height
    );
    s.push_str(
        r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#6b7280"/></marker></defs>"##,
    );
    for e in &g.edges {
        let (Some(a), Some(b)) = (g.nodes.get(e.from), g.nodes.get(e.to)) else {
            continue;
        };
        let (x1, y1) = (a.x + a.w, a.y + a.h / 2.0);
        let (x2, y2) = (b.x, b.y + b.h / 2.0);
        let mid = (x1 + x2) / 2.0;
        s.push_str(&format!(
            r##"<path class="edge" d="M {x1:.1} {y1:.1} C {mid:.1} {y1:.1}, {mid:.1} {y2:.1}, {x2:.1} {y2:.1}" fill="none" stroke="#6b7280" stroke-width="1.4" marker-end="url(#arrow)" data-from="{}" data-to="{}"/>"##,
            escape(&a.id),
            escape(&b.id)
        ));
        if !e.label.is_empty() {
            s.push_str(&format!(
                r##"<text class="edge-label" x="{:.1}" y="{:.1}" font-size="10" fill="#4b5563" text-anchor="middle">{}</text>"##,
                mid,
                (y1 + y2) / 2.0 - 4.0,
                escape(&fit(&e.label, 24))
            ));
        }
    }
    for n in &g.nodes {
        let (fill, stroke) = match n.kind {
            NodeKind::Input => ("#e0f2fe", "#0369a1"),
            NodeKind::Step => ("#f1f5f9", "#334155"),
            NodeKind::Output => ("#dcfce7", "#15803d"),
        };
        let kind = match n.kind {
            NodeKind::Input => "input",
            NodeKind::Step => "step",
            NodeKind::Output => "output",
        };
        let mut classes = vec!["node", kind];
        if n.scatter {
            classes.push("scatter");
        }
        if n.subworkflow {
            classes.push("subworkflow");
        }
        if n.conditional {
            classes.push("conditional");
        }
        s.push_str(&format!(
            r#"<g class="{}" data-id="{}">"#,
            classes.join(" "),
            escape(&n.id)
        ));
        let dash = if n.conditional {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        if n.scatter {
            // A stack: the job repeated over the scattered input.
            for k in [2.0, 1.0] {
                s.push_str(&format!(
                    r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="6" fill="{fill}" stroke="{stroke}" stroke-width="1"/>"##,
                    n.x + 4.0 * k,
                    n.y - 4.0 * k,
                    n.w,
                    n.h
                ));
            }
        }
        s.push_str(&format!(
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="6" fill="{fill}" stroke="{stroke}" stroke-width="1.6"{dash}/>"#,
            n.x, n.y, n.w, n.h
        ));
        if n.subworkflow {
            s.push_str(&format!(
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="4" fill="none" stroke="{stroke}" stroke-width="1"/>"#,
                n.x + 3.0,
                n.y + 3.0,
                n.w - 6.0,
                n.h - 6.0
            ));
        }
        let mut marks = Vec::new();
        if n.scatter {
            marks.push("scatter");
        }
        if n.subworkflow {
            marks.push("subworkflow");
        }
        if n.conditional {
            marks.push("when");
        }
        // The marks always show; the detail gets the room left.
        let detail = if marks.is_empty() {
            fit(&n.detail, 30)
        } else {
            let marks = marks.join(", ");
            let room = 30usize.saturating_sub(marks.chars().count() + 3).max(4);
            format!("{} · {marks}", fit(&n.detail, room))
        };
        s.push_str(&format!(
            r##"<text x="{:.1}" y="{:.1}" font-size="13" font-weight="600" fill="#111827">{}</text>"##,
            n.x + 10.0,
            n.y + 20.0,
            escape(&fit(&n.id, 24))
        ));
        s.push_str(&format!(
            r##"<text x="{:.1}" y="{:.1}" font-size="10.5" fill="#4b5563">{}</text>"##,
            n.x + 10.0,
            n.y + 37.0,
            escape(&detail)
        ));
        s.push_str("</g>");
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use insitu_core::pipelines::described::Process;

    #[test]
    fn labels_are_escaped_and_marks_drawn() {
        let p = Process::from_description(&serde_json::json!({
            "class": "Workflow",
            "inputs": [{"id": "x<script>", "type": "File"}],
            "outputs": [],
            "steps": [{"id": "each", "in": [{"id": "f", "source": ["x<script>"]}], "out": [],
                       "scatter": ["f"], "conditional": true,
                       "run": {"class": "Workflow", "inputs": [], "outputs": [], "steps": []}}]
        }));
        let svg = svg(&Graph::of(&p));
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains("x&lt;script&gt;"));
        assert!(
            svg.contains(r#"class="node step scatter subworkflow conditional""#),
            "{svg}"
        );
        assert!(svg.contains("scatter, subworkflow, when"));
        assert_eq!(svg.matches("<path class=\"edge\"").count(), 1);
    }
}
