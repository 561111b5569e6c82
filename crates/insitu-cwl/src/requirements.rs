//! The requirements and hints in force for a process: its own, then those
//! inherited from enclosing steps and workflows; unknown requirement
//! classes are unsupported.

use crate::error::{CwlError, Result};
use crate::expr::Evaluator;
use crate::types::Schemas;
use serde_json::Value;
use std::time::Duration;

/// Requirements and hints inherited from enclosing workflows and steps,
/// in decreasing priority.
#[derive(Clone, Debug, Default)]
pub struct Inherited {
    /// Requirements (outermost last).
    pub reqs: Vec<Value>,
    /// Hints (outermost last).
    pub hints: Vec<Value>,
    /// Whether this process runs inside a workflow (secondary files are then
    /// expected on the inputs rather than discovered next to them).
    pub nested: bool,
    /// Report `DockerRequirement` as unsupported instead of running the
    /// command on the host.
    pub reject_docker: bool,
    /// Step path from the top workflow (`align`, `sub/sort`), for
    /// provenance and progress.
    pub step: Option<String>,
    /// Position of this job in its step's scatter.
    pub scatter_index: Option<usize>,
    /// Provenance record of the enclosing process (of this process once
    /// it runs).
    pub record: Option<usize>,
}

/// The requirement classes this engine knows.
pub(crate) const KNOWN: &[&str] = &[
    "InlineJavascriptRequirement",
    "SchemaDefRequirement",
    "InitialWorkDirRequirement",
    "EnvVarRequirement",
    "ShellCommandRequirement",
    "ResourceRequirement",
    "WorkReuse",
    "NetworkAccess",
    "InplaceUpdateRequirement",
    "ToolTimeLimit",
    "SubworkflowFeatureRequirement",
    "ScatterFeatureRequirement",
    "MultipleInputFeatureRequirement",
    "StepInputExpressionRequirement",
    "LoadListingRequirement",
    "DockerRequirement",
    "SoftwareRequirement",
    // cwltool's extension (`cwltool:CUDARequirement`): GPUs a job needs,
    // given to it by the Slurm executor as a GRES.
    "CUDARequirement",
];

/// The effective requirements of one process.
#[derive(Clone, Debug)]
pub struct Reqs {
    list: Vec<Value>,
    hints: Vec<Value>,
    reject_docker: bool,
    /// See [`Inherited::nested`].
    pub nested: bool,
}

impl Reqs {
    /// Combine a process's requirements with inherited ones; fail for
    /// unsupported requirements.
    pub fn of(p: &Value, inh: &Inherited) -> Result<Reqs> {
        let own: Vec<Value> = p
            .get("requirements")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for r in &own {
            let c = r.get("class").and_then(Value::as_str).unwrap_or("");
            if c == "DockerRequirement" && inh.reject_docker {
                return Err(CwlError::Unsupported(
                    "DockerRequirement: containers are turned off (--reject-docker)".into(),
                ));
            }
            if !KNOWN.contains(&c) {
                return Err(CwlError::Unsupported(format!("unknown requirement '{c}'")));
            }
        }
        let mut list = own;
        list.extend(inh.reqs.iter().cloned());
        let mut hints: Vec<Value> = p
            .get("hints")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        hints.extend(inh.hints.iter().cloned());
        Ok(Reqs {
            list,
            hints,
            reject_docker: inh.reject_docker,
            nested: inh.nested,
        })
    }

    /// The requirement (or hint) of the given class, if any.
    pub fn get(&self, class: &str) -> Option<&Value> {
        self.list
            .iter()
            .find(|r| r.get("class").and_then(Value::as_str) == Some(class))
            .or_else(|| {
                self.hints
                    .iter()
                    .find(|r| r.get("class").and_then(Value::as_str) == Some(class))
            })
    }

    /// The `DockerRequirement` in force, and whether it is a requirement
    /// (true) or only a hint.
    pub fn docker(&self) -> Option<(&Value, bool)> {
        let is = |r: &&Value| r.get("class").and_then(Value::as_str) == Some("DockerRequirement");
        match self.list.iter().find(is) {
            Some(r) => Some((r, true)),
            None => self.hints.iter().find(is).map(|h| (h, false)),
        }
    }

    /// Inherited set for children of this process.
    pub fn inherit(&self) -> Inherited {
        Inherited {
            reqs: self.list.clone(),
            hints: self.hints.clone(),
            reject_docker: self.reject_docker,
            nested: true,
            ..Default::default()
        }
    }

    /// Named schema types.
    pub fn schemas(&self) -> Schemas {
        let mut s = Schemas::new();
        for r in self.list.iter().rev() {
            if r.get("class").and_then(Value::as_str) == Some("SchemaDefRequirement") {
                for t in r
                    .get("types")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(n) = t.get("name").and_then(Value::as_str) {
                        s.insert(n.to_string(), t.clone());
                        s.insert(crate::loader::shortname(n), t.clone());
                    }
                }
            }
        }
        s
    }

    /// Build the expression evaluator; `js_timeout` limits each evaluation.
    pub fn evaluator(&self, js_timeout: Duration) -> Evaluator {
        let mut ev = Evaluator {
            timeout: js_timeout,
            ..Default::default()
        };
        if let Some(r) = self.get("InlineJavascriptRequirement") {
            ev.js = true;
            for l in r
                .get("expressionLib")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(s) = l.as_str() {
                    ev.lib.push(s.to_string());
                }
            }
        }
        ev
    }
}
