"""The rules of `wizard check`: each has an id, a severity, what it catches and how to fix it.

The catalog rules (placeholders, equality groups, LI rules, drift, the secrets file) run in wizard.check on
the survey of the tree (wizard.survey: the same discovery as apply); the tree rules here read a TreeModel
(the tree parsed once) and yield Findings. wizard.rules.registry holds every rule's metadata — the one
description of them: the rule tables of docs/check.md are generated from it (`python -m wizard.rules.docs`),
and `wizard check --rule ID` / `--skip-rule ID` select rules by it.
"""
from __future__ import annotations

from wizard.rules.finding import ERROR, INFO, WARNING, Finding
from wizard.rules.registry import (ALWAYS_ON, CATALOG, CATALOG_RULES, TREE, TREE_RULES, Also, Rule, RunContext,
                                   all_rules, rule_by_id, rule_ids, runner, select)


def docs_table() -> str:
    """The rule tables of docs/check.md (Markdown), from the rules' metadata."""
    from wizard.rules.docs import rule_tables

    return rule_tables(all_rules())


__all__ = ["ALWAYS_ON", "CATALOG", "CATALOG_RULES", "ERROR", "WARNING", "INFO", "TREE", "TREE_RULES", "Also",
           "Finding", "Rule", "RunContext", "all_rules", "docs_table", "rule_by_id", "rule_ids", "runner", "select"]
