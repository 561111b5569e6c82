//! A workflow as a graph to draw: its inputs, steps and outputs as nodes
//! and the links between them as edges, laid out in layers from left to
//! right (a node's layer is one more than the deepest node it takes a
//! value from; the order within a layer follows the neighbours' average
//! position, a few sweeps each way). Scattered steps, conditional steps and
//! subworkflows are marked on their node.

use serde::Serialize;

use super::described::Process;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Input,
    Step,
    Output,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    /// The input's, step's or output's id.
    pub id: String,
    pub kind: NodeKind,
    /// What the node is: an input's or output's type, a step's process.
    pub detail: String,
    pub scatter: bool,
    pub conditional: bool,
    pub subworkflow: bool,
    /// Left, top, width and height, in pixels.
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Edge {
    /// Indices into the nodes.
    pub from: usize,
    pub to: usize,
    /// The value it carries (a step's output, or the input it feeds).
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    pub width: f64,
    pub height: f64,
}

const NODE_W: f64 = 190.0;
const NODE_H: f64 = 50.0;
const GAP_X: f64 = 70.0;
const GAP_Y: f64 = 26.0;
const MARGIN: f64 = 20.0;

impl Graph {
    /// The graph of a process: a workflow's inputs, steps and outputs; a
    /// lone tool is one step between its inputs and outputs.
    pub fn of(p: &Process) -> Graph {
        let mut nodes: Vec<Node> = Vec::new();
        let node = |id: &str, kind, detail: String| Node {
            id: id.to_owned(),
            kind,
            detail,
            scatter: false,
            conditional: false,
            subworkflow: false,
            x: 0.0,
            y: 0.0,
            w: NODE_W,
            h: NODE_H,
        };
        for i in &p.inputs {
            nodes.push(node(&i.id, NodeKind::Input, i.ty.display()));
        }
        let first_step = nodes.len();
        let mut edges: Vec<Edge> = Vec::new();
        if p.class == "Workflow" {
            for s in &p.steps {
                let mut n = node(&s.id, NodeKind::Step, s.run.class.clone());
                n.scatter = !s.scatter.is_empty();
                n.conditional = s.conditional;
                n.subworkflow = s.run.class == "Workflow";
                if let Some(l) = &s.label {
                    n.detail = format!("{} · {l}", s.run.class);
                }
                nodes.push(n);
            }
        } else {
            nodes.push(node(
                p.label.as_deref().unwrap_or("tool"),
                NodeKind::Step,
                p.class.clone(),
            ));
        }
        let first_output = nodes.len();
        for o in &p.outputs {
            nodes.push(node(&o.id, NodeKind::Output, o.ty.display()));
        }
        // Where a source comes from: `step/output` or a workflow input.
        let find = |src: &str, nodes: &[Node]| -> Option<(usize, String)> {
            match src.split_once('/') {
                Some((step, out)) => nodes[first_step..first_output]
                    .iter()
                    .position(|n| n.id == step)
                    .map(|i| (first_step + i, out.to_owned())),
                None => nodes[..first_step]
                    .iter()
                    .position(|n| n.id == src)
                    .map(|i| (i, String::new())),
            }
        };
        if p.class == "Workflow" {
            for (k, s) in p.steps.iter().enumerate() {
                for input in &s.inputs {
                    for src in &input.source {
                        if let Some((from, out)) = find(src, &nodes) {
                            let label = if out.is_empty() {
                                input.id.clone()
                            } else {
                                out
                            };
                            edges.push(Edge {
                                from,
                                to: first_step + k,
                                label,
                            });
                        }
                    }
                }
            }
            for (k, o) in p.outputs.iter().enumerate() {
                for src in &o.source {
                    if let Some((from, out)) = find(src, &nodes) {
                        edges.push(Edge {
                            from,
                            to: first_output + k,
                            label: out,
                        });
                    }
                }
            }
        } else {
            for i in 0..first_step {
                edges.push(Edge {
                    from: i,
                    to: first_step,
                    label: String::new(),
                });
            }
            for k in first_output..nodes.len() {
                edges.push(Edge {
                    from: first_step,
                    to: k,
                    label: String::new(),
                });
            }
        }
        let mut g = Graph {
            nodes,
            edges,
            width: 0.0,
            height: 0.0,
        };
        g.lay_out(first_output);
        g
    }

    /// Layers, order within layers, then coordinates.
    fn lay_out(&mut self, first_output: usize) {
        let n = self.nodes.len();
        let mut layer = vec![0usize; n];
        for (i, node) in self.nodes.iter().enumerate() {
            if node.kind != NodeKind::Input {
                layer[i] = 1;
            }
        }
        // Longest path from the inputs; at most n rounds, so a cycle (which
        // validation refuses anyway) cannot loop.
        for _ in 0..n {
            let mut changed = false;
            for e in &self.edges {
                if e.to < first_output && layer[e.to] < layer[e.from] + 1 {
                    layer[e.to] = layer[e.from] + 1;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let last = layer[..first_output].iter().copied().max().unwrap_or(0) + 1;
        for l in layer.iter_mut().skip(first_output) {
            *l = last;
        }
        let mut layers: Vec<Vec<usize>> = vec![Vec::new(); last + 1];
        for (i, l) in layer.iter().enumerate() {
            layers[*l].push(i);
        }
        layers.retain(|l| !l.is_empty());
        // Barycentre sweeps: each node moves towards the average position
        // of its neighbours in the layer before (then after).
        for sweep in 0..4 {
            let downwards = sweep % 2 == 0;
            let order: Vec<usize> = if downwards {
                (1..layers.len()).collect()
            } else {
                (0..layers.len().saturating_sub(1)).rev().collect()
            };
            for li in order {
                let near = if downwards {
                    &layers[li - 1]
                } else {
                    &layers[li + 1]
                };
                let pos = |x: usize| near.iter().position(|&m| m == x);
                let mut keyed: Vec<(f64, usize, usize)> = layers[li]
                    .iter()
                    .enumerate()
                    .map(|(k, &node)| {
                        let neighbours: Vec<usize> = self
                            .edges
                            .iter()
                            .filter_map(|e| {
                                if e.to == node {
                                    pos(e.from)
                                } else if e.from == node {
                                    pos(e.to)
                                } else {
                                    None
                                }
                            })
                            .collect();
                        #[allow(clippy::cast_precision_loss)]
                        let key = if neighbours.is_empty() {
                            k as f64
                        } else {
                            neighbours.iter().sum::<usize>() as f64 / neighbours.len() as f64
                        };
                        (key, k, node)
                    })
                    .collect();
                keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                layers[li] = keyed.into_iter().map(|(_, _, node)| node).collect();
            }
        }
        let tallest = layers.iter().map(Vec::len).max().unwrap_or(0);
        #[allow(clippy::cast_precision_loss)]
        let column_h = |count: usize| count as f64 * (NODE_H + GAP_Y) - GAP_Y;
        let height = column_h(tallest);
        for (li, members) in layers.iter().enumerate() {
            let top = MARGIN + (height - column_h(members.len())) / 2.0;
            for (k, &node) in members.iter().enumerate() {
                #[allow(clippy::cast_precision_loss)]
                {
                    self.nodes[node].x = MARGIN + li as f64 * (NODE_W + GAP_X);
                    self.nodes[node].y = top + k as f64 * (NODE_H + GAP_Y);
                }
            }
        }
        #[allow(clippy::cast_precision_loss)]
        {
            self.width = 2.0 * MARGIN + layers.len() as f64 * (NODE_W + GAP_X) - GAP_X.min(NODE_W);
        }
        self.height = 2.0 * MARGIN + height.max(NODE_H);
    }
}

#[cfg(test)]
mod tests {
    use super::super::described::Process;
    use super::*;
    use serde_json::json;

    fn process() -> Process {
        Process::from_description(&json!({
            "class": "Workflow",
            "inputs": [{"id": "images", "type": {"type": "array", "items": "File"}},
                       {"id": "truth", "type": "File"}],
            "outputs": [{"id": "report", "type": "File", "source": ["compare/report"]}],
            "steps": [
                {"id": "extract", "in": [{"id": "image", "source": ["images"]}], "out": ["catalogue"],
                 "scatter": ["image"], "conditional": false,
                 "run": {"class": "CommandLineTool", "inputs": [], "outputs": []}},
                {"id": "compare", "in": [{"id": "found", "source": ["extract/catalogue"]},
                                         {"id": "truth", "source": ["truth"]}],
                 "out": ["report"], "scatter": [], "conditional": true,
                 "run": {"class": "Workflow", "inputs": [], "outputs": [], "steps": []}}
            ]
        }))
    }

    #[test]
    fn layers_follow_the_links_and_marks_show() {
        let g = Graph::of(&process());
        let at = |id: &str| g.nodes.iter().find(|n| n.id == id).unwrap();
        assert_eq!(at("images").kind, NodeKind::Input);
        assert!(at("images").x < at("extract").x);
        assert!(at("extract").x < at("compare").x);
        assert!(at("compare").x < at("report").x);
        assert_eq!(at("truth").x, at("images").x);
        assert!(at("extract").scatter && !at("extract").subworkflow);
        assert!(at("compare").subworkflow && at("compare").conditional);
        assert_eq!(at("images").detail, "File[]");
        assert_eq!(g.edges.len(), 4);
        let labels: Vec<&str> = g.edges.iter().map(|e| e.label.as_str()).collect();
        assert!(
            labels.contains(&"catalogue") && labels.contains(&"report"),
            "{labels:?}"
        );
        // No two nodes overlap, and all lie inside the drawing.
        for (i, a) in g.nodes.iter().enumerate() {
            assert!(a.x + a.w <= g.width && a.y + a.h <= g.height, "{a:?}");
            for b in &g.nodes[i + 1..] {
                let apart =
                    a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
                assert!(apart, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn a_lone_tool_is_one_step() {
        let p = Process::from_description(&json!({
            "class": "CommandLineTool", "label": "cut",
            "inputs": [{"id": "map", "type": "File"}],
            "outputs": [{"id": "cutout", "type": "File"}]
        }));
        let g = Graph::of(&p);
        assert_eq!(g.nodes.len(), 3);
        assert_eq!(g.edges.len(), 2);
        assert_eq!(g.nodes[1].id, "cut");
    }
}
