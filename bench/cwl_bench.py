#!/usr/bin/env python3
"""CWL runners side by side, in one run: Insitu's engine (`insitu-cwl`, with
and without its per-step bubblewrap sandbox), cwltool (`--no-container`, and
`--parallel` for the scatters) and, when it could be built, the Rust peer
`commonwl` (cwl_engine, through a small driver). Workloads:

  tool        one trivial CommandLineTool (echo, stdout captured)
  scatter     a Workflow scattering that tool over N strings (default 1000)
  scatter-js  the same with InlineJavascriptRequirement and a JavaScript
              expression evaluated in every scattered job

Every run gets a fresh output directory, must exit 0 and must produce the
expected number of output files; wall time is measured around the process.
Prints a Markdown table of medians (min in brackets) and the ratio of each
runner's median to Insitu's (sandboxed) median.

Usage: bench/cwl_bench.py --insitu BIN --cwltool BIN [--commonwl BIN |
       --commonwl-skip REASON] [--insitu-before BIN] [--runs 5] [--heavy-runs 3] [--n 1000]
       [--only tool,scatter,scatter-js]
bench/cwl.sh builds and installs everything, then calls this."""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

TOOL = """cwlVersion: v1.2
class: CommandLineTool
baseCommand: echo
inputs:
  msg:
    type: string
    inputBinding: {position: 1}
outputs:
  out:
    type: stdout
stdout: out.txt
"""

TOOL_JS = """cwlVersion: v1.2
class: CommandLineTool
requirements:
  InlineJavascriptRequirement: {}
baseCommand: echo
inputs:
  msg: string
arguments:
  - valueFrom: $(inputs.msg.toUpperCase() + "-" + inputs.msg.length)
outputs:
  out:
    type: stdout
stdout: out.txt
"""

SCATTER = """cwlVersion: v1.2
class: Workflow
requirements:
  ScatterFeatureRequirement: {{}}
inputs:
  msgs: string[]
outputs:
  outs:
    type: File[]
    outputSource: echo/out
steps:
  echo:
    run: {tool}
    scatter: msg
    in:
      msg: msgs
    out: [out]
"""


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def workloads(d, n):
    write(os.path.join(d, "echo.cwl"), TOOL)
    write(os.path.join(d, "echo-js.cwl"), TOOL_JS)
    write(os.path.join(d, "scatter.cwl"), SCATTER.format(tool="echo.cwl"))
    write(os.path.join(d, "scatter-js.cwl"), SCATTER.format(tool="echo-js.cwl"))
    write(os.path.join(d, "one.json"), json.dumps({"msg": "hello"}))
    write(os.path.join(d, "many.json"), json.dumps({"msgs": [f"m{i}" for i in range(n)]}))
    return {
        "tool": ("echo.cwl", "one.json", 1),
        "scatter": ("scatter.cwl", "many.json", n),
        "scatter-js": ("scatter-js.cwl", "many.json", n),
    }


def count_files(v):
    if isinstance(v, dict):
        if v.get("class") == "File":
            return 1
        return sum(count_files(x) for x in v.values())
    if isinstance(v, list):
        return sum(count_files(x) for x in v)
    return 0


def runners(a):
    """name -> (function(workload, outdir) -> argv, description)."""
    r = {}
    ins = lambda extra: (lambda w, cwl, job, out: [a.insitu, "--quiet", *extra, "--outdir", out, cwl, job])
    r["insitu"] = (ins([]), "insitu-cwl, default: the run's jobs in one shared bwrap sandbox (spawner inside)")
    r["insitu --sandbox-per-step"] = (ins(["--sandbox-per-step"]), "insitu-cwl, a bwrap sandbox of its own for every job")
    r["insitu --no-sandbox"] = (ins(["--no-sandbox"]), "insitu-cwl, plain processes")
    if a.insitu_before:
        before = lambda w, cwl, job, out: [a.insitu_before, "--quiet", "--outdir", out, cwl, job]
        r["insitu (before)"] = (before, f"insitu-cwl built before a change ({a.insitu_before}), default mode")

    def cwltool(w, cwl, job, out):
        par = [] if w == "tool" else ["--parallel"]
        return [a.cwltool, "--quiet", "--no-container", *par, "--outdir", out, cwl, job]

    r["cwltool"] = (cwltool, "cwltool --no-container (--parallel for scatters)")
    if a.commonwl:
        r["commonwl"] = (lambda w, cwl, job, out: [a.commonwl, cwl, job, out], "commonwl/cwl_engine (LocalBackend)")
    return r


def run_once(argv, cwd, want_files, timeout):
    t = time.perf_counter()
    p = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"exit {p.returncode}: {p.stderr.decode(errors='replace')[-800:]}")
    try:
        got = count_files(json.loads(p.stdout.decode() or "null"))
    except json.JSONDecodeError:
        got = -1
    if got != want_files:
        # commonwl prints no output object: count what landed in outdir.
        out = argv[-1] if argv[-1].startswith(cwd) else None
        got = sum(len(fs) for _, _, fs in os.walk(out)) if out else got
    if got != want_files:
        raise RuntimeError(f"expected {want_files} output files, got {got}")
    return dt


def fmt(s):
    return f"{s * 1000:.0f} ms" if s < 10 else f"{s:.1f} s"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--insitu", required=True)
    ap.add_argument("--cwltool", required=True)
    ap.add_argument("--insitu-before", help="an earlier insitu-cwl binary, measured in the same rounds")
    ap.add_argument("--commonwl")
    ap.add_argument("--commonwl-skip", default="")
    ap.add_argument("--runs", type=int, default=5, help="runs of the single tool")
    ap.add_argument("--heavy-runs", type=int, default=3, help="runs of each scatter")
    ap.add_argument("--n", type=int, default=1000, help="scatter width")
    ap.add_argument("--only", default="tool,scatter,scatter-js")
    ap.add_argument("--timeout", type=int, default=1800)
    a = ap.parse_args()
    a.insitu, a.cwltool = os.path.abspath(a.insitu), os.path.abspath(a.cwltool)
    if a.commonwl:
        a.commonwl = os.path.abspath(a.commonwl)
    if a.insitu_before:
        a.insitu_before = os.path.abspath(a.insitu_before)

    d = tempfile.mkdtemp(prefix="insitu-cwl-bench-")
    try:
        wl = workloads(d, a.n)
        rs = runners(a)
        results = {}
        for w in a.only.split(","):
            cwl, job, nfiles = wl[w]
            runs = a.runs if w == "tool" else a.heavy_runs
            times = {name: [] for name in rs}
            errs = {name: None for name in rs}
            # Round k of every runner back to back, so a change in the
            # machine's load hits all runners alike; round 0 is a warm-up
            # (page cache, Python bytecode) and is not counted.
            for k in range(runs + 1):
                for name, (argv_of, _) in rs.items():
                    if errs[name]:
                        continue
                    out = tempfile.mkdtemp(prefix="out-", dir=d)
                    argv = argv_of(w, os.path.join(d, cwl), os.path.join(d, job), out)
                    try:
                        dt = run_once(argv, d, nfiles, a.timeout)
                    except (RuntimeError, subprocess.TimeoutExpired) as e:
                        text = str(e).strip()
                        errs[name] = text.splitlines()[-1] if text else repr(e)
                        print(f"  {w:<11} {name:<20} failed: {errs[name]}", file=sys.stderr, flush=True)
                        continue
                    finally:
                        shutil.rmtree(out, ignore_errors=True)
                    if k > 0:
                        times[name].append(dt)
                    print(f"  {w:<11} {name:<20} run {k}{' (warm-up)' if k == 0 else ''}: {fmt(dt)}",
                          file=sys.stderr, flush=True)
            for name in rs:
                results[(w, name)] = (times[name], errs[name])

        names = list(rs)
        print()
        print(f"CWL runners, scatter width {a.n}; median of runs (min), ratio = runner median / insitu median")
        print()
        print("| workload | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        for w in a.only.split(","):
            base = results.get((w, "insitu"), ([], None))[0]
            bm = statistics.median(base) if base else None
            cells = []
            for name in names:
                times, err = results[(w, name)]
                if err or not times:
                    cells.append(f"failed: {err[:60]}" if err else "n/a")
                    continue
                m = statistics.median(times)
                ratio = f", {m / bm:.1f}x" if bm and name != "insitu" else ""
                cells.append(f"{fmt(m)} ({fmt(min(times))}){ratio}")
            print(f"| {w} (runs: {a.runs if w == 'tool' else a.heavy_runs}) | " + " | ".join(cells) + " |")
        print()
        for name, (_, desc) in rs.items():
            print(f"- {name}: {desc}")
        if not a.commonwl:
            print(f"- commonwl: not measured: {a.commonwl_skip or 'no driver given'}")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
