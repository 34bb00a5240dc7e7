"""The demo's driver (run by ``scripts/demo``): backendai-lite, staging, ``airflow dags test``, a summary.

``python scripts/demo.py WORK_DIR [DAG_ID] [CONF_JSON]``: runs the pipeline DAG_ID (default trade-qa-finetune, with
its offline params from ``dags/pipelines/trade-qa-finetune.offline.json`` and CONF_JSON on top) on a fresh
backendai-lite in WORK_DIR, showing progress lines while it runs and a summary at the end.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from airflow_provider_fasttrack.lite.testing import LiteServer  # noqa: E402
from airflow_provider_fasttrack.usage import RunUsage  # noqa: E402
from airflow_provider_fasttrack.usage_text import totals_line, usage_table  # noqa: E402
from deploy.offline import OFFLINE_SLOTS, connection, mock_accelerator_line, offline_lite, stage  # noqa: E402
from training.report import sections  # noqa: E402

TRADE_QA = "trade-qa-finetune"
#: the trade-QA pipeline's quality gate: merge-model and the serving tasks run only when it passes
PROMOTION_GATE = "promotion-gate"
OFFLINE_PARAMS = ROOT / "dags" / "pipelines" / f"{TRADE_QA}.offline.json"
#: Airflow's log line: time, level, message, then the logger in brackets and key=value pairs
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT(\d\d:\d\d:\d\d)\S* \[\s*\w+\s*\] (.*?)(?: \[[\w.]+\].*)?$")
#: messages worth showing while the run goes on: tasks starting and ending, training steps, evaluation batches
PROGRESS = re.compile(
    r"^\[DAG TEST\] starting|^Backend\.AI session \S+ \(|^Backend\.AI session \S+ TERMINATED|^Skipping task|"
    r"(?:\] |: )(step \d+/\d+|generated \d+/\d+|scoring with|judging \d+|prepared \d+ rows|converting |mock accelerator"
    r"|error:|\S*Error)"
)
#: the session's own log prefix (time, level, logger) inside a relayed line, dropped from progress lines
SESSION_LOG_PREFIX = re.compile(r"\] \d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \w+ [\w.]+: ")


def dags_test(dag_id: str, conf: dict[str, Any], log: Path) -> bool:
    """``airflow dags test`` with progress lines echoed as they come; the whole output goes to ``log``."""
    command = [sys.executable, "-m", "airflow", "dags", "test", dag_id]
    if conf:
        command += ["--conf", json.dumps(conf)]
    with (
        log.open("w") as out,
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        ) as process,
    ):
        assert process.stdout is not None
        for line in process.stdout:
            out.write(line)
            parsed = LOG_LINE.match(line.strip())
            if parsed and PROGRESS.search(parsed.group(2)):
                message = parsed.group(2)
                if message.startswith("Skipping task") and "reason=" in line:
                    message = line.split("reason=", 1)[1].strip().strip("'")
                print(f"  {parsed.group(1)} {_short(message)}", flush=True)
    return process.returncode == 0 and "state=success" in log.read_text()


def _short(text: str, width: int = 140) -> str:
    text = text.replace("[DAG TEST] starting task_id=", "task started: ").split(" map_index=")[0]
    text = SESSION_LOG_PREFIX.sub("] ", text)
    return text if len(text) <= width else text[: width - 3] + "..."


def summary(
    lite: LiteServer,
    dag_id: str,
    started: float,
    usage: RunUsage | None,
    promotion: dict[str, Any] | None = None,
) -> list[str]:
    """The lines a person reads at the end of the trade-QA demo: the evaluation's results, whether the model was
    promoted (``promotion``: the quality gate's decision) and served, then what the run's sessions used
    (``usage``: the run's, ``None`` when the run is not found)."""
    lines = [f"Summary of {dag_id} (total {time.monotonic() - started:.0f} s)"]
    return [*lines, *_results(lite, dag_id, promotion), *usage_lines(usage)]


def usage_lines(usage: RunUsage | None) -> list[str]:
    """The run's usage totals and its table of sessions."""
    if usage is None or not usage.sessions:
        return ["  Usage: no session task of the run reported its usage"]
    return [f"  Usage: {totals_line(usage)}", *(f"    {line}" for line in usage_table(usage))]


def _results(lite: LiteServer, dag_id: str, promotion: dict[str, Any] | None) -> list[str]:
    vfolder = lite.vfolder_path(f"fasttrack-{dag_id}")
    evaluations = sorted(vfolder.glob("*/evaluate/report.json"), key=lambda p: p.stat().st_mtime)
    if not evaluations:
        return ["  no evaluation report was written"]
    lines = []
    folder = evaluations[-1].parent
    report = json.loads(evaluations[-1].read_text())
    for prefix, section in sections(report):
        lines.append(_section_line(report, prefix, section))
    truth = {m: report["summary"][m]["truthfulness"] for m in ("base", "finetuned")}
    if truth["base"] is not None and truth["finetuned"] is not None:
        lines.append(
            f"  Truthfulness ({report['settings']['judge']}): low (1-2) {truth['base']['low']} -> "
            f"{truth['finetuned']['low']}, high (4-5) {truth['base']['high']} -> {truth['finetuned']['high']}"
        )
    else:
        lines.append("  Truthfulness: no judge in this run (params judge=none)")
    finetune = folder.parent / "finetune" / "result.json"
    if finetune.is_file():
        result = json.loads(finetune.read_text())
        lines.append(
            f"  Training: {result['global_step']} steps, {result['train_tokens_per_second']} tokens/s, "
            f"train loss {result['train_loss']:.3f}, eval loss {result['eval_loss']:.3f}"
        )
    smoke = folder.parent / "smoke-query" / "result.json"
    if promotion is not None:
        verdict = "Promoted" if promotion.get("passed") else "Not promoted, so no model was merged or served"
        lines.append(f"  {verdict}: {promotion.get('reason')}")
    if smoke.is_file():
        asked = json.loads(smoke.read_text())
        lines.append(f"  Served fine-tuned model ({asked['seconds']} s), asked: {_short(asked['question'])}")
        lines.append(f"    answer: {_short(asked['answer'])}")
        lines.append(f"    reference: {_short(asked['reference'])}")
    elif promotion is None or promotion.get("passed"):
        lines.append("  Served fine-tuned model: no smoke-query result in this run")
    lines.append(f"  Report: {folder / 'report.md'}")
    plots = [str(p) for p in sorted(folder.glob("*.png"))]
    lines.append(f"  Plots: {', '.join(plots) if plots else 'none'}")
    return lines


def _section_line(report: dict[str, Any], prefix: str, section: dict[str, Any]) -> str:
    """One evaluated set: SemScore base -> fine-tuned with the paired interval, and the novel-token F1 change."""
    title = "definitional questions" if prefix else "held-out questions"
    base, tuned = (section["summary"][m]["semscore"]["mean"] for m in ("base", "finetuned"))
    diff, f1 = section["semscore_difference"], section["novel_f1_difference"]
    return (
        f"  SemScore ({report['settings']['embedding_model']}, {section['n']} {title}): base {base:.3f} -> "
        f"fine-tuned {tuned:.3f}; paired difference {diff['mean']:+.3f} (95% CI {diff['ci95_low']:+.3f} .. "
        f"{diff['ci95_high']:+.3f}); novel-token F1 {f1['mean']:+.3f} ({f1['ci95_low']:+.3f} .. {f1['ci95_high']:+.3f})"
    )


def latest_gate_decision(dag_id: str, gate: str = PROMOTION_GATE) -> dict[str, Any] | None:
    """What the quality gate decided in the pipeline's latest run (its XCom); ``None`` when it decided nothing."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow_provider_fasttrack.usage_db import run_xcoms

    with create_session() as session:
        run = session.scalar(
            select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.run_after.desc(), DagRun.id.desc())
        )
        if run is None:
            return None
        decisions = [r.value for r in run_xcoms(session, run, "return_value") if r.task_id == gate]
    return decisions[0] if decisions and isinstance(decisions[0], dict) else None


def latest_usage(dag_id: str) -> RunUsage | None:
    """The usage of the pipeline's latest run in the Airflow database (the one ``airflow dags test`` made)."""
    from airflow_provider_fasttrack.usage_db import recent_runs

    runs = recent_runs(dag_id, 1)
    return runs[0].usage if runs else None


def main() -> int:
    work = Path(sys.argv[1])
    dag_id = sys.argv[2] if len(sys.argv) > 2 else TRADE_QA
    conf: dict[str, Any] = json.loads(OFFLINE_PARAMS.read_text()) if dag_id == TRADE_QA else {}
    if len(sys.argv) > 3:
        conf.update(json.loads(sys.argv[3]))
    started = time.monotonic()
    with offline_lite(work / "backendai-lite") as lite:
        os.environ["AIRFLOW_CONN_BACKENDAI_DEFAULT"] = connection(lite)
        print(f"backendai-lite at {lite.url}, data in {lite.data_dir}", flush=True)
        print(f"  scaling group default: {OFFLINE_SLOTS}; {mock_accelerator_line(lite)}", flush=True)
        if dag_id == TRADE_QA:
            try:
                print(stage(lite), flush=True)
            except RuntimeError as exc:
                print(exc, flush=True)
                return 1
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
        print(f"airflow dags test {dag_id} --conf '{json.dumps(conf)}'", flush=True)
        log = work / "dags-test.log"
        ok = dags_test(dag_id, conf, log)
        print(f"airflow dags test {dag_id}: {'success' if ok else 'FAILED'} (log: {log})")
        if dag_id == TRADE_QA:
            promotion = latest_gate_decision(dag_id)
            print("\n".join(summary(lite, dag_id, started, latest_usage(dag_id), promotion)))
        else:
            for result in sorted(lite.data_dir.rglob("result.json")):
                print(f"  {result.relative_to(lite.data_dir)}: {result.read_text().strip()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
