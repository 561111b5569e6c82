// The pipeline pages' script (no page has inline code): the development
// page's editor, validation and push; a pipeline's run form; a run's live
// progress. Everything goes through the JSON API with the page's session
// and its CSRF token.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";

async function api(method, url, body) {
  const init = { method, headers: { "x-csrf-token": csrf() }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(url, init);
  let data = null;
  try {
    data = await r.json();
  } catch (_) {
    data = null;
  }
  return { ok: r.ok, status: r.status, data };
}

// An SVG the platform drew (its text escaped, no script), put in place.
function showSvg(figure, svg) {
  const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
  figure.replaceChildren(document.importNode(doc.documentElement, true));
}

// ---- the development page ------------------------------------------------

function developPage(root) {
  const editors = new Map();
  for (const area of root.querySelectorAll("textarea.cwl")) {
    const file = area.dataset.file;
    if (window.CodeMirror) {
      const cm = window.CodeMirror.fromTextArea(area, {
        mode: "yaml",
        lineNumbers: true,
        indentUnit: 2,
        tabSize: 2,
        extraKeys: { Tab: (c) => c.replaceSelection("  ") },
        gutters: ["diagnostics", "CodeMirror-linenumbers"],
      });
      editors.set(file, {
        get: () => cm.getValue(),
        set: (t) => cm.setValue(t),
        refresh: () => cm.refresh(),
        cm,
      });
    } else {
      editors.set(file, { get: () => area.value, set: (t) => { area.value = t; }, refresh() {}, cm: null });
    }
  }
  const tabs = root.querySelectorAll("#file-tabs button");
  const show = (file) => {
    for (const t of tabs) t.classList.toggle("active", t.dataset.file === file);
    for (const d of root.querySelectorAll("div.file")) d.hidden = d.dataset.file !== file;
    editors.get(file)?.refresh();
  };
  for (const t of tabs) t.addEventListener("click", () => show(t.dataset.file));

  const files = () => Object.fromEntries([...editors].map(([name, e]) => [name, e.get()]));
  const status = document.getElementById("status");
  const list = document.getElementById("diagnostics");
  const graph = document.getElementById("graph");
  let marked = [];

  const clearMarks = () => {
    for (const [cm, line] of marked) {
      cm.removeLineClass(line, "background", "cwl-error-line");
      cm.setGutterMarker(line, "diagnostics", null);
    }
    marked = [];
  };

  async function validate() {
    status.textContent = "Checking…";
    const r = await api("POST", "/api/v1/pipelines/validate", { main: root.dataset.main, files: files() });
    clearMarks();
    list.replaceChildren();
    if (!r.ok) {
      status.textContent = r.data?.message ?? `Error ${r.status}`;
      status.className = "error";
      return null;
    }
    const c = r.data;
    if (c.valid) {
      status.textContent = `CWL valid · ${c.checked_at}`;
      status.className = "valid";
    } else {
      status.textContent = `CWL invalid · ${c.checked_at}`;
      status.className = "error";
    }
    for (const d of c.diagnostics) {
      const li = document.createElement("li");
      const where = [d.file, d.line, d.column].filter((x) => x !== null && x !== undefined).join(":");
      const code = document.createElement("code");
      code.textContent = where;
      li.append(code, " ", d.message);
      list.append(li);
      const e = editors.get(d.file ?? root.dataset.main);
      if (e?.cm && d.line) {
        const line = d.line - 1;
        e.cm.addLineClass(line, "background", "cwl-error-line");
        const mark = document.createElement("span");
        mark.className = "cwl-error-mark";
        mark.title = d.message;
        mark.textContent = "●";
        e.cm.setGutterMarker(line, "diagnostics", mark);
        marked.push([e.cm, line]);
        li.addEventListener("click", () => {
          show(d.file ?? root.dataset.main);
          e.cm.focus();
          e.cm.setCursor({ line, ch: Math.max(0, (d.column ?? 1) - 1) });
        });
      }
    }
    if (marked.length > 0) {
      const [cm, line] = marked[0];
      cm.scrollIntoView({ line, ch: 0 }, 80);
    }
    if (c.graph) {
      showSvg(graph, c.graph.svg);
    }
    return c;
  }

  document.getElementById("validate").addEventListener("click", validate);
  document.getElementById("push").addEventListener("click", async () => {
    const error = document.getElementById("push-error");
    error.hidden = true;
    const v = (id) => document.getElementById(id).value.trim();
    const body = {
      name: v("meta-name"),
      version: v("meta-version"),
      description: v("meta-description"),
      keywords: v("meta-keywords").split(",").map((k) => k.trim()).filter((k) => k),
      author: v("meta-author"),
      licence: v("meta-licence"),
      main: root.dataset.main,
      files: files(),
    };
    const r = await api("POST", "/api/v1/pipelines", body);
    if (r.ok) {
      location.href = `/pipelines/${encodeURIComponent(r.data.owner)}/${encodeURIComponent(r.data.name)}`;
    } else {
      error.textContent = r.data?.message ?? `Error ${r.status}`;
      error.hidden = false;
      if (r.data?.code === "invalid_cwl") validate();
    }
  });
}

// ---- a pipeline's page: the run form, push to system ---------------------

function fieldValue(label) {
  const kind = label.dataset.kind;
  const control = label.querySelector("input, select, textarea");
  if (kind === "boolean") return control.checked;
  const raw = control.value.trim();
  if (raw === "") return undefined;
  switch (kind) {
    case "integer":
      return parseInt(raw, 10);
    case "number":
      return parseFloat(raw);
    case "file":
      return { class: "File", path: raw };
    case "directory":
      return { class: "Directory", path: raw };
    case "json":
      return JSON.parse(raw);
    default:
      return raw;
  }
}

function runForm(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = document.getElementById("run-error");
    error.hidden = true;
    const job = {};
    try {
      for (const label of form.querySelectorAll("label.field")) {
        const v = fieldValue(label);
        if (v !== undefined) job[label.dataset.input] = v;
      }
    } catch (e) {
      error.textContent = `A field is not valid JSON: ${e.message}`;
      error.hidden = false;
      return;
    }
    const body = { pipeline: form.dataset.pipeline, version: form.dataset.version, job };
    const zone = form.querySelector("#run-zone")?.value;
    if (zone) body.zone = zone;
    const r = await api("POST", "/api/v1/runs", body);
    if (r.ok) {
      location.href = `/runs/${encodeURIComponent(r.data.id)}`;
    } else {
      error.textContent = r.data?.message ?? `Error ${r.status}`;
      error.hidden = false;
    }
  });
}

function pushToSystem(button) {
  button.addEventListener("click", async () => {
    const out = document.getElementById("push-status");
    const r = await api("POST", button.dataset.url);
    out.textContent = r.ok
      ? `Pushed as system pipeline ${r.data.reference} ${r.data.version}`
      : r.data?.message ?? `Error ${r.status}`;
  });
}

// ---- a run: live progress and log ----------------------------------------

const ENDED = ["succeeded", "failed", "cancelled"];

function runPage(root) {
  const id = root.dataset.run;
  let seen = Number(root.dataset.events) || 0;
  let logFrom = 0;
  const log = document.getElementById("log");
  const state = document.getElementById("run-state");

  const render = (run) => {
    state.textContent = run.state;
    state.className = `state state-${run.state}`;
    const reason = document.getElementById("run-reason");
    reason.textContent = run.reason ?? "";
    reason.hidden = !run.reason;
    const notice = document.getElementById("run-notice");
    notice.textContent = run.notice ?? "";
    notice.hidden = !run.notice;
    document.getElementById("cancel-run").hidden = !["queued", "running"].includes(run.state);
    document.getElementById("resume-run").hidden = !["failed", "cancelled"].includes(run.state);
    document.getElementById("provenance").hidden = !ENDED.includes(run.state);
    const body = document.querySelector("#steps tbody");
    body.replaceChildren();
    for (const st of run.steps) {
      const tr = document.createElement("tr");
      tr.dataset.step = st.step;
      const cells = [st.step, st.phase, `${st.done}/${st.jobs}${st.scatter ? " (scatter)" : ""}`, st.error ?? ""];
      for (const [i, text] of cells.entries()) {
        const td = document.createElement("td");
        td.className = ["name", "phase", "progress", "step-error"][i];
        td.textContent = text;
        tr.append(td);
      }
      body.append(tr);
    }
  };

  // The log shown: the engine's (null) or a job's; switching starts over.
  let logJob = null;
  let logGeneration = 0;
  async function followLog() {
    const generation = ++logGeneration;
    const job = logJob === null ? "" : `&job=${logJob}`;
    log.textContent = "";
    logFrom = 0;
    document.getElementById("log-of").textContent = logJob === null ? "of the engine" : `of job ${logJob}`;
    for (;;) {
      const r = await api("GET", `/api/v1/runs/${id}/logs?from=${logFrom}&wait=20${job}`);
      if (!r.ok || generation !== logGeneration) return;
      log.textContent += r.data.text;
      logFrom = r.data.next;
      if (r.data.done) return;
    }
  }

  async function showJobs() {
    const r = await api("GET", `/api/v1/runs/${id}/jobs`);
    if (!r.ok) return;
    const body = document.querySelector("#jobs tbody");
    body.replaceChildren();
    for (const j of r.data.items) {
      const tr = document.createElement("tr");
      tr.dataset.job = j.job;
      for (const text of [j.job, j.step ?? "", j.index ?? "", j.phase, j.exit_code ?? ""]) {
        const td = document.createElement("td");
        td.textContent = String(text);
        tr.append(td);
      }
      const td = document.createElement("td");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "show-log";
      b.textContent = "Log";
      b.addEventListener("click", () => {
        logJob = j.job;
        followLog();
      });
      td.append(b);
      tr.append(td);
      body.append(tr);
    }
  }

  async function follow() {
    for (;;) {
      const r = await api("GET", `/api/v1/runs/${id}?since=${seen}&wait=20`);
      if (!r.ok) {
        await new Promise((ok) => setTimeout(ok, 2000));
        continue;
      }
      render(r.data);
      if (r.data.events_seen !== seen || ENDED.includes(r.data.state)) showJobs();
      seen = r.data.events_seen;
      if (ENDED.includes(r.data.state)) return;
    }
  }

  document.getElementById("cancel-run").addEventListener("click", () => api("POST", `/api/v1/runs/${id}/cancel`));
  document.getElementById("resume-run").addEventListener("click", async () => {
    const r = await api("POST", `/api/v1/runs/${id}/resume`);
    if (r.ok) location.href = `/runs/${encodeURIComponent(r.data.id)}`;
  });
  showJobs();
  follow();
  followLog();
}

document.addEventListener("DOMContentLoaded", () => {
  const develop = document.getElementById("develop");
  if (develop) developPage(develop);
  const form = document.getElementById("run-form");
  if (form) runForm(form);
  const push = document.getElementById("push-system");
  if (push) pushToSystem(push);
  const run = document.getElementById("run");
  if (run) runPage(run);
});
