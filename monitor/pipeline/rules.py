"""The rules that apply to each source, and their compiled form.

Rules travel to the worker processes as text, the (name, query) pairs of one
source: the compiled form of a realistic rule set is large (the shipped
configuration's two rules pickle to 86 kB and take 16 ms to unpickle), and would
cost more to send with each article than the matching itself. Each process
compiles a given set of rules once, in ``compiled``.
"""

from __future__ import annotations

from functools import lru_cache

from monitor.config import Config
from monitor.match.query import RuleSet, compile_query

#: The (name, query) of each rule that applies to a source, in configuration order.
RuleTexts = tuple[tuple[str, str], ...]

# Rule sets compiled per process: a configuration has few distinct ones (most
# sources share the rules that name no source), and a reload brings new ones.
_COMPILED_SETS = 64


def rules_by_source(config: Config) -> dict[str, RuleTexts]:
    """For each source, the (name, query) of the rules that apply to it."""
    return {s.name: tuple((r.name, r.query) for r in config.rules
                          if not r.sources or s.name in r.sources)
            for s in config.sources}


@lru_cache(maxsize=_COMPILED_SETS)
def compiled(rules: RuleTexts) -> RuleSet:
    """The rule set of ``rules``, compiled once in this process."""
    return RuleSet({name: compile_query(query, rule=name) for name, query in rules})
