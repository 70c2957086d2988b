"""A closer look at evaluated runs: ``python -m training anatomy RUN`` (its error anatomy: scores,
recall by object size, missed objects, errors across the frame; computed from the stored
predictions of a run evaluated before it), ``rescore RUN`` (add what today's evaluation writes
that an older run lacks), ``confusions RUN`` (which classes it mixes up, and the images behind
each confusion) and ``compare A B`` (is B better than A, or noise?)."""

from __future__ import annotations

from training.cli.common import add_artifacts, boundary_ratio, check_output, whole_number
from training.evaluation.significance import MAX_RESAMPLES, MIN_RESAMPLES

RESAMPLES_WHY = f" (fewer than {MIN_RESAMPLES} cannot give a 95% interval worth the name)"


def add_anatomy_parser(commands) -> None:
    anatomy = commands.add_parser("anatomy", help="a run's error anatomy (Boundary IoU, iIoU, recall by object size, "
                                  "missed objects, errors across the frame); computed from its stored predictions "
                                  "when it has none")
    anatomy.add_argument("run")
    anatomy.add_argument("--ratio", type=boundary_ratio, default=0.005,
                         help="boundary width as a share of the image diagonal, above 0 and at most 1 "
                         "(default: 0.005)")
    anatomy.add_argument("--replace", action="store_true", help="compute it again if the run has one")
    anatomy.add_argument("--missed", type=int, default=10, help="missed objects listed (default: 10)")
    anatomy.add_argument("--data-root")
    add_artifacts(anatomy)
    anatomy.set_defaults(handler=cmd_anatomy)


def add_rescore_parser(commands) -> None:
    rescore = commands.add_parser("rescore", help="add to a run evaluated by an older version what today's "
                                  "evaluation writes (official per-image confusions, error anatomy), from its stored "
                                  "predictions; no model needed")
    rescore.add_argument("run")
    rescore.add_argument("--data-root")
    add_artifacts(rescore)
    rescore.set_defaults(handler=cmd_rescore)


def add_confusions_parser(commands) -> None:
    confusions = commands.add_parser("confusions", help="the classes a run mixes up most, and the images behind "
                                     "each confusion")
    confusions.add_argument("run")
    confusions.add_argument("--top", type=int, default=5, help="confusions listed (default: 5)")
    confusions.add_argument("--images", type=int, default=3, help="images listed per confusion (default: 3)")
    add_artifacts(confusions)
    confusions.set_defaults(handler=cmd_confusions)


def add_compare_parser(commands) -> None:
    compare = commands.add_parser("compare", help="is run B better than run A, or noise? (paired bootstrap "
                                  "over the images both evaluated)")
    compare.add_argument("run_a", metavar="A")
    compare.add_argument("run_b", metavar="B")
    compare.add_argument("--resamples", type=whole_number(MIN_RESAMPLES, MAX_RESAMPLES, RESAMPLES_WHY), default=1000,
                         help=f"bootstrap resamples, {MIN_RESAMPLES} to {MAX_RESAMPLES} (default: 1000)")
    compare.add_argument("--seed", type=int, default=0, help="seed of the resamples (default: 0)")
    compare.add_argument("--json", help="also write the result as JSON (an existing file is replaced)")
    add_artifacts(compare)
    compare.set_defaults(handler=cmd_compare)


def _positive(value: int, option: str) -> int:
    if value < 1:
        raise ValueError(f"{option} must be at least 1, got {value}")
    return value


def cmd_anatomy(args) -> int:
    from training.evaluation.anatomy import format_anatomy
    from training.evaluation.anatomy_report import (
        check_frame_counts,
        format_anatomy_report,
        missed_objects,
        object_columns,
        recall_by_size,
    )
    from training.runs.reader import get_run
    from training.runs.rescore import anatomize_run

    _positive(args.missed, "--missed")
    run = get_run(args.run, args.artifacts)
    if run.has_anatomy and not args.replace:
        summary = run.anatomy()
        print(f"run {run.name}: error anatomy of {summary.get('images')} {summary.get('split')} images "
              "(stored; --replace computes it again)")
    else:
        summary = anatomize_run(run, args.data_root, args.ratio, args.replace, progress=not args.quiet)
        print(f"run {run.name}: error anatomy of {summary['images']} {summary['split']} images "
              f"in {summary['seconds']:.1f} s")
    print(format_anatomy(summary))
    try:
        columns = object_columns(run.instances())
        frame = check_frame_counts(run.frame_errors())
    except ValueError as error:
        raise ValueError(f"run {run.name}: {error}") from None
    by_size = recall_by_size(columns["class"], columns["pixels"], columns["recall"], columns["missed"])
    print()
    print(format_anatomy_report(by_size, missed_objects(columns), frame, args.missed))
    return 0


def cmd_rescore(args) -> int:
    from training.evaluation.anatomy import format_anatomy
    from training.runs.reader import get_run
    from training.runs.rescore import rescore_run

    run = get_run(args.run, args.artifacts)
    done = rescore_run(run, args.data_root, progress=not args.quiet)
    if not done["added"]:
        print(f"run {run.name} has every file today's evaluation writes: nothing to add")
        return 0
    print(f"run {run.name}: added {', '.join(done['added'])} from the stored predictions of {done['images']} images "
          f"in {done['seconds']:.1f} s")
    if done["anatomy"] is not None:
        print(format_anatomy(done["anatomy"]))
    return 0


def cmd_confusions(args) -> int:
    from training.data.labels import get_class_set
    from training.evaluation.confusions import confused_images, format_confusions, largest_confusions
    from training.runs.reader import get_run

    _positive(args.top, "--top")
    run = get_run(args.run, args.artifacts)
    class_set = get_class_set(run.metrics.get("classes"))
    matrix = run.confusion()
    names = list(class_set.eval_names)[:len(matrix)]
    ids = [int(row["id"]) for row in run.per_image()]
    matrices = run.per_image_confusion(mmap=True)
    behind = {(true, predicted): confused_images(ids, matrices, true, predicted, class_set.num_classes, args.images)
              for true, predicted, _ in largest_confusions(matrix, args.top)} if args.images > 0 else {}
    print(f"run {run.name}: {class_set.name}, {run.metrics.get('split')} split, {len(ids)} images")
    print(format_confusions(matrix, names, args.top, behind))
    return 0


def cmd_compare(args) -> int:
    from training.evaluation.significance import compare_runs, format_comparison
    from training.files import write_json_atomic
    from training.runs.reader import get_run

    check_output(args.json, "--json")
    result = compare_runs(get_run(args.run_a, args.artifacts), get_run(args.run_b, args.artifacts),
                          args.resamples, args.seed)
    print(format_comparison(result))
    if args.json:
        write_json_atomic(args.json, result)
        print(f"wrote {args.json}")
    return 0
