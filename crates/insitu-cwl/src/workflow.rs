//! Workflow execution: a dataflow scheduler that runs every step whose
//! inputs are available, in parallel (bounded by the run's slots), with
//! scatter (dotproduct, flat and nested crossproduct), conditional `when`,
//! `pickValue`, `linkMerge` and `valueFrom`.

use crate::error::{CwlError, Result};
use crate::events::{Event, JobTrack, Status, now_ms};
use crate::expr::Scope;
use crate::process::{RunCtx, prepare_inputs};
use crate::requirements::{Inherited, Reqs};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Boxed future of a process result.
pub type ProcFuture = Pin<Box<dyn Future<Output = Result<Value>> + Send>>;

/// Run any process class (recording its provenance when asked to).
pub fn run_process(p: Value, job: Value, inh: Inherited, ctx: Arc<RunCtx>) -> ProcFuture {
    Box::pin(async move {
        let Some(rec) = ctx.recorder.clone() else {
            return run_class(p, job, inh, ctx).await;
        };
        let id = rec.begin();
        let start = std::time::SystemTime::now();
        let (parent, step, scatter_index) = (inh.record, inh.step.clone(), inh.scatter_index);
        let class = p
            .get("class")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let inh = Inherited {
            record: Some(id),
            ..inh
        };
        let r = run_class(p, job.clone(), inh, ctx).await;
        rec.finish(crate::provenance::Record {
            id,
            parent,
            step,
            scatter_index,
            class,
            start,
            end: std::time::SystemTime::now(),
            inputs: job,
            outputs: r.as_ref().map(Value::clone).unwrap_or(Value::Null),
            error: r.as_ref().err().map(|e| e.to_string()),
            command: None,
        });
        r
    })
}

async fn run_class(p: Value, job: Value, inh: Inherited, ctx: Arc<RunCtx>) -> Result<Value> {
    {
        match p.get("class").and_then(Value::as_str) {
            Some("CommandLineTool") => {
                crate::tool::run_command_line_tool(&p, &job, &inh, &ctx).await
            }
            Some("ExpressionTool") => crate::tool::run_expression_tool(&p, &job, &inh, &ctx),
            Some("Workflow") => run_workflow(p, job, inh, ctx).await,
            Some(c) => Err(CwlError::Unsupported(format!("cannot run class {c}"))),
            None => Err(CwlError::Validation("process without class".into())),
        }
    }
}

fn sources_of(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => vec![],
    }
}

/// Resolve a source reference against the known names.
pub fn resolve_source(src: &str, known: &HashSet<String>) -> Option<String> {
    let mut s = src.trim_start_matches('#');
    loop {
        if known.contains(s) {
            return Some(s.to_string());
        }
        match s.find('/') {
            Some(i) => s = &s[i + 1..],
            None => return None,
        }
    }
}

/// Check the workflow graph: every source exists, no cycles.
pub fn check_workflow(p: &Value) -> Result<()> {
    let mut known: HashSet<String> = HashSet::new();
    for i in p
        .get("inputs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        known.insert(
            i.get("id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        );
    }
    let steps: Vec<&Value> = p
        .get("steps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    for s in &steps {
        let sid = s.get("id").and_then(Value::as_str).unwrap_or("");
        for o in s.get("out").and_then(Value::as_array).into_iter().flatten() {
            known.insert(format!("{sid}/{}", o.as_str().unwrap_or("")));
        }
    }
    let mut deps: HashMap<String, HashSet<String>> = HashMap::new();
    for s in &steps {
        let sid = s
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut d = HashSet::new();
        for i in s.get("in").and_then(Value::as_array).into_iter().flatten() {
            for src in sources_of(i.get("source")) {
                let Some(r) = resolve_source(&src, &known) else {
                    return Err(CwlError::Validation(format!(
                        "step '{sid}': input '{}': source '{src}' does not exist",
                        i.get("id").and_then(Value::as_str).unwrap_or("")
                    )));
                };
                if let Some((st, _)) = r.split_once('/') {
                    d.insert(st.to_string());
                }
            }
        }
        deps.insert(sid, d);
    }
    for o in p
        .get("outputs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for src in sources_of(o.get("outputSource")) {
            if resolve_source(&src, &known).is_none() {
                return Err(CwlError::Validation(format!(
                    "workflow output '{}': outputSource '{src}' does not exist",
                    o.get("id").and_then(Value::as_str).unwrap_or("")
                )));
            }
        }
    }
    // cycle detection (Kahn)
    let mut done: HashSet<String> = HashSet::new();
    loop {
        let ready: Vec<String> = deps
            .iter()
            .filter(|(k, d)| !done.contains(*k) && d.iter().all(|x| done.contains(x)))
            .map(|(k, _)| k.clone())
            .collect();
        if ready.is_empty() {
            break;
        }
        done.extend(ready);
    }
    if done.len() < deps.len() {
        let mut cyc: Vec<&String> = deps.keys().filter(|k| !done.contains(*k)).collect();
        cyc.sort();
        return Err(CwlError::Validation(format!(
            "workflow has a cycle between steps: {}",
            cyc.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    for s in steps {
        if let Some(run) = s.get("run")
            && run.get("class").and_then(Value::as_str) == Some("Workflow")
        {
            check_workflow(run)?;
        }
    }
    Ok(())
}

fn gather(
    srcs: &[String],
    link_merge: Option<&str>,
    pick: Option<&str>,
    state: &HashMap<String, Value>,
    known: &HashSet<String>,
    multi: bool,
) -> Result<Value> {
    let mut vals = vec![];
    for s in srcs {
        let r = resolve_source(s, known)
            .ok_or_else(|| CwlError::Validation(format!("unknown source '{s}'")))?;
        vals.push(state.get(&r).cloned().unwrap_or(Value::Null));
    }
    let mut v = if multi || link_merge.is_some() {
        match link_merge.unwrap_or("merge_nested") {
            "merge_flattened" => {
                let mut out = vec![];
                for x in vals {
                    match x {
                        Value::Array(a) => out.extend(a),
                        o => out.push(o),
                    }
                }
                Value::Array(out)
            }
            _ => Value::Array(vals),
        }
    } else {
        vals.into_iter().next().unwrap_or(Value::Null)
    };
    if let Some(pick) = pick {
        let Value::Array(a) = &v else {
            return Ok(v);
        };
        let nn: Vec<Value> = a.iter().filter(|x| !x.is_null()).cloned().collect();
        v = match pick {
            "first_non_null" => nn.into_iter().next().ok_or_else(|| {
                CwlError::Execution("pickValue first_non_null: all values are null".into())
            })?,
            "the_only_non_null" => {
                if nn.len() != 1 {
                    return Err(CwlError::Execution(format!(
                        "pickValue the_only_non_null: {} non-null values",
                        nn.len()
                    )));
                }
                nn.into_iter().next().unwrap_or(Value::Null)
            }
            "all_non_null" => Value::Array(nn),
            other => return Err(CwlError::Validation(format!("unknown pickValue '{other}'"))),
        };
    }
    Ok(v)
}

async fn run_workflow(p: Value, job: Value, inh: Inherited, ctx: Arc<RunCtx>) -> Result<Value> {
    check_workflow(&p)?;
    let reqs = Reqs::of(&p, &inh)?;
    let ev = reqs.evaluator(ctx.js_timeout);
    let inputs = prepare_inputs(&p, &job, &reqs, &ev, &ctx.access)?;
    let mut state: HashMap<String, Value> = inputs.clone().into_iter().collect();
    let mut known: HashSet<String> = state.keys().cloned().collect();
    let steps: Vec<Value> = p
        .get("steps")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for s in &steps {
        let sid = s.get("id").and_then(Value::as_str).unwrap_or("");
        for o in s.get("out").and_then(Value::as_array).into_iter().flatten() {
            known.insert(format!("{sid}/{}", o.as_str().unwrap_or("")));
        }
    }
    ctx.progress
        .total
        .fetch_add(steps.len(), std::sync::atomic::Ordering::SeqCst);
    let mut pending: Vec<usize> = (0..steps.len()).collect();
    let mut running = tokio::task::JoinSet::new();
    let mut failure: Option<CwlError> = None;
    loop {
        if failure.is_none() {
            let mut still = vec![];
            for idx in pending.drain(..) {
                let s = &steps[idx];
                let ready = s
                    .get("in")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .all(|i| {
                        sources_of(i.get("source")).iter().all(|src| {
                            resolve_source(src, &known).is_some_and(|r| state.contains_key(&r))
                        })
                    });
                if ready {
                    let mut step_inputs = Map::new();
                    for i in s.get("in").and_then(Value::as_array).into_iter().flatten() {
                        let id = i
                            .get("id")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        let srcs = sources_of(i.get("source"));
                        let multi = matches!(i.get("source"), Some(Value::Array(a)) if a.len() > 1);
                        let mut v = if srcs.is_empty() {
                            Value::Null
                        } else {
                            gather(
                                &srcs,
                                i.get("linkMerge").and_then(Value::as_str),
                                i.get("pickValue").and_then(Value::as_str),
                                &state,
                                &known,
                                multi,
                            )?
                        };
                        if v.is_null()
                            && let Some(d) = i.get("default")
                        {
                            v = d.clone();
                        }
                        step_inputs.insert(id, v);
                    }
                    let step = s.clone();
                    let sinh = Inherited {
                        reqs: step
                            .get("requirements")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default()
                            .into_iter()
                            .chain(reqs.inherit().reqs)
                            .collect(),
                        hints: step
                            .get("hints")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default()
                            .into_iter()
                            .chain(reqs.inherit().hints)
                            .collect(),
                        reject_docker: inh.reject_docker,
                        nested: true,
                        step: Some(match &inh.step {
                            Some(parent) => format!(
                                "{parent}/{}",
                                s.get("id").and_then(Value::as_str).unwrap_or("")
                            ),
                            None => s
                                .get("id")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                        }),
                        scatter_index: None,
                        record: inh.record,
                    };
                    let ctx2 = ctx.clone();
                    let ev2 = ev.clone();
                    running.spawn(async move {
                        let r = run_step(&step, Value::Object(step_inputs), sinh, ctx2, ev2).await;
                        (idx, r)
                    });
                } else {
                    still.push(idx);
                }
            }
            pending = still;
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (idx, r) = joined.map_err(|e| CwlError::Execution(format!("step task failed: {e}")))?;
        let sid = steps[idx]
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match r {
            Ok(outs) => {
                for o in steps[idx]
                    .get("out")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let on = o.as_str().unwrap_or("");
                    state.insert(
                        format!("{sid}/{on}"),
                        outs.get(on).cloned().unwrap_or(Value::Null),
                    );
                }
            }
            Err(e) => {
                if failure.is_none() {
                    failure = Some(match e {
                        CwlError::Execution(m) => CwlError::Execution(format!("step '{sid}': {m}")),
                        CwlError::Expression(m) => {
                            CwlError::Expression(format!("step '{sid}': {m}"))
                        }
                        CwlError::Input(m) => CwlError::Input(format!("step '{sid}': {m}")),
                        other => other,
                    });
                }
            }
        }
    }
    if let Some(f) = failure {
        return Err(f);
    }
    if !pending.is_empty() {
        return Err(CwlError::Validation(
            "workflow could not make progress (cycle?)".into(),
        ));
    }
    let mut out = Map::new();
    for o in p
        .get("outputs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = o
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let srcs = sources_of(o.get("outputSource"));
        let multi = matches!(o.get("outputSource"), Some(Value::Array(a)) if a.len() > 1);
        let v = if srcs.is_empty() {
            Value::Null
        } else {
            gather(
                &srcs,
                o.get("linkMerge").and_then(Value::as_str),
                o.get("pickValue").and_then(Value::as_str),
                &state,
                &known,
                multi,
            )?
        };
        let t = o.get("type").cloned().unwrap_or(Value::Null);
        if !v.is_null() && !crate::types::matches(&v, &t, &reqs.schemas()) {
            return Err(CwlError::Execution(format!(
                "workflow output '{id}': value {} does not match type {t}",
                crate::process::short_json(&v)
            )));
        }
        out.insert(id, v);
    }
    Ok(Value::Object(out))
}

/// One job order (input object) of a scattered step.
pub type JobOrder = Map<String, Value>;

/// Scatter: returns the list of jobs and the shape for nested results.
pub fn scatter_jobs(
    inputs: &Map<String, Value>,
    names: &[String],
    method: &str,
) -> Result<(Vec<JobOrder>, Vec<usize>)> {
    let mut arrays = vec![];
    for n in names {
        match inputs.get(n) {
            Some(Value::Array(a)) => arrays.push(a.clone()),
            Some(other) => {
                return Err(CwlError::Execution(format!(
                    "scatter input '{n}' is not an array: {other}"
                )));
            }
            None => {
                return Err(CwlError::Validation(format!(
                    "scatter: unknown input '{n}'"
                )));
            }
        }
    }
    let mut jobs = vec![];
    match method {
        "dotproduct" => {
            let len = arrays.first().map(Vec::len).unwrap_or(0);
            if arrays.iter().any(|a| a.len() != len) {
                return Err(CwlError::Execution(
                    "dotproduct scatter over arrays of different lengths".into(),
                ));
            }
            for i in 0..len {
                let mut j = inputs.clone();
                for (n, a) in names.iter().zip(&arrays) {
                    j.insert(n.clone(), a[i].clone());
                }
                jobs.push(j);
            }
            Ok((jobs, vec![len]))
        }
        "flat_crossproduct" | "nested_crossproduct" => {
            let dims: Vec<usize> = arrays.iter().map(Vec::len).collect();
            let total: usize = dims.iter().product();
            for k in 0..total {
                let mut j = inputs.clone();
                let mut rem = k;
                for d in (0..dims.len()).rev() {
                    let i = rem % dims[d];
                    rem /= dims[d];
                    j.insert(names[d].clone(), arrays[d][i].clone());
                }
                jobs.push(j);
            }
            if method == "flat_crossproduct" {
                Ok((jobs, vec![total]))
            } else {
                Ok((jobs, dims))
            }
        }
        other => Err(CwlError::Validation(format!(
            "unknown scatterMethod '{other}'"
        ))),
    }
}

/// Nest a flat list of results according to dimensions.
pub fn nest(flat: Vec<Value>, dims: &[usize]) -> Value {
    if dims.len() <= 1 {
        return Value::Array(flat);
    }
    let inner: usize = dims[1..].iter().product();
    if inner == 0 {
        return Value::Array((0..dims[0]).map(|_| nest(vec![], &dims[1..])).collect());
    }
    let mut out = vec![];
    let mut it = flat.into_iter();
    for _ in 0..dims[0] {
        let chunk: Vec<Value> = it.by_ref().take(inner).collect();
        out.push(nest(chunk, &dims[1..]));
    }
    Value::Array(out)
}

/// Run one step (every job of its scatter); its start and end go to the
/// run's events.
async fn run_step(
    step: &Value,
    inputs: Value,
    inh: Inherited,
    ctx: Arc<RunCtx>,
    ev: crate::expr::Evaluator,
) -> Result<Value> {
    let events = ctx.events.clone();
    let name = inh.step.clone();
    let mut dispatched = false;
    let r = run_step_jobs(step, inputs, inh, ctx, ev, &mut dispatched).await;
    if let (Some(events), true) = (events, dispatched) {
        let error = r.as_ref().err().map(ToString::to_string);
        events.emit(&Event::StepFinished {
            step: name.as_deref(),
            at_ms: now_ms(),
            status: if r.is_ok() {
                Status::Success
            } else {
                Status::Failed
            },
            error: error.as_deref(),
        });
    }
    r
}

async fn run_step_jobs(
    step: &Value,
    inputs: Value,
    inh: Inherited,
    ctx: Arc<RunCtx>,
    ev: crate::expr::Evaluator,
    dispatched: &mut bool,
) -> Result<Value> {
    let Value::Object(inputs) = inputs else {
        return Err(CwlError::Execution("bad step inputs".into()));
    };
    let run = step.get("run").cloned().unwrap_or(Value::Null);
    let scatter: Vec<String> = step
        .get("scatter")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    let outs: Vec<String> = step
        .get("out")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    let (jobs, dims) = if scatter.is_empty() {
        (vec![inputs.clone()], vec![])
    } else {
        let method = step
            .get("scatterMethod")
            .and_then(Value::as_str)
            .unwrap_or("dotproduct");
        scatter_jobs(&inputs, &scatter, method)?
    };
    let mut handles = tokio::task::JoinSet::new();
    let n = jobs.len();
    if let Some(events) = &ctx.events {
        events.emit(&Event::StepStarted {
            step: inh.step.as_deref(),
            jobs: n,
            scatter: !scatter.is_empty(),
            at_ms: now_ms(),
        });
        *dispatched = true;
    }
    // Tools report their own jobs (when their command starts); other
    // processes are jobs from the moment they start.
    let tracked = run.get("class").and_then(Value::as_str) != Some("CommandLineTool");
    let index_of = |k: usize| (!scatter.is_empty()).then_some(k);
    // The step was counted as one job; a scatter makes it n.
    {
        use std::sync::atomic::Ordering::SeqCst;
        match n {
            0 => {
                ctx.progress.total.fetch_sub(1, SeqCst);
            }
            n => {
                ctx.progress.total.fetch_add(n - 1, SeqCst);
            }
        }
    }
    for (k, j) in jobs.into_iter().enumerate() {
        let mut j = j;
        // Defaults of the step come from the document: read nothing (a
        // valueFrom's loadContents) from where the run may not.
        if ctx.access.is_limited() {
            ctx.access
                .check_value("step input", &Value::Object(j.clone()))?;
        }
        // valueFrom
        let snapshot = Value::Object(j.clone());
        let mut fs_snapshot = snapshot.clone();
        crate::files::fill_fs(&mut fs_snapshot, "no_listing").ok();
        for i in step
            .get("in")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(vf) = i.get("valueFrom") {
                let id = i
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let mut selfv = j.get(&id).cloned().unwrap_or(Value::Null);
                crate::files::fill_fs(&mut selfv, "no_listing").ok();
                if selfv.get("class").and_then(Value::as_str) == Some("File")
                    && i.get("loadContents")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                    && let Some(pth) = selfv.get("path").and_then(Value::as_str)
                {
                    selfv["contents"] =
                        Value::String(crate::files::load_contents(std::path::Path::new(pth))?);
                }
                let scope = Scope {
                    inputs: fs_snapshot.clone(),
                    this: selfv,
                    runtime: Value::Null,
                };
                let v = ev.eval(vf, &scope)?;
                j.insert(id, v);
            }
        }
        if let Some(w) = step.get("when") {
            let mut wi = Value::Object(j.clone());
            crate::files::fill_fs(&mut wi, "no_listing").ok();
            let scope = Scope {
                inputs: wi,
                this: Value::Null,
                runtime: Value::Null,
            };
            match ev.eval(w, &scope)? {
                Value::Bool(true) => {}
                Value::Bool(false) => {
                    if let Some(events) = &ctx.events {
                        JobTrack::new(events, inh.step.as_deref(), index_of(k), false).finished(
                            Status::Skipped,
                            None,
                            None,
                        );
                    }
                    ctx.progress
                        .done
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    handles.spawn(async move { (k, Ok(Value::Null)) });
                    continue;
                }
                other => {
                    return Err(CwlError::Expression(format!(
                        "'when' must evaluate to a boolean, got {other}"
                    )));
                }
            }
        }
        let runp = run.clone();
        let mut inh2 = inh.clone();
        if !scatter.is_empty() {
            inh2.scatter_index = Some(k);
        }
        let ctx2 = ctx.clone();
        let track = ctx
            .events
            .as_ref()
            .filter(|_| tracked)
            .map(|e| JobTrack::new(e, inh.step.as_deref(), index_of(k), false));
        handles.spawn(async move {
            if let Some(t) = &track {
                t.started();
            }
            let r = run_process(runp, Value::Object(j), inh2, ctx2.clone()).await;
            if let Some(t) = &track {
                match &r {
                    Ok(_) => t.finished(Status::Success, None, None),
                    Err(e) => t.finished(Status::Failed, None, Some(&e.to_string())),
                }
            }
            ctx2.progress
                .done
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (k, r)
        });
    }
    let mut results: Vec<Value> = vec![Value::Null; n];
    let mut err = None;
    while let Some(r) = handles.join_next().await {
        let (k, r) = r.map_err(|e| CwlError::Execution(format!("task failed: {e}")))?;
        match r {
            Ok(v) => results[k] = v,
            Err(e) => {
                if err.is_none() {
                    err = Some(e);
                }
            }
        }
    }
    if let Some(e) = err {
        return Err(e);
    }
    if scatter.is_empty() {
        let r = results.into_iter().next().unwrap_or(Value::Null);
        let mut m = Map::new();
        for o in outs {
            m.insert(o.clone(), r.get(&o).cloned().unwrap_or(Value::Null));
        }
        return Ok(Value::Object(m));
    }
    let mut m = Map::new();
    for o in outs {
        let flat: Vec<Value> = results
            .iter()
            .map(|r| r.get(&o).cloned().unwrap_or(Value::Null))
            .collect();
        m.insert(o, nest(flat, &dims));
    }
    Ok(json!(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Map<String, Value> {
        json!({"a": [1, 2], "b": ["x", "y", "z"], "c": 0})
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn dotproduct_requires_equal_lengths() {
        assert!(scatter_jobs(&inputs(), &["a".into(), "b".into()], "dotproduct").is_err());
        let (jobs, _) = scatter_jobs(&inputs(), &["a".into()], "dotproduct").unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[1]["a"], json!(2));
        assert_eq!(jobs[1]["c"], json!(0));
    }

    #[test]
    fn crossproducts() {
        let (jobs, dims) =
            scatter_jobs(&inputs(), &["a".into(), "b".into()], "nested_crossproduct").unwrap();
        assert_eq!(jobs.len(), 6);
        assert_eq!(dims, vec![2, 3]);
        assert_eq!(jobs[4]["a"], json!(2));
        assert_eq!(jobs[4]["b"], json!("y"));
        let flat: Vec<Value> = (0..6).map(|i| json!(i)).collect();
        assert_eq!(nest(flat, &dims), json!([[0, 1, 2], [3, 4, 5]]));
        let (_, dims) =
            scatter_jobs(&inputs(), &["a".into(), "b".into()], "flat_crossproduct").unwrap();
        assert_eq!(dims, vec![6]);
    }

    #[test]
    fn cycle_detected() {
        let wf = json!({
            "class": "Workflow", "inputs": [], "outputs": [],
            "steps": [
                {"id": "a", "in": [{"id": "x", "source": "b/o"}], "out": ["o"], "run": {}},
                {"id": "b", "in": [{"id": "x", "source": "a/o"}], "out": ["o"], "run": {}}
            ]
        });
        let e = check_workflow(&wf).unwrap_err();
        assert!(e.to_string().contains("cycle"), "{e}");
    }
}
