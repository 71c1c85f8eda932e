#!/usr/bin/env python3
"""Which refusal reasons are named by some test?

Lists the refusal reasons of the crates given (default: contracts, rollup,
ledger, net, channels):

- typed error variants: every variant of an enum whose `derive` includes
  `Error` (thiserror), e.g. `SubmitError::MempoolFull`;
- refusal strings: the literal text of `revert(...)`, `Revert(...)`,
  `bail!(...)`, `invalid(...)`, `InvalidBlock(...)`, `Genesis(...)`,
  `InvalidTerms(...)` and `Err(format!(...))`/`Err("...")` calls in `src/`,
  excluding `#[cfg(test)]` code.

A variant counts as named when test code writes `Enum::Variant`, or one
test file mentions both the enum and the variant as whole words (e.g. after
`use Enum::*` or in a `matches!` on an imported variant); a string counts as named when test code contains its longest literal
fragment (the text between `{}` placeholders), or a string literal in test
code of at least 8 characters occurs inside one of its fragments (tests often
assert on a distinctive part of a message).

Test code is every file under `crates/*/tests/`, every `src/**/tests.rs`, and
the `#[cfg(test)]` tail of every source file, across the whole workspace (a
refusal of one crate may be exercised through another's tests).

    python3 scripts/refusal_coverage.py            # summary and the unnamed reasons
    python3 scripts/refusal_coverage.py --min 90   # also fail below 90 %
    python3 scripts/refusal_coverage.py --json     # machine-readable

Reasons that no public-API test can provoke (internal invariants, errors
that cannot be observed) are listed with a justification in
scripts/refusal_allowlist.tsv; they are shown apart from the unnamed reasons
and in a "reachable" figure, but never counted as named.

Heuristic by design (it reads source text, it does not run the tests); it
answers "is there a test that talks about this reason", not "does that test
assert it correctly".
"""

import argparse
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_CRATES = ["contracts", "rollup", "ledger", "net", "channels"]
ALLOWLIST = ROOT / "scripts" / "refusal_allowlist.tsv"


def load_allowlist():
    """{(file, "kind reason"): justification} from the allow-list file."""
    out = {}
    if not ALLOWLIST.exists():
        return out
    for line in ALLOWLIST.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        file, reason, why = line.split("\t", 2)
        if not reason.startswith("variant "):
            reason = "string " + reason
        out[(file, reason)] = why
    return out

CALL_RE = re.compile(
    r"""(?:\brevert|\bRevert|\bbail!|\binvalid|\bInvalidBlock|\bGenesis|\bInvalidTerms|\bErr)\s*\(\s*
        (?:format!\s*\(\s*)?
        "((?:[^"\\]|\\.)*)"
    """,
    re.VERBOSE,
)
LITERAL_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')
ENUM_RE = re.compile(r"#\[derive\(([^)]*)\)\]\s*(?:#\[[^\]]*\]\s*)*pub\s+enum\s+(\w+)(?:<[^>]*>)?\s*\{", re.S)


def split_test_tail(text):
    """(non-test code, test code) of a source file."""
    i = text.find("#[cfg(test)]")
    return (text, "") if i < 0 else (text[:i], text[i:])


def enum_variants(body):
    """Variant names of an enum body (top level only)."""
    depth, names, token = 0, [], ""
    i = 0
    # Drop comments and attributes.
    body = re.sub(r"//[^\n]*", "", body)
    body = re.sub(r"#\[[^\]]*\]", "", body)
    expect_name = True
    while i < len(body):
        c = body[i]
        if c in "{(":
            depth += 1
        elif c in "})":
            depth -= 1
        elif c == "," and depth == 0:
            expect_name = True
        elif depth == 0 and expect_name and (c.isalpha() or c == "_"):
            m = re.match(r"\w+", body[i:])
            names.append(m.group(0))
            i += len(m.group(0))
            expect_name = False
            continue
        i += 1
    return names


def enum_body(text, start):
    """The text between the braces opening at `start`."""
    depth = 0
    for j in range(start, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : j]
    return ""


def fragments(s):
    parts = [p.strip(" :;,.-") for p in re.split(r"\{[^}]*\}", s)]
    return [p for p in parts if len(p) >= 4]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("crates", nargs="*", default=DEFAULT_CRATES)
    ap.add_argument("--min", type=float, default=None, help="fail if coverage is below this percentage")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    test_text = []
    for f in sorted((ROOT / "crates").glob("*/tests/**/*.rs")):
        test_text.append(f.read_text())
    for f in sorted((ROOT / "crates").glob("*/src/**/*.rs")):
        text = f.read_text()
        if f.name == "tests.rs":
            test_text.append(text)
        else:
            test_text.append(split_test_tail(text)[1])
    tests = "\n".join(test_text)
    test_literals = {m.group(1) for m in LITERAL_RE.finditer(tests) if len(m.group(1)) >= 8}
    file_words = [set(re.findall(r"\w+", t)) for t in test_text]

    def variant_named(enum, variant):
        if re.search(rf"\b{enum}::{variant}\b", tests):
            return True
        return any(enum in w and variant in w for w in file_words)

    reasons = []
    for crate in args.crates:
        for f in sorted((ROOT / "crates" / crate / "src").glob("**/*.rs")):
            if f.name == "tests.rs":
                continue
            code = split_test_tail(f.read_text())[0]
            rel = str(f.relative_to(ROOT))
            for m in ENUM_RE.finditer(code):
                derives, name = m.group(1), m.group(2)
                if not re.search(r"\bError\b", derives):
                    continue
                for v in enum_variants(enum_body(code, m.end() - 1)):
                    reasons.append({"crate": crate, "file": rel, "kind": "variant", "reason": f"{name}::{v}",
                                    "named": variant_named(name, v)})
            seen = set()
            for m in CALL_RE.finditer(code):
                s = m.group(1)
                frags = fragments(s)
                if not frags or s in seen:
                    continue
                seen.add(s)
                longest = max(frags, key=len)
                named = longest in tests or any(lit in fr for lit in test_literals for fr in frags)
                reasons.append({"crate": crate, "file": rel, "kind": "string", "reason": s, "named": named})

    allow = load_allowlist()
    seen_allowed = set()
    for r in reasons:
        k = (r["file"], f"{r['kind']} {r['reason']}")
        if k in allow:
            seen_allowed.add(k)
            r["unreachable"] = None if r["named"] else allow[k]
    stale = [k for k in allow if k not in seen_allowed or any(
        (r["file"], f"{r['kind']} {r['reason']}") == k and r["named"] for r in reasons)]
    stale = [k for k in stale if any(k[0].startswith(f"crates/{c}/") for c in args.crates)]

    total = len(reasons)
    named = sum(r["named"] for r in reasons)
    pct = 100.0 * named / total if total else 100.0
    unreachable = sum(bool(r.get("unreachable")) for r in reasons)
    reachable_pct = 100.0 * named / (total - unreachable) if total > unreachable else 100.0
    if args.json:
        print(json.dumps({"total": total, "named": named, "percent": round(pct, 1), "unreachable": unreachable,
                          "reachable_percent": round(reachable_pct, 1), "reasons": reasons}, indent=1))
    else:
        by_crate = {}
        for r in reasons:
            c = by_crate.setdefault(r["crate"], [0, 0])
            c[0] += 1
            c[1] += r["named"]
        for c, (t, n) in by_crate.items():
            print(f"{c:10} {n:4} / {t:4} named by a test ({100.0 * n / t:5.1f} %)")
        print(f"{'all':10} {named:4} / {total:4} named by a test ({pct:5.1f} %)")
        print(f"{'reachable':10} {named:4} / {total - unreachable:4} named by a test ({reachable_pct:5.1f} %),"
              f" {unreachable} allow-listed as unreachable")
        unnamed = [r for r in reasons if not r["named"] and not r.get("unreachable")]
        if unnamed:
            print("\nnot named by any test:")
            for r in unnamed:
                print(f"  {r['file']}: {r['kind']} {r['reason']!r}")
        allowed = [r for r in reasons if r.get("unreachable")]
        if allowed:
            print("\nunreachable (allow-listed, not counted as named):")
            for r in allowed:
                print(f"  {r['file']}: {r['kind']} {r['reason']!r}: {r['unreachable']}")
        for f, k in stale:
            print(f"stale allow-list entry (named by a test or no such reason): {f}: {k}", file=sys.stderr)
    if args.min is not None and pct < args.min:
        print(f"refusal coverage {pct:.1f} % is below {args.min} %", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
