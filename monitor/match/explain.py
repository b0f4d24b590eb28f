"""Why a query does not match a document, in words a rule writer acts on.

Each required part that found nothing is named; for a NEAR whose sides were
both found, how close they came.
"""

from __future__ import annotations

from monitor.match.evaluate import Evaluator, Span, closest
from monitor.match.index import Document
from monitor.match.parse import And, Node, Not, Or, Term


def explain(evaluator: Evaluator, node: Node) -> list[str]:
    """Why ``node`` does not match the evaluator's document (empty when it does)."""
    if evaluator.eval(node) is not None:
        return []
    if isinstance(node, Term):
        return [f"{_shown(node)} is not in the {_where(node)}"]
    if isinstance(node, And):
        return [why for c in node.children for why in explain(evaluator, c)]
    if isinstance(node, Or):
        terms = [c for c in node.children if isinstance(c, Term)]
        if len(terms) == len(node.children):
            names = ", ".join(_shown(t) for t in terms[:12])
            more = f" and {len(terms) - 12} more" if len(terms) > 12 else ""
            return [f"none of {names}{more} is in the article"]
        # Each alternative's reasons, the near misses (a NEAR that came
        # close) first: those are what a rule writer acts on.
        reasons = [why for c in node.children for why in explain(evaluator, c)]
        return sorted(dict.fromkeys(reasons), key=lambda why: " apart" not in why)
    if isinstance(node, Not):
        hits = evaluator.eval(node.child) or []
        words = _written(evaluator.doc, hits)
        found = f": found {', '.join(words[:5])}" if words else ""
        return [f"excluded by NOT {_brief(node.child)}{found}"]
    left, right = evaluator.eval(node.left), evaluator.eval(node.right)
    if not left or not right:
        return [why for side in (node.left, node.right) for why in explain(evaluator, side)]
    gap = closest(left, right)
    if gap is None:
        return [f"{_brief(node.left)} and {_brief(node.right)} are found only in different "
                f"fields; NEAR/{node.distance} needs them in one"]
    return [f"{_brief(node.left)} … {_brief(node.right)}: {gap} words apart at the closest, "
            f"NEAR/{node.distance} needs at most {node.distance}"]


def _shown(term: Term) -> str:
    return f"'{term.display}'"


def _where(term: Term) -> str:
    return f"{term.field}" if term.field else "title or text"


def _brief(node: Node, limit: int = 60) -> str:
    """A node as a reader would name it: a term's words, a group's first terms."""
    if isinstance(node, Term):
        return node.display
    text = str(node)
    return text if len(text) <= limit else text[:limit - 1] + "…)"


def _written(doc: Document, spans: list[Span]) -> list[str]:
    return list(dict.fromkeys(" ".join(doc.text_of(f)[s:e].split())
                              for span in spans for _, f, s, e in span[3]))
