"""A run's predictions of drive sequences, stored beside it (``runs/<run>/sequences/<name>/``,
``training.runs.sequences``) with their temporal consistency: ``python -m training
predict-sequence RUN (--sequence NAME | --all)`` predicts the frames of a snippet or demo drive with a
trained run; ``import-sequences RUN --pred-dir DIR`` takes another tool's frame predictions."""

from __future__ import annotations

from training.cli.common import add_artifacts, add_prediction_format, rounded, whole_number


def add_predict_sequence_parser(commands) -> None:
    parser = commands.add_parser("predict-sequence", help="predict a drive sequence's frames with a run and store "
                                 "them with their temporal consistency")
    parser.add_argument("run")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--sequence", action="append", metavar="NAME",
                       help="a snippet (its annotated frame's <city>_<seq>_<frame>) or a demo drive (its video "
                       "name); repeat for more")
    which.add_argument("--all", action="store_true", help="every sequence of the dataset")
    parser.add_argument("--data-root", help="dataset in the Cityscapes layout (default: the run's, "
                        "$CITYSCAPES_DATASET, else the embedded dataset)")
    parser.add_argument("--export", metavar="NAME", help="predict with this TFLite export of the run "
                        "(python -m training export) instead of its Keras model")
    parser.add_argument("--workers", type=whole_number(1, 256), default=None,
                        help="threads that compute the optical flow (default: every core)")
    add_artifacts(parser)
    parser.set_defaults(handler=cmd_predict_sequence)


def cmd_predict_sequence(args) -> int:
    from tqdm import tqdm

    from training.fit.predict import start_tensorflow_quietly
    from training.runs.layout import IMPORTED, ArtifactError
    from training.runs.reader import get_run
    from training.runs.sequences import dataset_sequences, find_sequence

    run = get_run(args.run, args.artifacts)
    if run.metrics.get("source") == IMPORTED:
        raise ArtifactError(f"run {run.name} was imported from another tool's predictions: it has no model to "
                            "predict with. Import that tool's predictions of the frames with `python -m training "
                            f"import-sequences {run.name} --pred-dir DIR`")
    settings = run.data_settings
    dataset = settings.open(args.data_root)
    sequences, problems = dataset_sequences(dataset.root, settings.index_file(dataset.root), dataset.index)
    chosen = sequences if args.all else [find_sequence(sequences, name) for name in dict.fromkeys(args.sequence)]
    if not chosen:
        raise ValueError(f"{dataset.root}: the dataset has no sequence (leftImg8bit_sequence/ or "
                         "leftImg8bit/demoVideo/); `python -m training data make` writes some")
    start_tensorflow_quietly()
    from training.fit.predict_sequence import load_predictor, predict_sequence

    predictor = load_predictor(run, args.export)
    for sequence in chosen:
        with tqdm(total=len(sequence), desc=f"predict {sequence.name}", unit="frame", disable=args.quiet) as bar, \
                tqdm(total=len(sequence), desc=f"temporal {sequence.name}", unit="frame",
                     disable=args.quiet) as pairs:
            document = predict_sequence(run, predictor, sequence, dataset.root, dataset.class_set, args.export,
                                        on_frame=lambda: bar.update(1), on_pair=lambda: pairs.update(1),
                                        workers=args.workers)
        print(f"{run.name} / {sequence.name}: {len(sequence)} frames, temporal consistency "
              f"{rounded(document['temporal_consistency'])}, flicker rate {rounded(document['flicker_rate'])} "
              f"-> {run.path / 'sequences' / sequence.name}")
    return 0


def add_import_sequences_parser(commands) -> None:
    parser = commands.add_parser("import-sequences", help="another tool's predictions of drive sequences' frames "
                                 "into a run, with their temporal consistency")
    parser.add_argument("run", help="a run of the store, imported or trained")
    parser.add_argument("--pred-dir", required=True, help="PNGs matched by <city>_<seq>_<frame> in their names, "
                        "anywhere under it; a file naming no frame of the dataset's sequences is an error")
    parser.add_argument("--sequence", action="append", metavar="NAME",
                        help="import this sequence only (repeat for more; default: every sequence with a file "
                        "under --pred-dir); a sequence is imported whole: a missing frame is an error")
    parser.add_argument("--data-root", help="the run's dataset, if it moved")
    add_prediction_format(parser)
    parser.add_argument("--workers", type=whole_number(1, 256), default=None,
                        help="threads that decode and compute the optical flow (default: every core)")
    add_artifacts(parser)
    parser.set_defaults(handler=cmd_import_sequences)


def cmd_import_sequences(args) -> int:
    from tqdm import tqdm

    from training.runs.imported_sequences import import_sequence, plan_import
    from training.runs.reader import get_run

    run = get_run(args.run, args.artifacts)
    plan = plan_import(run, args.pred_dir, args.sequence, args.data_root, args.format)
    print(f"predictions: {plan.reader.format} ({plan.reader.reason})")
    for files in plan.sequences:
        with tqdm(total=len(files.sequence), desc=f"import {files.sequence.name}", unit="frame",
                  disable=args.quiet) as bar:
            document = import_sequence(run, run.uid, files, plan.root, plan.reader, args.resize, args.workers,
                                       on_frame=lambda: bar.update(1))
        resized = document["import"]["resized_frames"]
        print(f"{run.name} / {files.sequence.name}: {len(files.sequence)} frames"
              f"{f' ({resized} scaled to the photos)' if resized else ''}, temporal consistency "
              f"{rounded(document['temporal_consistency'])}, flicker rate {rounded(document['flicker_rate'])} "
              f"-> {run.path / 'sequences' / files.sequence.name}")
    return 0
