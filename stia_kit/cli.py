"""The ``stia`` command line. Every sub-command calls the same library functions the notebooks call.

    stia info                               versions, device, registered models
    stia data synth --out ROOT [...]        generate SynthActions (UCF101 layout; --layouts adds HMDB51/ARID)
    stia data check ROOT                    decode every video under ROOT; non-zero exit if any is unreadable
    stia data flow SRC DST [--method ...]   optical flow + RGB frames in the TSN layout (parallel, resumable)
    stia train [--dataset ... --model ...]  train one model (options = notebook 00's parameters)
    stia eval --run DIR [...]               evaluate a trained run on its test split (multi-view options)
    stia quickstart [--out DIR]             execute notebooks/00_quickstart.ipynb with papermill
    stia enhance SRC DST --method ...       enhance every video under SRC into DST (resumable)
    stia arid-eval [...]                    recogniser on dark (ARID-layout) data before/after enhancement
                                            (options = notebook 06's parameters)
    stia explain VIDEO --run DIR [...]      attributions + attention maps of one clip: one self-contained HTML
    stia sweep [NB] --grid G --out D     one papermill run per grid point (--workers, --backend process|submitit)
    stia course assign [NAME...]        student notebooks + autograder zips (otter assign) under course/
    stia course build [--out site]      execute every notebook (resumable) and render the HTML course book
    stia grade SUB... --assignment NAME grade submissions with otter, each isolated and time-limited
    stia explain-eval DIR [...]             localisation table (method x metric, chance, sanity check) of a
                                            run trained on SynthActions: JSON + markdown
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]


def cmd_info(args: argparse.Namespace) -> int:
    import platform

    import torch

    from . import __version__
    from .data import DATASETS
    from .enhance import ENHANCERS
    from .models import MODELS
    from .train import select_device

    print(f"stia_kit {__version__} | python {platform.python_version()} | torch {torch.__version__}")
    for mod in ("decord", "av", "cv2", "numpy", "captum", "plotly", "papermill"):
        try:
            print(f"  {mod:10s} {__import__(mod).__version__}")
        except Exception as e:  # an optional backend failing to import is information, not a crash
            print(f"  {mod:10s} unavailable ({type(e).__name__}: {e})")
    print(f"device: {select_device('auto')} (cuda available: {torch.cuda.is_available()}), "
          f"threads: {torch.get_num_threads()}")
    for registry in (MODELS, DATASETS, ENHANCERS):
        print(f"{registry.kind}s: {', '.join(registry.names())}")
    return 0


def cmd_data_synth(args: argparse.Namespace) -> int:
    from .synth import SynthConfig, generate_synth_actions

    cfg = SynthConfig(clips_per_class=args.clips_per_class, clips_per_group=args.clips_per_group, num_frames=args.frames, size=args.size, seed=args.seed,
                      lowlight=args.lowlight, layouts=tuple(s.strip() for s in args.layouts.split(",") if s.strip()))
    summary = generate_synth_actions(args.out, cfg, progress=not args.quiet, workers=args.workers)
    print(json.dumps(dataclasses.asdict(summary), indent=2, default=str))
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from .data import check_videos, format_report

    report = check_videos(args.root, backend=args.backend)
    print(format_report(report, args.root))
    return 1 if report.bad else 0


def cmd_data_flow(args: argparse.Namespace) -> int:
    from .data.flow import FlowConfig, extract_tree, flow_backend_check

    try:
        cfg = FlowConfig(method=args.method, bound=args.bound, jpeg_quality=args.jpeg_quality,
                         short_side=args.short_side, rgb=not args.no_rgb, max_frames=args.max_frames,
                         dis_preset=args.dis_preset)
        flow_backend_check(cfg.method)
    except (ValueError, RuntimeError) as exc:  # a bad option or a missing OpenCV module: one line, exit 2
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        summary = extract_tree(args.src, args.dst, cfg, workers=args.workers, progress=not args.quiet,
                               limit=args.limit)
    except KeyboardInterrupt:  # finished folders carry their completion marker; the next run skips them
        print(f"\ninterrupted: finished videos are kept under {args.dst}; run the same command again to resume "
              "(half-written folders are redone)", file=sys.stderr)
        return 130
    print(summary.format())
    if summary.total == 0:
        print(f"no video files under {args.src}", file=sys.stderr)
        return 1
    return 1 if summary.failed else 0


def _quickstart_params(args: argparse.Namespace, **overrides: Any) -> Any:
    from .experiments.quickstart import QuickstartParams
    from .params import from_args

    p = from_args(QuickstartParams, args)
    return dataclasses.replace(p, **overrides) if overrides else p


def cmd_train(args: argparse.Namespace) -> int:
    from .experiments import quickstart as qs

    p = _quickstart_params(args)
    splits = qs.prepare_data(p)
    run = qs.train_model(p.model, p, splits)
    path = qs.write_metrics(run.run_dir / "metrics.json", p, splits.classes, [run])
    print(f"{p.model}: test top-1 {run.test.top1:.4f} top-5 {run.test.top5:.4f} "
          f"({run.test.num_samples} clips, {run.seconds:.0f} s, {run.weights})")
    print(f"run folder: {run.run_dir}\nmetrics: {path}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .experiments import quickstart as qs
    from .experiments.common import open_split
    from .experiments.runs import load_run
    from .fileio import write_json_atomic
    from .params import from_mapping
    from .train import evaluate

    model, info = load_run(args.run, checkpoint=args.checkpoint)
    overrides = {k: v for k, v in (("test_clips", args.test_clips), ("test_crops", args.test_crops),
                                   ("data_root", args.data_root), ("missing", args.missing)) if v is not None}
    known = {f.name for f in dataclasses.fields(qs.QuickstartParams)}
    saved = {k: v for k, v in (info.get("params") or {}).items() if k in known}
    p = from_mapping(qs.QuickstartParams, {**saved, **overrides})
    test_set = open_split(p, train=False)
    result = evaluate(model, test_set, batch_size=p.batch_size, num_classes=info["num_classes"],
                      class_names=info["classes"], num_workers=p.num_workers, progress=True)
    views = p.test_clips * p.test_crops
    out = {"run": str(args.run), "checkpoint": args.checkpoint, "views": views, "top1": result.top1,
           "top5": result.top5, "loss": result.loss, "per_class": result.per_class,
           "confusion": result.confusion.tolist(), "num_samples": result.num_samples,
           "quarantined": result.quarantined}
    path = write_json_atomic(Path(args.run) / f"eval_{Path(args.checkpoint).stem}_{views}views.json", out)
    print(f"top-1 {result.top1:.4f} top-5 {result.top5:.4f} on {result.num_samples} clips x {views} views -> {path}")
    return 0


def _literal(value: str) -> Any:
    """papermill-style typing of ``-p name value``: int, float, bool, None, else the string."""
    for conv in (int, float):
        try:
            return conv(value)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(value.lower(), value)


def cmd_quickstart(args: argparse.Namespace) -> int:
    import papermill as pm

    from .experiments.quickstart import QuickstartParams
    from .params import from_mapping
    from .sweep import resolve_kernel

    out_dir = Path(args.out).resolve()
    params: dict[str, Any] = {"out_dir": str(out_dir), "data_root": str(Path(args.data).resolve())}
    params.update({name: _literal(value) for name, value in args.param})
    from_mapping(QuickstartParams, params)  # fail fast, before starting a kernel
    out_dir.mkdir(parents=True, exist_ok=True)
    notebook = REPO_ROOT / "notebooks" / "00_quickstart.ipynb"
    output = out_dir / "00_quickstart.ipynb"
    pm.execute_notebook(str(notebook), str(output), parameters=params, kernel_name=resolve_kernel(args.kernel),
                        cwd=str(REPO_ROOT), progress_bar=not args.quiet)
    print(f"executed notebook: {output}\nmetrics JSON:      {out_dir / 'metrics.json'}")
    metrics = json.loads((out_dir / "metrics.json").read_text())
    for name, m in metrics["models"].items():
        print(f"  {name:8s} test top-1 {m['top1']:.3f}  ({m['train_seconds']:.0f} s)")
    print(f"  chance   {metrics['chance_top1']:.3f}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    import signal

    from . import sweep as S

    try:
        spec = S.load_grid(args.grid)
        name = args.notebook or spec.notebook
        if not name:
            raise S.SweepError(f"{args.grid}: no notebook (give NOTEBOOK or a 'notebook:' key in the grid file)")
        notebook = S.find_notebook(name, args.grid)
        extra = {n: _literal(v) for n, v in args.param}
        changes: dict[str, Any] = {"fixed": {**spec.fixed, **extra}} if extra else {}
        if args.timeout is not None:
            changes["timeout_s"] = args.timeout if args.timeout > 0 else None
        if args.retries is not None:
            changes["retries"] = args.retries
        spec = dataclasses.replace(spec, **changes) if changes else spec
        options = {k: _literal(v) for k, v in args.executor_option}
        if args.dry_run:
            tasks = S.plan(notebook, spec, args.out, kernel=args.kernel, cwd=args.cwd)
            for t in tasks:
                state = "done" if S.is_done(Path(t.run_dir)) else "to run"
                shown = {k: v for k, v in t.params.items() if k != "out_dir"}
                print(f"{t.run_id:40s} {state:7s} {json.dumps(shown, default=str)}")
            print(f"{len(tasks)} points of {notebook.name}, all valid (nothing run: --dry-run)")
            return 0
    except (S.SweepError, OSError) as exc:  # a bad grid / point / notebook: one line, nothing has run
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def report(s: dict[str, Any]) -> None:
        if not args.quiet:
            error = f"  {s['error'].splitlines()[0][:200]}" if s["error"] else ""
            print(f"[{s['status']:7s}] {s['run_id']} ({s['seconds']:.0f} s){error}", flush=True)

    def terminate(signum: int, frame: Any) -> None:  # SIGTERM (kill, a scheduler): stop like Ctrl-C
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    # a shell starts background jobs with SIGINT ignored (Python then never raises KeyboardInterrupt): restore it
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = S.sweep(notebook, spec, args.out, workers=args.workers, backend=args.backend, kernel=args.kernel,
                         cwd=args.cwd, render_html=args.html, cluster=args.cluster, executor_options=options,
                         on_status=report)
    except S.SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
    done = sum(S.is_done(Path(t.run_dir)) for t in result.tasks)
    print(f"{notebook.name}: {len(result.tasks)} points, {len(result.skipped)} already done (skipped), "
          f"{len(result.ran)} run now, {len(result.failed)} failed -> {result.csv}, {result.index}")
    cut = [k for k, st in result.statuses.items() if st["status"] == "interrupted"]
    if result.interrupted:
        print(f"interrupted: {done} of {len(result.tasks)} points are done ({len(cut)} cut off while running); run the same command again to resume "
              "(finished points are skipped, interrupted ones start again)", file=sys.stderr)
        return 130
    return 1 if result.failed else 0


def cmd_course_assign(args: argparse.Namespace) -> int:
    from .course.assign import assign

    try:
        done = assign(args.out, args.names or None, run_tests=args.run_tests)
    except (KeyError, FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for a in done:
        print(f"{a.name}: student {a.student}  autograder {a.autograder_zip}")
    print(f"{len(done)} exercises assigned under {args.out}: learners open student/<name>.ipynb and run "
          "grader.check(...) offline; grade with: stia grade SUBMISSION... --assignment NAME")
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    from .course.grade import grade

    try:
        report = grade(args.submissions, args.assignment, course_dir=args.course_dir, out=args.out,
                       timeout_s=args.timeout, workers=args.workers)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for r in report.rows:
        reason = f"  {' '.join(r.reason.split())[:160]}" if r.reason else ""
        print(f"{r.stem:24s} {r.score:g} / {r.max_score:g}  {r.status:7s} {r.seconds:5.1f} s{reason}")
    print(f"scores: {report.csv_path} (per submission: <stem>.json, feedback <stem>.md)")
    return 0


def _book_params(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``NOTEBOOK:NAME=VALUE`` items -> {notebook file: {name: value}} (``00`` stands for 00_quickstart.ipynb)."""
    from .course.catalog import NOTEBOOKS

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        head, sep, value = item.partition("=")
        nb, colon, name = head.partition(":")
        matches = [n.file for n in NOTEBOOKS if n.file == nb or n.file.startswith(nb + "_")]
        if not (sep and colon and name and len(matches) == 1):
            raise SystemExit(f"-p {item!r}: expected NOTEBOOK:NAME=VALUE with NOTEBOOK one of "
                             f"{', '.join(n.file for n in NOTEBOOKS)} (or its number, e.g. 01:epochs=3)")
        out.setdefault(matches[0], {})[name] = _literal(value)
    return out


def cmd_course_build(args: argparse.Namespace) -> int:
    from .course.book import build_book

    book = build_book(args.out, params=_book_params(args.param), course_dir=None if args.no_exercises else args.course_dir,
                      workers=args.workers, kernel=args.kernel, timeout_s=args.timeout)
    for page in book.pages:
        took = f"{page.seconds:.0f} s" if page.seconds is not None else "-"
        print(f"{page.file:40s} {page.status:8s} {took:>7s}  {page.error.splitlines()[0][:120] if page.error else ''}")
    total = sum(p.seconds or 0 for p in book.pages)
    print(f"book: {book.index} (notebook run time {total / 60:.1f} min; a rerun skips notebooks already executed)")
    if book.failed:
        print(f"not built from a successful run: {', '.join(book.failed)}", file=sys.stderr)
        return 1
    return 0


def cmd_enhance(args: argparse.Namespace) -> int:
    from .enhance import enhance_videos

    kwargs: dict[str, Any] = {}
    if args.checkpoint:
        kwargs["checkpoint"] = args.checkpoint
        kwargs["official_checkpoint"] = args.official
    if args.method in ("zero_dce", "zero_dce_pp"):
        if args.temporal_smoothing:
            kwargs["temporal_smoothing"] = args.temporal_smoothing
        if args.method == "zero_dce_pp" and args.scale_factor is not None:
            kwargs["scale_factor"] = args.scale_factor
        if not args.checkpoint:
            print(f"warning: --method {args.method} without --checkpoint uses an untrained (random) curve model",
                  file=sys.stderr)
    elif args.checkpoint or args.temporal_smoothing or args.scale_factor is not None:
        print("--checkpoint/--temporal-smoothing/--scale-factor apply to zero_dce and zero_dce_pp only", file=sys.stderr)
        return 2
    if args.method == "gamma" and args.gamma is not None:
        kwargs["gamma"] = args.gamma
    if args.method == "clahe" and args.clip_limit is not None:
        kwargs["clip_limit"] = args.clip_limit
    report = enhance_videos(args.src, args.dst, args.method, overwrite=args.overwrite, progress=not args.quiet,
                            **kwargs)
    print(report.summary())
    return 1 if report.failed else 0


def cmd_arid_eval(args: argparse.Namespace) -> int:
    from .experiments import lowlight as ll
    from .params import from_args

    p = from_args(ll.LowLightParams, args)
    result = ll.run_lowlight(p, progress=not args.quiet)
    print(f"recogniser on its clean test split: top-1 {100 * result.clean_test.top1:.1f} %")
    print("\nTrained on clean, tested on dark (per-class accuracy, %):")
    print(ll.table_markdown(result.table(), paper=True))
    if result.enhanced_train:
        print("\nTrained and tested on enhanced dark data (%):")
        print(ll.table_markdown(result.enhanced_train_table()))
    print("\nEnhancement quality on the dark test clips:")
    print(ll.quality_markdown(result.quality))
    print("\nwritten: " + ", ".join(str(f) for f in result.files))
    return 0


def _methods(text: str) -> tuple[str, ...]:
    from .explain.attribution import METHODS

    names = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in names if m not in METHODS]
    if bad or not names:
        raise SystemExit(f"--method: unknown {bad or 'empty list'}; choose from {', '.join(METHODS)}")
    return names


def _explain_config(args: argparse.Namespace, method: str) -> Any:
    from .explain.attribution import ExplainConfig

    return ExplainConfig(method=method, n_steps=args.ig_steps, memory_mb=args.memory_mb)


def cmd_explain(args: argparse.Namespace) -> int:
    from .explain.pipeline import explain_video

    methods = _methods(args.method)
    path, exp = explain_video(args.run, args.video, args.out, methods=methods,
                              config=_explain_config(args, methods[0]), target=args.target,
                              checkpoint=args.checkpoint, data_root=args.data_root or "", verbose=not args.quiet)
    top = exp.probs.argsort()[::-1][:3]
    print("top-3: " + ", ".join(f"{exp.classes[i]} {exp.probs[i]:.3f}" for i in top)
          + (f" (true: {exp.classes[exp.label]})" if exp.label is not None else ""))
    for method, row in exp.localisation.items():
        print(f"{method}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()))
    print(f"report: {path}")
    return 0


def cmd_explain_eval(args: argparse.Namespace) -> int:
    from .explain.evaluate import ExplainEvalConfig, evaluate_explanations, write_tables

    methods = _methods(args.method)
    cfg = ExplainEvalConfig(methods=methods, max_clips=args.clips, tolerance=args.tolerance,
                            sanity_clips=args.sanity_clips, sanity_layers=args.sanity_layers,
                            checkpoint=args.checkpoint, data_root=args.data_root or "", seed=args.seed,
                            attention=not args.no_attention, explain=_explain_config(args, methods[0]))
    result = evaluate_explanations(args.run, cfg, progress=None if args.quiet else (lambda t: print(t, file=sys.stderr)))
    js, md = write_tables(result, args.out or args.run)
    print(result.markdown())
    print(f"written: {js}, {md}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .experiments.quickstart import QuickstartParams
    from .params import add_arguments

    parser = argparse.ArgumentParser(prog="stia", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("info", help="versions, device, registered models").set_defaults(func=cmd_info)

    data = sub.add_parser("data", help="dataset tools").add_subparsers(dest="data_command", required=True)
    synth = data.add_parser("synth", help="generate SynthActions")
    synth.add_argument("--out", required=True, help="output root")
    synth.add_argument("--clips-per-class", type=int, default=24)
    synth.add_argument("--clips-per-group", type=int, default=4, help="clips per actor group gXX")
    synth.add_argument("--frames", type=int, default=32)
    synth.add_argument("--size", type=int, default=64)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--lowlight", action="store_true", help="ARID-style dark variant (clean copies under clean/)")
    synth.add_argument("--layouts", default="ucf101", help="comma list of ucf101,hmdb51,arid")
    synth.add_argument("--workers", type=int, default=1)
    synth.add_argument("--quiet", action="store_true")
    synth.set_defaults(func=cmd_data_synth)
    check = data.add_parser("check", help="decode every video under ROOT and report unreadable files")
    check.add_argument("root")
    check.add_argument("--backend", choices=["auto", "decord", "pyav"], default="auto")
    check.set_defaults(func=cmd_data_check)
    from .data.flow import DIS_PRESETS, FLOW_METHODS

    flow = data.add_parser("flow", help="optical flow (+ RGB frames) of every video under SRC, TSN layout, resumable")
    flow.add_argument("src", help="folder of videos (searched recursively)")
    flow.add_argument("dst", help="output root: DST/<relative path without suffix>/img_*.jpg, flow_[xy]_*.jpg")
    flow.add_argument("--method", choices=FLOW_METHODS, default="tvl1", help="tvl1 (the papers'), farneback, dis")
    flow.add_argument("--bound", type=float, default=20.0, help="clip flow to +-bound pixels before mapping to [0, 255]")
    flow.add_argument("--workers", type=int, default=2, help="processes (one OpenCV thread each)")
    flow.add_argument("--short-side", type=int, help="resize frames to this short side first (default: native)")
    flow.add_argument("--no-rgb", action="store_true", help="write flow only (no img_*.jpg)")
    flow.add_argument("--jpeg-quality", type=int, default=95)
    flow.add_argument("--max-frames", type=int, help="decode at most this many frames per video")
    flow.add_argument("--dis-preset", choices=DIS_PRESETS, default="medium", help="--method dis only")
    flow.add_argument("--limit", type=int, help="only the first N videos (sorted paths)")
    flow.add_argument("--quiet", action="store_true", help="no progress bar")
    flow.set_defaults(func=cmd_data_flow)

    from .models import list_models

    model_choices = {"model": list_models(), "baseline": ["", *list_models()]}
    train = sub.add_parser("train", help="train one model (the options are notebook 00's parameters)")
    add_arguments(train, QuickstartParams, choices=model_choices)
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("eval", help="evaluate a run folder written by stia train / the quickstart")
    ev.add_argument("--run", required=True, help="run folder (holds run.json and checkpoints)")
    ev.add_argument("--checkpoint", default="last.pt", help="checkpoint file in the run folder")
    ev.add_argument("--test-clips", type=int)
    ev.add_argument("--test-crops", type=int, choices=[1, 3, 10])
    ev.add_argument("--data-root")
    ev.add_argument("--missing", choices=["raise", "skip"])
    ev.set_defaults(func=cmd_eval)

    quick = sub.add_parser("quickstart", help="execute notebooks/00_quickstart.ipynb with papermill")
    quick.add_argument("--out", default="runs/quickstart", help="folder for the executed notebook and metrics")
    quick.add_argument("--data", default="data/synth", help="SynthActions root (generated when missing)")
    quick.add_argument("--kernel", default="stia-kit",
                       help="Jupyter kernel name (bootstrap.sh registers stia-kit; python3 when it is missing)")
    quick.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                       help="notebook parameter (repeatable), e.g. -p epochs 3")
    quick.add_argument("--quiet", action="store_true")
    quick.set_defaults(func=cmd_quickstart)

    sw = sub.add_parser("sweep", help="one papermill run per point of a parameter grid (resumable; CSV + HTML index)")
    sw.add_argument("notebook", nargs="?", help="notebook (default: the grid file's 'notebook'; looked up in notebooks/)")
    sw.add_argument("--grid", required=True, help="grid YAML: notebook, fixed, grid, points, metrics, timeout_s, retries")
    sw.add_argument("--out", required=True, help="sweep folder: runs/<run_id>/, results.csv, index.html")
    sw.add_argument("--workers", type=int, default=1, help="points run at the same time (process) / array parallelism (SLURM)")
    sw.add_argument("--backend", choices=["process", "submitit"], default="process",
                    help="process: subprocesses here; submitit: SLURM jobs (pip install 'stia-kit[cluster]')")
    sw.add_argument("--cluster", choices=["slurm", "local", "debug"],
                    help="submitit executor (default: slurm when sbatch is on PATH, else local)")
    sw.add_argument("--executor-option", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                    help="submitit parameter (repeatable), e.g. slurm_partition gpu, gpus_per_node 1, timeout_min 240")
    sw.add_argument("--kernel", default="stia-kit", help="Jupyter kernel of every run (python3 when it is missing)")
    sw.add_argument("--cwd", help="working directory of the runs (relative paths in the grid; default: here)")
    sw.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="extra fixed parameter (repeatable), e.g. -p epochs 2")
    sw.add_argument("--timeout", type=float, help="seconds per run, overriding the grid's timeout_s (0 = none)")
    sw.add_argument("--retries", type=int, help="kernel-start retries, overriding the grid's retries")
    sw.add_argument("--html", action="store_true", help="also render each executed notebook as HTML")
    sw.add_argument("--dry-run", action="store_true", help="validate every point and list the run ids; run nothing")
    sw.add_argument("--quiet", action="store_true", help="no line per finished point")
    sw.set_defaults(func=cmd_sweep)

    from .course.catalog import EXERCISES

    course = sub.add_parser("course", help="the course: exercises (otter-grader) and the executed HTML book")
    csub = course.add_subparsers(dest="course_command", required=True)
    ca = csub.add_parser("assign", help="student notebooks + autograder zips of the exercises (otter assign)")
    ca.add_argument("names", nargs="*", help=f"exercises (default: all): {', '.join(e.name for e in EXERCISES)}")
    ca.add_argument("--out", default="course", help="course folder: <out>/<name>/student, <out>/<name>/autograder")
    ca.add_argument("--run-tests", action="store_true", help="also run each master's tests while assigning (slower)")
    ca.set_defaults(func=cmd_course_assign)
    cb = csub.add_parser("build", help="execute every notebook at its defaults (resumable) and render the HTML book")
    cb.add_argument("--out", default="site", help="book folder: index.html, one page per notebook, runs/, exercises/")
    cb.add_argument("--course-dir", default="course", help="stia course assign output to link the exercises from")
    cb.add_argument("--no-exercises", action="store_true", help="do not copy / link exercises")
    cb.add_argument("--workers", type=int, default=1, help="notebooks executed at the same time")
    cb.add_argument("--kernel", default="stia-kit", help="Jupyter kernel (python3 when it is missing)")
    cb.add_argument("--timeout", type=float, help="seconds per notebook (default: none)")
    cb.add_argument("-p", "--param", action="append", default=[], metavar="NB:NAME=VALUE",
                    help="a notebook parameter (repeatable), e.g. -p 01:epochs=5 (default: every notebook's defaults)")
    cb.set_defaults(func=cmd_course_build)

    gr = sub.add_parser("grade", help="grade exercise submissions with otter (no Docker): JSON, CSV, markdown feedback")
    gr.add_argument("submissions", nargs="+", help="submitted notebooks")
    gr.add_argument("--assignment", required=True, choices=[e.name for e in EXERCISES], help="exercise name")
    gr.add_argument("--course-dir", default="course", help="stia course assign output (assigned on demand)")
    gr.add_argument("--out", default="grades", help="folder for <stem>.json, <stem>.md and scores.csv")
    gr.add_argument("--timeout", type=float, default=120.0, help="seconds per submission (then score 0)")
    gr.add_argument("--workers", type=int, default=1, help="submissions graded at the same time")
    gr.set_defaults(func=cmd_grade)

    enh = sub.add_parser("enhance", help="enhance every video under SRC into the same paths under DST (resumable)")
    enh.add_argument("src", help="folder of videos (searched recursively)")
    enh.add_argument("dst", help="output folder (must differ from SRC)")
    from .enhance import ENHANCERS

    enh.add_argument("--method", choices=ENHANCERS.names(), default="zero_dce_pp")
    enh.add_argument("--checkpoint", help="curve-model weights (state dict or training checkpoint)")
    enh.add_argument("--official", action="store_true", help="--checkpoint comes from the official Zero-DCE(++) code")
    enh.add_argument("--temporal-smoothing", type=float, default=0.0, help="curve EMA over frames in [0, 1)")
    enh.add_argument("--scale-factor", type=float, help="zero_dce_pp: estimate curves on a downscaled input")
    enh.add_argument("--gamma", type=float, help="gamma: exponent (default 0.4)")
    enh.add_argument("--clip-limit", type=float, help="clahe: clip limit (default 2.0)")
    enh.add_argument("--overwrite", action="store_true", help="redo videos already present in DST")
    enh.add_argument("--quiet", action="store_true")
    enh.set_defaults(func=cmd_enhance)

    from .experiments.lowlight import LowLightParams

    arid = sub.add_parser("arid-eval", help="recognition on dark data before/after enhancement (notebook 06)")
    add_arguments(arid, LowLightParams, choices={"model": list_models()})
    arid.add_argument("--quiet", action="store_true")
    arid.set_defaults(func=cmd_arid_eval)

    from .explain.attribution import METHODS

    def explain_options(p: argparse.ArgumentParser, default_methods: str) -> None:
        p.add_argument("--method", default=default_methods, help=f"comma list of {', '.join(METHODS)}")
        p.add_argument("--checkpoint", default="best.pt", help="checkpoint in the run folder (last.pt when absent)")
        p.add_argument("--data-root", help="override the run's data_root")
        p.add_argument("--ig-steps", type=int, default=16, help="Integrated Gradients steps")
        p.add_argument("--memory-mb", type=int, default=1024, help="memory budget of batched attribution passes")
        p.add_argument("--quiet", action="store_true")

    exp = sub.add_parser("explain", help="attributions and attention maps of one video: one self-contained HTML report")
    exp.add_argument("video", help="a video file (a SynthActions .npz beside it adds the localisation numbers)")
    exp.add_argument("--run", required=True, help="run folder (run.json + checkpoints)")
    exp.add_argument("--out", default="report.html", help="HTML report to write")
    exp.add_argument("--target", type=int, help="class index to explain (default: the predicted class)")
    explain_options(exp, "saliency,gradcam,integrated_gradients")
    exp.set_defaults(func=cmd_explain)

    ee = sub.add_parser("explain-eval", help="localisation table of a SynthActions run (JSON + markdown)")
    ee.add_argument("run", help="run folder trained on SynthActions")
    ee.add_argument("--out", help="folder for explain_eval.json / .md (default: the run folder)")
    ee.add_argument("--clips", type=int, default=22, help="test clips, round-robin over classes (0 = all)")
    ee.add_argument("--tolerance", type=int, default=2, help="pointing game: mask dilation in pixels")
    ee.add_argument("--sanity-clips", type=int, default=2, help="clips of the randomisation sanity check (0 = skip)")
    ee.add_argument("--sanity-layers", type=int, default=3, help="top layers randomised, cumulatively")
    ee.add_argument("--seed", type=int, default=0)
    ee.add_argument("--no-attention", action="store_true", help="do not score the model's attention maps")
    explain_options(ee, "saliency,integrated_gradients,gradcam,occlusion")
    ee.set_defaults(func=cmd_explain_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import logging

    args = build_parser().parse_args(argv)
    log = logging.getLogger("stia_kit")
    handler = None
    if not log.handlers:  # per-epoch summaries of the training engine, one line each, on the terminal
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        old_level = log.level
        log.setLevel(logging.INFO)
    try:
        return int(args.func(args))
    finally:
        if handler is not None:  # main() may be called in-process (tests, notebooks): leave logging as it was
            log.removeHandler(handler)
            log.setLevel(old_level)


if __name__ == "__main__":
    sys.exit(main())
