"""What validators' decisions teach the classifier (`ccqm train --decisions`), on organisations it
has never seen.

The batches labelled last (b23-b33 by default) play the scheme's organisations. Their domains are
split in two by a hash: the first half are the organisations validators have reviewed, the second
those still to come. A model fitted on every other batch is the "packaged" one. A simulated
validator reads each reviewed excerpt as its dossier shows it: excludes every criterion the model
counts that the labels deny, includes every labelled criterion the model missed, and says nothing
where it agrees (as `ccqm override` is used). Those decisions become training passages exactly as
`ccqm train --decisions` makes them (`decision_excerpts`). Prints macro-F1 on the organisations
still to come for: the packaged model; it retrained with the decisions; it retrained with the
reviewed half fully labelled (what the decisions could at best be worth); then which decisions
teach it: exclusions alone, and with inclusions of only what it scored near the line. Ends with one line
`decisions_eval: MACRO_F1` (retrained with the decisions).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.score_eval import HELD_OUT, batch_range  # noqa: E402
from harvester.app.train import (Report, as_model, batch_of, decision_excerpts, decisions_in, fit,  # noqa: E402
                                 load_set, prf)
from scoring import CRITERIA  # noqa: E402
from scoring.learned import judge  # noqa: E402

SET = ROOT / "fixtures" / "labelled"


def reviewed(url: str) -> bool:
    host = urlsplit(url).hostname or url
    return int(hashlib.sha256(host.encode()).hexdigest(), 16) % 2 == 0


def report(model, excerpts) -> Report:
    scores = [{n: j.score for n, j in judge(e.text, model).items()} for e in excerpts]
    per = {n: prf([n in e.labels for e in excerpts], [s[n] >= 0.5 for s in scores])
           for n in CRITERIA}
    return Report(threshold=0.5, per_criterion=per, excerpts=len(excerpts), pages=len({e.url for e in excerpts}))


def decisions(done, judged, packaged, include_from: float = 0.0) -> list:
    """What the simulated validator decides on the reviewed excerpts: exclude every criterion the
    model counts that the labels deny; include every labelled one it missed, if the model scored it
    at least `include_from` (0: all of them), as training passages (`decision_excerpts`)."""
    out = []
    for e, found in zip(done, judged):
        says = {n: "exclude" for n, j in found.items() if j.score >= 0.5 and n not in e.labels}
        says.update({n: "include" for n, j in found.items() if include_from <= j.score < 0.5 and n in e.labels})
        if says:
            out += decision_excerpts(e.id, e.url, e.org_kind, e.text, says, packaged)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default=HELD_OUT, help=f"the scheme's organisations [default: {HELD_OUT}]")
    parser.add_argument("--swap", action="store_true", help="review the other half of the domains instead")
    args = parser.parse_args()
    excerpts = load_set(SET)
    late = batch_range(args.batches, {batch_of(e) for e in excerpts})
    scheme = [e for e in excerpts if batch_of(e) in late]
    urls = {e.url for e in scheme}
    dev = [e for e in excerpts if batch_of(e) not in late and e.url not in urls]
    done = [e for e in scheme if reviewed(e.url) != args.swap]
    to_come = [e for e in scheme if reviewed(e.url) == args.swap]
    print(f"development set {len(dev)} excerpts; organisations reviewed: {len(done)} excerpts of "
          f"{len({urlsplit(e.url).hostname for e in done})} domains; still to come: {len(to_come)} excerpts of "
          f"{len({urlsplit(e.url).hostname for e in to_come})} domains", flush=True)

    packaged = as_model(fit(dev))
    judged = [judge(e.text, packaged) for e in done]
    decided = decisions(done, judged, packaged)
    said = decisions_in(decided)
    print(f"{len(said)} decisions ({sum(said.values())} includes, {len(decided)} passages) on "
          f"{len({d.url for d in decided})} pages", flush=True)

    rows = [("packaged (development set only)", packaged),
            ("retrained with the decisions", as_model(fit(dev + decided))),
            ("retrained with the reviewed fully labelled", as_model(fit(dev + done)))]
    figures = []
    for label, model in rows:
        r = report(model, to_come)
        figures.append(r.macro_f1)
        print(f"\n{label}, on the organisations still to come")
        print("\n".join(r.lines(heading="scored")[1:]), flush=True)
    print(f"\ngain from the decisions: {figures[1] - figures[0]:+.3f} macro-F1 "
          f"(full labels of the same organisations: {figures[2] - figures[0]:+.3f})")
    print("\nwhich decisions teach it (exclusions of what it wrongly counted, plus inclusions of what it "
          "missed scored at least):")
    for low in (0.5, 0.4, 0.3):
        some = decisions(done, judged, packaged, include_from=low)
        gain = report(as_model(fit(dev + some)), to_come).macro_f1 - figures[0]
        print(f"  {low:.2f}: {len(decisions_in(some))} decisions, {gain:+.3f} macro-F1"
              + ("  (exclusions only)" if low == 0.5 else ""), flush=True)
    print(f"decisions_eval: {figures[1]:.4f}")


if __name__ == "__main__":
    main()
