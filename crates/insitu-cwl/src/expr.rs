//! CWL expressions: parameter references (`$(inputs.x)`) and, with
//! `InlineJavascriptRequirement`, JavaScript in `$(...)` and `${...}`
//! evaluated by QuickJS with a memory limit and a wall-clock time limit, so a
//! runaway expression fails with a clear error instead of hanging.

use crate::error::{CwlError, Result};
use serde_json::{Map, Value};
use std::time::{Duration, Instant};

/// Evaluates expressions for one process.
#[derive(Clone, Debug)]
pub struct Evaluator {
    /// Whether `InlineJavascriptRequirement` is in effect.
    pub js: bool,
    /// `expressionLib` snippets evaluated before each expression.
    pub lib: Vec<String>,
    /// Time limit for one JavaScript evaluation.
    pub timeout: Duration,
    /// Memory limit of the JavaScript heap, in bytes.
    pub memory_limit: usize,
}

impl Default for Evaluator {
    fn default() -> Self {
        Evaluator {
            js: false,
            lib: vec![],
            timeout: Duration::from_secs(10),
            memory_limit: 512 << 20,
        }
    }
}

/// The variables visible to an expression.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// `inputs`
    pub inputs: Value,
    /// `self`
    pub this: Value,
    /// `runtime`
    pub runtime: Value,
}

enum Part {
    Lit(String),
    Expr(String, bool),
}

/// Scan a string for `$(...)` / `${...}` segments.
fn split(s: &str) -> Result<Vec<Part>> {
    let b: Vec<char> = s.chars().collect();
    let mut parts = vec![];
    let mut lit = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == '\\'
            && i + 2 < b.len()
            && b[i + 1] == '$'
            && (b[i + 2] == '(' || b[i + 2] == '{')
        {
            lit.push('$');
            i += 2;
            continue;
        }
        if b[i] == '\\' && i + 1 < b.len() && b[i + 1] == '\\' {
            lit.push('\\');
            i += 2;
            continue;
        }
        if b[i] == '$' && i + 1 < b.len() && (b[i + 1] == '(' || b[i + 1] == '{') {
            let open = b[i + 1];
            let close = if open == '(' { ')' } else { '}' };
            let mut depth = 0i32;
            let mut j = i + 1;
            let mut quote: Option<char> = None;
            let mut end = None;
            while j < b.len() {
                let c = b[j];
                if let Some(q) = quote {
                    if c == '\\' {
                        j += 2;
                        continue;
                    }
                    if c == q {
                        quote = None;
                    }
                } else if c == '\'' || c == '"' || c == '`' {
                    quote = Some(c);
                } else if c == '(' || c == '{' || c == '[' {
                    depth += 1;
                } else if c == ')' || c == '}' || c == ']' {
                    depth -= 1;
                    if depth == 0 {
                        if c != close {
                            return Err(CwlError::Expression(format!(
                                "unbalanced brackets in '{s}'"
                            )));
                        }
                        end = Some(j);
                        break;
                    }
                }
                j += 1;
            }
            let Some(end) = end else {
                return Err(CwlError::Expression(format!(
                    "unterminated expression in '{s}'"
                )));
            };
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(Part::Expr(b[i + 2..end].iter().collect(), open == '{'));
            i = end + 1;
            continue;
        }
        lit.push(b[i]);
        i += 1;
    }
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    Ok(parts)
}

/// Whether a string contains an expression.
pub fn has_expr(s: &str) -> bool {
    s.contains("$(") || s.contains("${")
}

fn stringify(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_json(other),
    }
}

/// JSON text with Python's default separators (`, ` and `: `), the
/// conventional serialisation of CWL runners in string interpolation.
pub fn py_json(v: &Value) -> String {
    match v {
        Value::Array(a) => format!("[{}]", a.iter().map(py_json).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, x)| format!("{}: {}", Value::String(k.clone()), py_json(x)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        o => o.to_string(),
    }
}

impl Evaluator {
    /// Evaluate a value: strings are interpolated, other values returned as is.
    pub fn eval(&self, v: &Value, scope: &Scope) -> Result<Value> {
        match v {
            Value::String(s) => self.eval_str(s, scope),
            other => Ok(other.clone()),
        }
    }

    /// Interpolate without stripping surrounding whitespace (used for
    /// InitialWorkDir entries, where a trailing newline makes the entry a
    /// string interpolation).
    pub fn eval_str_exact(&self, s: &str, scope: &Scope) -> Result<Value> {
        if !has_expr(s) {
            return Ok(Value::String(s.to_string()));
        }
        let parts = split(s)?;
        if parts.len() == 1
            && let Part::Expr(e, block) = &parts[0]
        {
            return self.eval_one(e, *block, scope);
        }
        let mut out = String::new();
        for p in parts {
            match p {
                Part::Lit(l) => out.push_str(&l),
                Part::Expr(e, block) => out.push_str(&stringify(&self.eval_one(&e, block, scope)?)),
            }
        }
        Ok(Value::String(out))
    }

    /// Interpolate a string per the CWL rules.
    pub fn eval_str(&self, s: &str, scope: &Scope) -> Result<Value> {
        if !has_expr(s) {
            return Ok(Value::String(s.to_string()));
        }
        let parts = split(s.trim())?;
        if parts.len() == 1
            && let Part::Expr(e, block) = &parts[0]
        {
            return self.eval_one(e, *block, scope);
        }
        let parts = split(s)?;
        let mut out = String::new();
        for p in parts {
            match p {
                Part::Lit(l) => out.push_str(&l),
                Part::Expr(e, block) => out.push_str(&stringify(&self.eval_one(&e, block, scope)?)),
            }
        }
        Ok(Value::String(out))
    }

    fn eval_one(&self, e: &str, block: bool, scope: &Scope) -> Result<Value> {
        if !block && let Some(v) = param_ref(e.trim(), scope) {
            return Ok(v);
        }
        if !self.js {
            return Err(CwlError::Expression(format!(
                "'{e}' is not a valid parameter reference and InlineJavascriptRequirement is not enabled"
            )));
        }
        let body = if block {
            format!("(function(){{{e}}})()")
        } else {
            format!("({e})")
        };
        self.run_js(&body, scope)
    }

    /// Run a JavaScript expression with `inputs`, `self` and `runtime` bound.
    ///
    /// The expression and the `expressionLib` run inside a fresh function
    /// scope of a QuickJS context kept per thread ([`JsEngine`]): creating
    /// a context costs more than most expressions, and a 1,000-job scatter
    /// evaluates thousands of them. The scope's `this` is the global object,
    /// as at the top level of a script (libraries such as underscore.js
    /// register themselves on it).
    pub fn run_js(&self, body: &str, scope: &Scope) -> Result<Value> {
        let mut code = String::with_capacity(body.len() + 256);
        code.push_str("(function(inputs, self, runtime){\n");
        for l in &self.lib {
            code.push_str(l);
            code.push_str(";\n");
        }
        code.push_str("var __r = ");
        code.push_str(body);
        code.push_str(
            ";\n var __s = JSON.stringify(__r); return __s === undefined ? 'null' : __s; }).call(this, ",
        );
        code.push_str(&scope.inputs.to_string());
        code.push_str(", ");
        code.push_str(&scope.this.to_string());
        code.push_str(", ");
        code.push_str(&scope.runtime.to_string());
        code.push(')');
        let start = Instant::now();
        let limit = self.timeout;
        let res = JsEngine::with(self.memory_limit, limit, |ctx| {
            ctx.with(
                |ctx| match ctx.eval::<String, _>(code.as_bytes().to_vec()) {
                    Ok(s) => Ok(s),
                    Err(rquickjs::Error::Exception) => {
                        let exc = ctx.catch();
                        let msg = if let Some(ex) = exc.as_exception() {
                            ex.message().unwrap_or_else(|| "exception".into())
                        } else if let Some(s) = exc.as_string() {
                            s.to_string().unwrap_or_default()
                        } else {
                            format!("{exc:?}")
                        };
                        Err(msg)
                    }
                    Err(e) => Err(e.to_string()),
                },
            )
        })?;
        match res {
            Ok(s) => serde_json::from_str(&s)
                .map_err(|e| CwlError::Expression(format!("bad expression result: {e}"))),
            Err(msg) => {
                if start.elapsed() > limit {
                    Err(CwlError::Expression(format!(
                        "expression exceeded the time limit of {:?}: {}",
                        limit,
                        abbreviate(body)
                    )))
                } else {
                    Err(CwlError::Expression(format!(
                        "{msg} in {}",
                        abbreviate(body)
                    )))
                }
            }
        }
    }
}

/// A QuickJS runtime and context reused by the evaluations on one thread.
/// Each evaluation gets its own deadline (checked by the interrupt
/// handler) and runs in its own function scope; the engine is rebuilt after
/// a failed evaluation (it may have hit a limit mid-way) and every
/// [`JsEngine::MAX_USES`] evaluations, so what an expression leaves in the
/// shared globals (a changed prototype) cannot pile up.
struct JsEngine {
    // Field order matters: the context must go before its runtime.
    ctx: rquickjs::Context,
    rt: rquickjs::Runtime,
    /// Deadline of the running evaluation, in ns since `epoch`.
    deadline: std::sync::Arc<std::sync::atomic::AtomicU64>,
    epoch: Instant,
    uses: u32,
}

thread_local! {
    static ENGINE: std::cell::RefCell<Option<JsEngine>> = const { std::cell::RefCell::new(None) };
}

impl JsEngine {
    const MAX_USES: u32 = 512;

    fn new() -> Result<JsEngine> {
        use std::sync::atomic::{AtomicU64, Ordering};
        let rt = rquickjs::Runtime::new()
            .map_err(|e| CwlError::Expression(format!("cannot start JavaScript engine: {e}")))?;
        rt.set_max_stack_size(1 << 20);
        let epoch = Instant::now();
        let deadline = std::sync::Arc::new(AtomicU64::new(u64::MAX));
        let d = deadline.clone();
        rt.set_interrupt_handler(Some(Box::new(move || {
            epoch.elapsed().as_nanos() as u64 > d.load(Ordering::Relaxed)
        })));
        let ctx = rquickjs::Context::full(&rt)
            .map_err(|e| CwlError::Expression(format!("cannot create JavaScript context: {e}")))?;
        Ok(JsEngine {
            ctx,
            rt,
            deadline,
            epoch,
            uses: 0,
        })
    }

    /// Run `f` on this thread's engine with the given limits.
    fn with<T, E>(
        memory_limit: usize,
        timeout: Duration,
        f: impl FnOnce(&rquickjs::Context) -> std::result::Result<T, E>,
    ) -> Result<std::result::Result<T, E>> {
        use std::sync::atomic::Ordering;
        let run = |e: &mut JsEngine| {
            e.rt.set_memory_limit(memory_limit);
            let until = e.epoch.elapsed() + timeout;
            e.deadline.store(
                until.as_nanos().min(u128::from(u64::MAX)) as u64,
                Ordering::Relaxed,
            );
            e.uses += 1;
            let r = f(&e.ctx);
            e.deadline.store(u64::MAX, Ordering::Relaxed);
            r
        };
        ENGINE.with(|cell| {
            let Ok(mut slot) = cell.try_borrow_mut() else {
                // Re-entered (cannot happen today): use a private engine.
                return Ok(run(&mut JsEngine::new()?));
            };
            let mut engine = match slot.take() {
                Some(e) if e.uses < Self::MAX_USES => e,
                _ => JsEngine::new()?,
            };
            let r = run(&mut engine);
            if r.is_ok() {
                *slot = Some(engine);
            }
            Ok(r)
        })
    }
}

fn abbreviate(s: &str) -> String {
    let s: String = s.chars().take(200).collect();
    s
}

/// Evaluate a parameter reference like `inputs.x.y[0]['z']` or `self.length`.
fn param_ref(e: &str, scope: &Scope) -> Option<Value> {
    if e == "null" {
        return Some(Value::Null);
    }
    let chars: Vec<char> = e.chars().collect();
    let mut i = 0;
    let ident = |i: &mut usize| -> Option<String> {
        let st = *i;
        while *i < chars.len() && (chars[*i].is_alphanumeric() || chars[*i] == '_') {
            *i += 1;
        }
        if *i == st {
            None
        } else {
            Some(chars[st..*i].iter().collect())
        }
    };
    let root = ident(&mut i)?;
    let mut cur = match root.as_str() {
        "inputs" => scope.inputs.clone(),
        "self" => scope.this.clone(),
        "runtime" => scope.runtime.clone(),
        _ => return None,
    };
    while i < chars.len() {
        let key: Value = if chars[i] == '.' {
            i += 1;
            Value::String(ident(&mut i)?)
        } else if chars[i] == '[' {
            i += 1;
            if i < chars.len() && (chars[i] == '\'' || chars[i] == '"') {
                let q = chars[i];
                i += 1;
                let mut k = String::new();
                while i < chars.len() && chars[i] != q {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    k.push(chars[i]);
                    i += 1;
                }
                i += 1;
                if i >= chars.len() || chars[i] != ']' {
                    return None;
                }
                i += 1;
                Value::String(k)
            } else {
                let st = i;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                let n: u64 = chars[st..i].iter().collect::<String>().parse().ok()?;
                if i >= chars.len() || chars[i] != ']' {
                    return None;
                }
                i += 1;
                Value::from(n)
            }
        } else {
            return None;
        };
        cur = match (&cur, &key) {
            (Value::Object(m), Value::String(k)) => m.get(k).cloned()?,
            (Value::Array(a), Value::String(k)) if k == "length" => Value::from(a.len()),
            (Value::String(s), Value::String(k)) if k == "length" => {
                Value::from(s.encode_utf16().count())
            }
            (Value::Array(a), Value::Number(n)) => {
                a.get(n.as_u64()? as usize).cloned().unwrap_or(Value::Null)
            }
            (Value::Null, _) => Value::Null,
            _ => return None,
        };
    }
    Some(cur)
}

/// Build an `inputs`-style object from a map.
pub fn obj(m: Map<String, Value>) -> Value {
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> Scope {
        Scope {
            inputs: json!({"a": {"b": [1, 2, 3]}, "s": "hi"}),
            this: json!(null),
            runtime: json!({"cores": 1}),
        }
    }

    #[test]
    fn param_refs() {
        let ev = Evaluator::default();
        assert_eq!(ev.eval_str("$(inputs.a.b[1])", &scope()).unwrap(), json!(2));
        assert_eq!(
            ev.eval_str("$(inputs['a'].b.length)", &scope()).unwrap(),
            json!(3)
        );
        assert_eq!(
            ev.eval_str("x-$(inputs.s)-$(inputs.a.b)", &scope())
                .unwrap(),
            json!("x-hi-[1, 2, 3]")
        );
        assert_eq!(
            ev.eval_str("\\$(inputs.s)", &scope()).unwrap(),
            json!("$(inputs.s)")
        );
        assert!(ev.eval_str("$(1+1)", &scope()).is_err());
    }

    #[test]
    fn javascript() {
        let ev = Evaluator {
            js: true,
            lib: vec!["function f(x){return x*2;}".into()],
            ..Default::default()
        };
        assert_eq!(
            ev.eval_str("$(f(inputs.a.b[2]))", &scope()).unwrap(),
            json!(6)
        );
        assert_eq!(
            ev.eval_str("${ return {x: inputs.s + '!'}; }", &scope())
                .unwrap(),
            json!({"x": "hi!"})
        );
        let err = ev.eval_str("$(undefinedThing.x)", &scope()).unwrap_err();
        assert!(err.to_string().contains("undefinedThing"), "{err}");
    }

    #[test]
    fn libraries_see_the_global_object_and_evaluations_stay_apart() {
        let ev = Evaluator {
            js: true,
            lib: vec![
                "(function(){ this.lib = {twice: function(x){ return 2 * x; }}; }).call(this)"
                    .into(),
                "var counter = (typeof counter === 'undefined') ? 1 : counter + 1;".into(),
            ],
            ..Default::default()
        };
        assert_eq!(
            ev.eval_str("$(lib.twice(21))", &scope()).unwrap(),
            json!(42)
        );
        for _ in 0..3 {
            assert_eq!(ev.eval_str("$(counter)", &scope()).unwrap(), json!(1));
        }
        let other = Evaluator {
            js: true,
            ..Default::default()
        };
        assert_eq!(
            other.eval_str("$(typeof counter)", &scope()).unwrap(),
            json!("undefined")
        );
    }

    #[test]
    fn infinite_loop_times_out() {
        let ev = Evaluator {
            js: true,
            timeout: Duration::from_millis(300),
            ..Default::default()
        };
        let t = Instant::now();
        let err = ev.eval_str("${ while(true){} }", &scope()).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(err.to_string().contains("time limit"), "{err}");
    }

    #[test]
    fn memory_limit() {
        let ev = Evaluator {
            js: true,
            memory_limit: 16 << 20,
            ..Default::default()
        };
        let err = ev.eval_str(
            "${ var a = []; while(true){ a.push(new Array(100000).join('x')); } }",
            &scope(),
        );
        assert!(err.is_err());
    }
}
