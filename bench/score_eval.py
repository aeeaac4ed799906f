"""How well the classifier finds the five criteria in real text, by grouped cross-validation on
the development set (`fixtures/labelled/`), against the ceiling two labellers working alone reach.

Prints precision, recall and F1 per criterion and macro-F1 (folds split by source page), and how
often a criterion scored in each band above the threshold was evidence (what a dossier citation
says of its score); the same
for the batches labelled last (`--held-out`), scored by a model fitted on the other batches, the
nearest the set comes to text of themes never seen; the shipped classifier on any batch labelled
after it was trained (its artefact lists the batches it read), the one figure no choice made on the
set could have flattered; then Cohen's kappa and F1 between the first
labels and an independent second labelling of a sample (`second_pass.jsonl`), then each
figure against its floor in `baseline.json` (a floor minus its noise margin is what
`tests/test_score_eval.py` holds). With `--pin`, raises the floors to today's figures minus nothing
(never lowers one unless `--allow-lower`). Ends with one line `score_eval: MACRO_F1`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harvester.app.train import (bands, batch_files, batch_of, cross_validate, held_out, labelled_order, load_set, prf,
                                  report_on, set_digest)  # noqa: E402
from harvester.config.classifier import load_classifier, packaged_classifier_path  # noqa: E402
from scoring import CRITERIA  # noqa: E402
from scoring.learned import judge  # noqa: E402

SET = ROOT / "fixtures" / "labelled"
BASELINE = SET / "baseline.json"
DECISION = 0.5  # a shipped model's scores are scaled so that its own threshold, chosen when it was trained, sits here
HELD_OUT = "b34-b52"  # the batches labelled after a shipped model was fixed (2026.12-8, then -9), from pages and themes new to it


def batch_range(spec: str, known: set[str]) -> set[str]:
    """"b23-b33" or "b09,b10" as the set of batches it names; a batch not in the set is an error."""
    names: set[str] = set()
    for part in spec.split(","):
        first, _, last = part.strip().partition("-")
        if last:
            prefix = first.rstrip("0123456789")
            width, lo, hi = len(first) - len(prefix), int(first[len(prefix):]), int(last[len(prefix):])
            names |= {f"{prefix}{n:0{width}d}" for n in range(lo, hi + 1)}
        else:
            names.add(first)
    unknown = sorted(names - known)
    if unknown:
        raise SystemExit(f"score_eval: no batch {unknown[0]} in {SET / 'raw'}")
    return names


def kappa(a: list[bool], b: list[bool]) -> float:
    n = len(a)
    agree = sum(x == y for x, y in zip(a, b)) / n
    pa, pb = sum(a) / n, sum(b) / n
    chance = pa * pb + (1 - pa) * (1 - pb)
    return round((agree - chance) / (1 - chance), 4) if chance < 1 else 1.0


def agreement(excerpts) -> tuple[dict[str, dict[str, float]], int]:
    """Kappa and F1 between the first labels and the independent second pass, per criterion, and how
    many excerpts were labelled twice."""
    first = {}
    for path in batch_files(SET):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                first.setdefault(r["id"], set(r["labels"]))
    second = [json.loads(line) for line in (SET / "second_pass.jsonl").read_text(encoding="utf-8").splitlines()
              if line.strip()]
    out = {}
    for name in CRITERIA:
        a = [name in first[s["id"]] for s in second]
        b = [name in s["labels"] for s in second]
        out[name] = {"kappa": kappa(a, b), "f1": prf(a, b)["f1"]}
    return out, len(second)


def as_shipped(excerpts, held: list[dict], threshold: float) -> tuple[float, float]:
    """Macro-F1 of the held-out scores after the packaged rubric's topic test (`scoring.classify`
    multiplies an off-topic text's scores by its factor): a rubric that throws away real evidence
    shows here."""
    from harvester.config.settings import default_rubric_path, load_rubric
    from scoring.rubric import any_of

    rubric = load_rubric(default_rubric_path())
    topic = any_of(rubric.topic)
    factors = [1.0 if topic.search(e.text) else rubric.off_topic_factor for e in excerpts]
    f1 = [prf([name in e.labels for e in excerpts], [h[name] * f >= threshold for h, f in zip(held, factors)])["f1"]
          for name in CRITERIA]
    return rubric.off_topic_factor, sum(f1) / len(f1)


def band_line(found: list[dict]) -> str:
    """The share of criteria scored in each band that were evidence, as the dossier cites them."""
    parts = []
    for band in found:
        share = "—" if band["evidence"] is None else f"{band['evidence']:.0%}"
        parts.append(f"{band['from']:.1f}–{band['to']:.1f} {share} ({band['items']})")
    return "evidence by band of score: " + ", ".join(parts)


def shipped_on_unseen(excerpts, threshold: float, path: Path | None = None) -> str:
    """The shipped classifier on the batches labelled after it was trained: the one figure of
    text it never saw that no choice made on the set could have flattered. `threshold` is on its
    scaled scores, where 0.5 is the line it was shipped with."""
    path = path or packaged_classifier_path()
    artefact = json.loads(gzip.decompress(path.read_bytes()))
    read = artefact.get("trained_on", {}).get("batches")
    if read is None:
        return "the shipped classifier does not record the batches it was trained on"
    later = sorted({batch_of(e) for e in excerpts} - set(read), key=labelled_order)
    if not later:
        return f"the shipped classifier ({artefact['version']}) has read every batch; label new ones to measure it afresh"
    test = [e for e in excerpts if batch_of(e) in later]
    model = load_classifier(path)
    scores = [{name: j.score for name, j in judge(e.text, model).items()} for e in test]
    return "\n".join(report_on(test, scores, threshold).lines(f"the shipped classifier ({artefact['version']}) on the batches labelled after it "
                                  f"({', '.join(later)})"))


def off_topic_reading(path: Path | None = None) -> tuple[float | None, str]:
    """How often the shipped classifier, through `ccqm classify`, reads the everyday text of real
    organisations' sites that is off the scheme's topic (sport, fundraising, net zero, bins, exam
    results, in the same words of doing, asking and improving) as evidence: the share of those
    that evidence nothing which get a label, and a line saying so. These excerpts (`off_topic/`)
    are kept out of the training on purpose: they measure a failure a validator meets on every
    site, which no figure of the development set shows."""
    from harvester.config.settings import default_rubric_path, load_rubric
    from scoring import classify_text

    folder = SET / "off_topic"
    if not (folder / "raw").is_dir():
        return None, f"no {folder / 'raw'}: off-topic reading not measured"
    excerpts = load_set(folder)
    rubric, model = load_rubric(default_rubric_path()), load_classifier(path or packaged_classifier_path())
    found = [set(classify_text(e.text, rubric, model).labels(rubric.label_threshold)) for e in excerpts]
    nothing = [f for e, f in zip(excerpts, found) if not e.labels]
    evidence = [(e, f) for e, f in zip(excerpts, found) if e.labels]
    share = sum(bool(f) for f in nothing) / len(nothing)
    per = ", ".join(f"{name} {sum(name in f for f in nothing)}" for name in CRITERIA)
    recall = sum(bool(e.labels & f) for e, f in evidence) / max(len(evidence), 1)
    return share, (f"off the topic ({len(excerpts)} excerpts of everyday site text, kept out of the training): "
                   f"{sum(bool(f) for f in nothing)} of the {len(nothing)} that evidence nothing ({share:.0%}) get "
                   f"a label ({per}); {recall:.0%} of the {len(evidence)} on the topic among them get one of theirs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pin", action="store_true", help="raise the floors in baseline.json to today's figures")
    parser.add_argument("--allow-lower", action="store_true", help="with --pin, also lower floors")
    parser.add_argument("--held-out", default=HELD_OUT, metavar="BATCHES",
                        help=f"batches to score with a model fitted on the others, e.g. b23-b33 or b09,b10 "
                             f"(default {HELD_OUT}; 'none' skips it)")
    args = parser.parse_args()

    started = time.perf_counter()
    excerpts = load_set(SET)
    report, held = cross_validate(excerpts, progress=lambda m: print(m, file=sys.stderr))
    print("\n".join(report.lines()))
    factor, gated = as_shipped(excerpts, held, report.threshold)
    print(f"as `ccqm classify` scores, with the rubric's off-topic factor {factor}: macro-F1 {gated:.3f}")
    print(band_line(bands(excerpts, held)))
    print(f"({time.perf_counter() - started:.1f} s)")
    if args.held_out != "none":
        batches = batch_range(args.held_out, {batch_of(e) for e in excerpts})
        unseen, scored, scores = held_out(excerpts, batches, report.threshold)
        print()
        print("\n".join(unseen.lines(f"held out by batch ({args.held_out}), fitted on the other batches")))
        print(band_line(bands(scored, scores)))

    print()
    print(shipped_on_unseen(excerpts, DECISION))  # not the threshold today's folds chose: the shipped model has its own
    off_topic, line = off_topic_reading()
    print()
    print(line)

    agree, twice = agreement(excerpts)
    print(f"\nagreement of two independent labellings ({twice} excerpts): the ceiling any model can reach")
    print(f"{'criterion':<17} {'kappa':>6} {'f1':>6}")
    for name, a in agree.items():
        print(f"{name:<17} {a['kappa']:>6.3f} {a['f1']:>6.3f}")
    print(f"{'mean':<17} {sum(a['kappa'] for a in agree.values()) / 5:>6.3f} "
          f"{sum(a['f1'] for a in agree.values()) / 5:>6.3f}")

    baseline = json.loads(BASELINE.read_text(encoding="utf-8")) if BASELINE.exists() else {"floors": {}, "margin": 0.01}
    figures = {"macro_f1": report.macro_f1, **{n: m["f1"] for n, m in report.per_criterion.items()}}
    ceiling = baseline.get("off_topic_labelled")
    if off_topic is not None:
        verdict = "—" if ceiling is None else ("ok" if off_topic <= ceiling + baseline["margin"] else "ABOVE")
        print(f"\noff-topic excerpts labelled {off_topic:.4f}  ceiling {ceiling if ceiling is not None else '—'}  {verdict}")
    print(f"\nfloors (margin {baseline['margin']}):")
    for key, value in figures.items():
        floor = baseline["floors"].get(key)
        verdict = "—" if floor is None else ("ok" if value >= floor - baseline["margin"] else "BELOW")
        print(f"{key:<17} {value:.4f}  floor {floor if floor is not None else '—'}  {verdict}")
    if args.pin:
        floors = dict(baseline["floors"])
        for key, value in figures.items():
            if args.allow_lower or value > floors.get(key, 0.0):
                floors[key] = value
        if off_topic is not None and (args.allow_lower or ceiling is None or off_topic < ceiling):
            ceiling = round(off_topic, 4)  # a ceiling: pinning lowers it (`--allow-lower` lets it rise)
        BASELINE.write_text(json.dumps({"margin": baseline.get("margin", 0.01), "set_sha256": set_digest(excerpts),
                                        "excerpts": len(excerpts), "floors": floors,
                                        "off_topic_labelled": ceiling}, indent=2) + "\n",
                            encoding="utf-8")
        print(f"pinned {BASELINE}")
    print(f"score_eval: {report.macro_f1:.4f}")


if __name__ == "__main__":
    main()
