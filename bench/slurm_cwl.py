#!/usr/bin/env python3
"""CWL steps on Slurm, side by side in one run (driven by bench/slurm_cwl.sh).

Measures, each round in turn after a warm-up:
  - the local engine: an N-job scatter of a trivial tool (`echo`);
  - the same scatter on Slurm with jobs grouped in allocations (the default);
  - the same with one batch job per step (`--slurm-grouping none`), on a
    smaller scatter (--none-n) and extrapolated to N, as said in its line;
and, once: the cost of one job in a held allocation (a scatter run one job
at a time, --parallel 1, minus a one-job run, per job) against one
`srun --overlap true` step inside an allocation.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

SCATTER = """cwlVersion: v1.2
class: Workflow
requirements: {ScatterFeatureRequirement: {}}
inputs: {xs: 'int[]'}
outputs:
  out: {type: 'File[]', outputSource: s/o}
steps:
  s:
    run:
      class: CommandLineTool
      baseCommand: echo
      inputs: {x: {type: int, inputBinding: {position: 1}}}
      outputs: {o: stdout}
    in: {x: xs}
    scatter: x
    out: [o]
"""


def timed(cmd, env=None):
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr.decode()[-2000:]}")
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", required=True)
    ap.add_argument("--slurm-conf", required=True)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--none-n", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--srun-n", type=int, default=30)
    a = ap.parse_args()
    env = dict(os.environ, SLURM_CONF=a.slurm_conf)
    work = tempfile.mkdtemp(prefix="slurm-cwl-bench-")
    wf = os.path.join(work, "wf.cwl")
    with open(wf, "w") as f:
        f.write(SCATTER)

    def job(n):
        p = os.path.join(work, f"job{n}.json")
        with open(p, "w") as f:
            json.dump({"xs": list(range(n))}, f)
        return p

    def run(extra, n):
        out = tempfile.mkdtemp(dir=work)
        return timed([a.engine, "--quiet", "--outdir", out, *extra, wf, job(n)], env)

    slurm = ["--slurm-conf", a.slurm_conf]
    cases = {
        "local engine (shared sandbox)": lambda: run([], a.n),
        "Slurm, grouped in allocations": lambda: run(slurm, a.n),
        f"Slurm, one batch job per step ({a.none_n} steps, x{a.n / a.none_n:g})": lambda: run(
            slurm + ["--slurm-grouping", "none"], a.none_n
        )
        * a.n
        / a.none_n,
    }
    print(f"warm-up ...", file=sys.stderr)
    run([], 2)
    run(slurm, 2)
    times = {k: [] for k in cases}
    for r in range(a.runs):
        for k, f in cases.items():
            times[k].append(f())
            print(f"round {r + 1}: {k}: {times[k][-1]:.2f} s", file=sys.stderr)

    print(f"\n{a.n}-job scatter of `echo`, {a.runs} rounds, median (min - max):")
    for k, ts in times.items():
        print(f"  {k:<58} {statistics.median(ts):8.2f} s  ({min(ts):.2f} - {max(ts):.2f})")

    # Per-job cost in a held allocation, one job at a time.
    seq = ["--parallel", "1"] + slurm
    one = statistics.median(run(seq, 1) for _ in range(3))
    many = statistics.median(run(seq, a.n) for _ in range(3))
    per_job = (many - one) / (a.n - 1)

    # One srun step inside an allocation held by a sleeping batch job.
    jid = subprocess.run(
        ["sbatch", "--parsable", "-n1", "-c1", "--mem=100M", "--job-name=slurm-cwl-bench-srun",
         "--output=/dev/null", "--wrap", "sleep 600"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip().split(";")[0]
    try:
        while subprocess.run(["squeue", "-h", "-j", jid, "-o", "%T"], env=env,
                             capture_output=True, text=True).stdout.strip() != "RUNNING":
            time.sleep(0.2)
        srun = [timed(["srun", f"--jobid={jid}", "--overlap", "-n1", "true"], env)
                for _ in range(a.srun_n)]
    finally:
        subprocess.run(["scancel", jid], env=env)
    srun_med = statistics.median(srun)
    print(f"\nper job, one at a time (--parallel 1): in a held allocation "
          f"{per_job * 1000:.1f} ms  (({many:.2f} s - {one:.2f} s) / {a.n - 1})")
    print(f"one `srun --overlap true` step inside an allocation: {srun_med * 1000:.1f} ms "
          f"median of {a.srun_n} (min {min(srun) * 1000:.1f})")
    print(f"overhead of a job over an srun step: {(per_job - srun_med) * 1000:+.1f} ms")


if __name__ == "__main__":
    main()
