"""`gan report`: one static HTML page about a run or a sweep, readable without gancli.

A run: its resolved config, its loss and metric curves (matplotlib PNGs), its grids over time and its final
values. A sweep (a folder of job dirs): a leaderboard sorted by a metric, with each job's overrides, status
and final grid, then a section per job. Values keep the names they were logged under, which carry their
features (`eval/fid@inception`); the leaderboard ranks by one such name, so it never sets figures on
different features side by side (runs logged before the names carried them read as bare `eval/fid`).
Everything the page shows sits beside it: `report_files/` for the curves, relative links to the run dirs' own
grids.
"""

from __future__ import annotations

import html
import json
import logging
import os
from pathlib import Path

from gancli.core.errors import GanError

SUMMARY = "summary.json"
MAX_GRIDS = 12


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a crash
            continue
    return out


def _summary(run: Path) -> dict:
    f = run / SUMMARY
    return json.loads(f.read_text()) if f.is_file() else {"status": "no summary (running, or crashed)"}


def is_run(path: Path) -> bool:
    return (path / "config.yaml").is_file() or (path / SUMMARY).is_file()


def jobs_of(path: Path) -> list[Path]:
    return sorted((p for p in path.iterdir() if p.is_dir() and is_run(p)), key=lambda p: (len(p.name), p.name))


def curves(run: Path, files: Path, stem: str) -> list[Path]:
    """One PNG of the losses, one of everything else logged (metrics, D(x), penalties), over steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _read_jsonl(run / "metrics.jsonl")
    if not rows:
        return []
    keys = sorted({k for r in rows for k in r if k not in ("step", "img_per_s")})
    groups = {
        "losses": [k for k in keys if k.startswith("loss/")],
        "metrics": [k for k in keys if k.startswith("eval/") or "/" in k and not k.startswith("loss/")],
        "other scalars": [k for k in keys if "/" not in k],
    }
    out = []
    files.mkdir(parents=True, exist_ok=True)
    for title, group in groups.items():
        if not group:
            continue
        fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
        for k in group:
            pts = [(r["step"], r[k]) for r in rows if k in r and isinstance(r[k], (int, float))]
            if pts:
                ax.plot(*zip(*pts), label=k, marker="." if len(pts) < 30 else None)
        ax.set_xlabel("step")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        path = files / f"{stem}-{title.replace(' ', '_')}.png"
        fig.savefig(path)
        plt.close(fig)
        out.append(path)
    return out


def _img(src: Path, page: Path, alt: str, width: int | None = None) -> str:
    rel = os.path.relpath(src, page.parent)
    w = f' width="{width}"' if width else ""
    return f'<img src="{html.escape(rel)}" alt="{html.escape(alt)}"{w}>'


def _value(summary: dict, metric: str | None):
    if not metric:
        return None
    best = summary.get("best") or {}
    if best.get("key") == metric and best.get("value") is not None:
        return best["value"]
    return (summary.get("metrics") or {}).get(f"eval/{metric}")


def run_section(run: Path, page: Path, files: Path, stem: str, heading: str) -> str:
    s = _summary(run)
    parts = [
        f"<h2>{html.escape(heading)}</h2>",
        f"<p>status: <b>{html.escape(str(s.get('status', '?')))}</b>"
        + (f", step {s['step']} of {s['steps']}" if "step" in s else "")
        + (f", {s['seconds']:.0f} s" if "seconds" in s else "")
        + "</p>",
    ]
    if s.get("overrides"):
        parts.append(f"<p>overrides: <code>{html.escape(' '.join(s['overrides']))}</code></p>")
    values = {**{k: v for k, v in (s.get("final_losses") or {}).items()}, **(s.get("metrics") or {})}
    if s.get("best"):
        b = s["best"]
        values[f"best {b['key']}"] = b["value"]
    if values:
        parts.append(
            "<table class='values'><tr><th>value</th><th>final</th></tr>"
            + "".join(
                f"<tr><td>{html.escape(k)}</td><td>{v:.4g}</td></tr>"
                for k, v in values.items()
                if isinstance(v, (int, float))
            )
            + "</table>"
        )
    for png in curves(run, files, stem):
        parts.append(_img(png, page, f"{heading}: {png.stem}"))
    grids = sorted((run / "samples").glob("step_*.png"))
    if len(grids) > MAX_GRIDS:
        step = (len(grids) - 1) / (MAX_GRIDS - 1)
        grids = [grids[round(i * step)] for i in range(MAX_GRIDS)]
    if grids:
        parts.append(
            "<div class='grids'>"
            + "".join(
                f"<figure>{_img(g, page, g.stem, 220)}<figcaption>{_step_caption(g.stem)}</figcaption></figure>"
                for g in grids
            )
            + "</div>"
        )
    config = run / "config.yaml"
    if config.is_file():
        parts.append(
            f"<details><summary>resolved config</summary><pre>{html.escape(config.read_text())}</pre></details>"
        )
    return "\n".join(parts)


STYLE = """body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}figure{display:inline-block;margin:4px}
figcaption{font-size:small;text-align:center}pre{background:#f6f6f6;padding:1em;overflow:auto}"""


def _step_caption(stem: str) -> str:
    """'step_0000500' → 'step 500'."""
    return stem.replace("step_", "step ").lstrip("0")


def write_report(path: Path, out: Path | None = None, metric: str | None = None) -> Path:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise GanError(f"run={path} is not a folder: give a run dir or a sweep dir (what `gan train` printed).")
    page = Path(out).expanduser() if out else path / "report.html"
    files = page.parent / "report_files"
    if is_run(path):
        body = run_section(path, page, files, "run", f"run {path}")
    else:
        jobs = jobs_of(path)
        if not jobs:
            raise GanError(f"{path} holds no run (no config.yaml or summary.json in it or its sub-folders).")
        summaries = {j: _summary(j) for j in jobs}
        metric = leaderboard_metric(summaries, metric)
        body = leaderboard(jobs, summaries, metric, page) + "".join(
            run_section(j, page, files, f"job{j.name}", f"job {j.name}") for j in jobs
        )
    title = f"gancli report: {path.name}"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )
    return page


def _logged(summary: dict) -> list[str]:
    """The values a job's summary holds, under their logged names (fid@inception, or an old run's bare fid)."""
    names = [k.split("/", 1)[1] for k in (summary.get("metrics") or {}) if k.startswith("eval/")]
    best = (summary.get("best") or {}).get("key")
    return [*([best] if best else []), *names]


def leaderboard_metric(summaries: dict, metric: str | None) -> str | None:
    """The logged name to rank by: `metric` as given when some job logged it; a bare value (fid) when the jobs
    logged it on one extractor only; by default the first job's best or first value."""
    logged = list(dict.fromkeys(k for s in summaries.values() for k in _logged(s)))
    if metric is None:
        return logged[0] if logged else None
    if "@" in metric:
        return metric
    from gancli.metrics.base import value_of

    named = [k for k in logged if value_of(k) == metric]
    if len(named) > 1:
        listed = ", ".join(k if "@" in k else f"{k} (features not recorded)" for k in named)
        first = next(k for k in named if "@" in k)
        raise GanError(
            f"metric={metric}: the jobs measured it on different features ({listed}), and figures on different "
            f"features do not compare; rank by one of them, e.g. metric={first}."
        )
    return named[0] if named else metric  # no job has it: the leaderboard shows empty cells


def leaderboard(jobs: list[Path], summaries: dict, metric: str | None, page: Path) -> str:
    from gancli.metrics.base import HIGHER_IS_BETTER, value_of

    lower = not HIGHER_IS_BETTER.get(value_of(metric or ""), False)

    def key(job):
        v = _value(summaries[job], metric)
        if v is None:
            return (1, 0.0)
        return (0, v if lower else -v)

    ranked = sorted(jobs, key=key) if metric else list(jobs)
    order = (
        f"sorted by {metric} ({'lower' if lower else 'higher'} is better)"
        if metric
        else "in job order (no metric was evaluated)"
    )
    rows = []
    for rank, job in enumerate(ranked, 1):
        s = summaries[job]
        grid = job / "final.png"
        v = _value(s, metric)
        rows.append(
            f"<tr class='job'><td>{rank}</td><td>{html.escape(job.name)}</td>"
            f"<td><code>{html.escape(' '.join(s.get('overrides', [])))}</code></td>"
            f"<td>{html.escape(str(s.get('status', '?')))}</td>"
            + (f"<td>{'' if v is None else f'{v:.4g}'}</td>" if metric else "")
            + f"<td>{_img(grid, page, 'final grid of job ' + job.name, 160) if grid.is_file() else ''}</td></tr>"
        )
    head = (
        "<tr><th>#</th><th>job</th><th>overrides</th><th>status</th>"
        + (f"<th>{html.escape(metric)}</th>" if metric else "")
        + "<th>final grid</th></tr>"
    )
    return f"<h2>Leaderboard</h2><p>{len(jobs)} jobs, {order}.</p><table id='leaderboard'>{head}{''.join(rows)}</table>"


def report_from_config(cfg) -> None:
    """`gan report run=... [out=...] [metric=...]`: write the page and say where it is."""
    logging.getLogger("gancli").info("wrote %s", write_report(cfg.run, cfg.out, cfg.metric))
