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
reviewed half fully labelled (what the decisions could at best be worth). Ends with one line
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
from harvester.app.train import Report, as_model, batch_of, decision_excerpts, fit, load_set, prf  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default=HELD_OUT, help=f"the scheme's organisations [default: {HELD_OUT}]")
    args = parser.parse_args()
    excerpts = load_set(SET)
    late = batch_range(args.batches, {batch_of(e) for e in excerpts})
    scheme = [e for e in excerpts if batch_of(e) in late]
    urls = {e.url for e in scheme}
    dev = [e for e in excerpts if batch_of(e) not in late and e.url not in urls]
    done = [e for e in scheme if reviewed(e.url)]
    to_come = [e for e in scheme if not reviewed(e.url)]
    print(f"development set {len(dev)} excerpts; organisations reviewed: {len(done)} excerpts of "
          f"{len({urlsplit(e.url).hostname for e in done})} domains; still to come: {len(to_come)} excerpts of "
          f"{len({urlsplit(e.url).hostname for e in to_come})} domains", flush=True)

    packaged = as_model(fit(dev))
    decided = []
    for e in done:
        judged = judge(e.text, packaged)
        says = {n: "exclude" for n, j in judged.items() if j.score >= 0.5 and n not in e.labels}
        says.update({n: "include" for n, j in judged.items() if j.score < 0.5 and n in e.labels})
        if says:
            decided += decision_excerpts(e.id, e.url, e.org_kind, e.text, says, packaged)
    n_decisions = sum(len(d.decided) for d in decided)
    print(f"{n_decisions} decisions ({sum(len(d.labels) for d in decided)} includes) on "
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
    print(f"decisions_eval: {figures[1]:.4f}")


if __name__ == "__main__":
    main()
