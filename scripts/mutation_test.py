"""A small mutation-testing runner: apply one simple mutation at a time to a source file and run the
given tests against it; a mutant is *killed* when the tests fail (or time out), *survived* otherwise.

    OMP_NUM_THREADS=1 nice -n 10 python scripts/mutation_test.py src/inpaintgan/losses.py \
        --tests tests/test_losses.py [--functions d_loss,g_loss] [--only 3,17] [--timeout 120] \
        [--max-minutes 20] [--report mut_losses.json] [--pytest-args "-k 'not slow'"]

Mutations (each applied alone, found with ``ast``): arithmetic operators (+ <-> -, * <-> /, ** -> *,
// -> /), dropping one operand of + - * / (a loss term or a weight removed), comparisons (< <-> <=,
> <-> >=, == <-> !=, in <-> not in, is <-> is not), and <-> or, removing unary - and not, numbers
(n -> n + 1; 0.x -> 0.x + 1), True <-> False. Lines marked ``# pragma: no mutate`` are skipped.

Why not mutmut: mutmut 3 copies the project into ``mutants/`` and runs the suite from there, which
fights this repository's ``src/`` layout with an editable install from another checkout, and it
starts one interpreter per mutant (importing torch takes seconds on 2 cores). This runner copies
``src/`` once into a temporary folder (other files symlinked), imports the heavy libraries once and
forks one child per mutant, which imports the mutated package from that folder and runs pytest.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BINOP_SWAPS = {ast.Add: [ast.Sub], ast.Sub: [ast.Add], ast.Mult: [ast.Div], ast.Div: [ast.Mult],
               ast.Pow: [ast.Mult], ast.FloorDiv: [ast.Div], ast.Mod: [ast.FloorDiv]}  # fmt: skip
CMP_SWAPS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
             ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}  # fmt: skip


def _skip_lines(src: str) -> set[int]:
    return {i for i, line in enumerate(src.splitlines(), 1) if "pragma: no mutate" in line}


def _docstring_nodes(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def _in_functions(tree: ast.AST, names: set[str] | None) -> set[int] | None:
    """ids of nodes inside functions/classes named in ``names`` (None: everything)."""
    if not names:
        return None
    keep = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names:
            keep.update(id(n) for n in ast.walk(node))
    return keep


def _annotation_ids(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        anns = []
        if isinstance(node, (ast.AnnAssign, ast.arg)) and node.annotation is not None:
            anns.append(node.annotation)
        if isinstance(node, ast.FunctionDef) and node.returns is not None:
            anns.append(node.returns)
        for a in anns:
            out.update(id(n) for n in ast.walk(a))
    return out


def mutation_sites(tree: ast.AST, src: str, functions: set[str] | None):
    """[(node index in ast.walk order, kind, description, line)]."""
    skip_lines, docs, ann = _skip_lines(src), _docstring_nodes(tree), _annotation_ids(tree)
    keep = _in_functions(tree, functions)
    sites = []
    for idx, node in enumerate(ast.walk(tree)):
        line = getattr(node, "lineno", None)
        if line is None or line in skip_lines or id(node) in docs or id(node) in ann:
            continue
        if keep is not None and id(node) not in keep:
            continue
        if isinstance(node, ast.BinOp):
            for new in BINOP_SWAPS.get(type(node.op), []):
                sites.append((idx, ("binop", new.__name__), f"{type(node.op).__name__} -> {new.__name__}", line))
            if isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
                sites.append((idx, ("left",), f"{type(node.op).__name__}: keep only the left operand", line))
                if not isinstance(node.op, (ast.Sub, ast.Div)):
                    sites.append((idx, ("right",), f"{type(node.op).__name__}: keep only the right operand", line))
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in CMP_SWAPS:
            new = CMP_SWAPS[type(node.ops[0])]
            sites.append((idx, ("cmp", new.__name__), f"{type(node.ops[0]).__name__} -> {new.__name__}", line))
        elif isinstance(node, ast.BoolOp):
            new = ast.Or if isinstance(node.op, ast.And) else ast.And
            sites.append((idx, ("boolop",), f"{type(node.op).__name__} -> {new.__name__}", line))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
            sites.append((idx, ("unary",), f"remove {type(node.op).__name__}", line))
        elif isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool):
                sites.append((idx, ("const", not v), f"{v} -> {not v}", line))
            elif isinstance(v, (int, float)) and not isinstance(v, complex):
                sites.append((idx, ("const", v + 1), f"{v!r} -> {v + 1!r}", line))
    return sites


def apply(tree: ast.AST, idx: int, kind: tuple) -> ast.AST:
    t = copy.deepcopy(tree)
    nodes = list(ast.walk(t))
    node = nodes[idx]
    replacement = None
    if kind[0] == "binop":
        node.op = getattr(ast, kind[1])()
    elif kind[0] == "left":
        replacement = node.left
    elif kind[0] == "right":
        replacement = node.right
    elif kind[0] == "cmp":
        node.ops = [getattr(ast, kind[1])()]
    elif kind[0] == "boolop":
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif kind[0] == "unary":
        replacement = node.operand
    elif kind[0] == "const":
        node.value = kind[1]
    if replacement is not None:
        for parent in nodes:
            for field, value in ast.iter_fields(parent):
                if value is node:
                    setattr(parent, field, replacement)
                elif isinstance(value, list):
                    for i, v in enumerate(value):
                        if v is node:
                            value[i] = replacement
    return ast.fix_missing_locations(t)


def shadow_tree(dest: Path) -> None:
    """dest/src: a snapshot of the checkout's src/ (Python files copied, so edits to the checkout during a
    run do not leak in; other files symlinked); the target is then replaced."""
    for dirpath, dirnames, filenames in os.walk(ROOT / "src"):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        rel = Path(dirpath).relative_to(ROOT)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for f in filenames:
            if f.endswith(".py"):
                shutil.copy2(Path(dirpath) / f, dest / rel / f)
            else:
                os.symlink(Path(dirpath) / f, dest / rel / f)


def run_tests(srcdir: Path, pytest_args: list[str], timeout: float, log: Path) -> str:
    pid = os.fork()
    if pid == 0:  # child: fresh import of the package from the mutated copy
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            sys.path.insert(0, str(srcdir))
            os.chdir(ROOT)
            import pytest

            rc = pytest.main(pytest_args)
            sys.stdout.flush()
            os._exit(int(rc))
        except BaseException:  # noqa: BLE001
            os._exit(99)
    t0 = time.time()
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            return "survived" if code == 0 else ("no tests" if code == 5 else "killed")
        if time.time() - t0 > timeout:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "killed (timeout)"
        time.sleep(0.05)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("target", help="source file under src/, e.g. src/inpaintgan/losses.py")
    ap.add_argument("--tests", nargs="+", required=True, help="test files / node ids to run per mutant")
    ap.add_argument("--functions", default="", help="comma-separated functions/classes to mutate (default: all)")
    ap.add_argument("--only", default="", help="comma-separated mutant numbers to run (e.g. the survivors)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per mutant (past it: killed)")
    ap.add_argument("--max-minutes", type=float, default=30.0, help="stop starting mutants after this")
    ap.add_argument("--report", default="", help="write the results as JSON here")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--show", type=int, default=None, help="print mutant N as a diff and exit")
    ap.add_argument("--pytest-args", default="", help="extra pytest arguments, one string (e.g. \"-k 'not slow'\")")
    args = ap.parse_args(argv)

    target = (ROOT / args.target).resolve()
    rel = target.relative_to(ROOT)
    src = target.read_text()
    tree = ast.parse(src)
    functions = {f for f in args.functions.split(",") if f} or None
    sites = mutation_sites(tree, src, functions)
    if args.list:
        for i, (_, _, desc, line) in enumerate(sites):
            print(f"{i:4d}  {rel}:{line}  {desc}")
        return 0
    if args.show is not None:
        import difflib

        idx, kind, desc, line = sites[args.show]
        base, mut = ast.unparse(tree).splitlines(), ast.unparse(apply(tree, idx, kind)).splitlines()
        print(f"#{args.show} {rel}:{line} {desc}")
        print("\n".join(difflib.unified_diff(base, mut, "original", "mutant", lineterm="", n=1)))
        return 0
    only = {int(x) for x in args.only.split(",") if x}
    pytest_args = ["-x", "-q", "-p", "no:cacheprovider", *args.tests, *shlex.split(args.pytest_args)]

    import numpy  # noqa: F401  the heavy imports, once, before forking
    import torch

    torch.set_num_threads(1)
    try:
        import cv2  # noqa: F401
    except ImportError:
        pass

    tmp = Path(tempfile.mkdtemp(prefix="mutants_"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # kill PID: the temporary copy is still removed
    results = []
    t_start = time.time()
    try:
        shadow_tree(tmp)
        dest = tmp / rel
        dest.unlink()
        baseline = ast.unparse(tree)
        dest.write_text(baseline)
        # the unmutated (unparsed) file must pass, and must be what the child imports
        probe = tmp / "probe.log"
        status = run_tests(tmp / "src", pytest_args, args.timeout * 3, probe)
        if status != "survived":
            print(f"baseline fails ({status}); see {probe}:\n" + probe.read_text()[-3000:])
            return 2
        print(f"baseline passes in {time.time() - t_start:.0f}s; {len(sites)} mutants of {rel}", flush=True)
        for i, (idx, kind, desc, line) in enumerate(sites):
            if only and i not in only:
                continue
            if time.time() - t_start > args.max_minutes * 60:
                print(f"time budget spent: stopped before mutant {i}", flush=True)
                break
            mutated = ast.unparse(apply(tree, idx, kind))
            if mutated == baseline:
                continue
            dest.write_text(mutated)
            for pyc in (dest.parent / "__pycache__").glob(dest.stem + ".*"):
                pyc.unlink()
            t0 = time.time()
            status = run_tests(tmp / "src", pytest_args, args.timeout, tmp / "m.log")
            results.append({"id": i, "line": line, "mutation": desc, "status": status, "seconds": round(time.time() - t0, 1)})
            print(f"{i:4d} {rel}:{line:<4d} {desc:<45s} {status} ({time.time() - t0:.0f}s)", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    killed = sum(r["status"].startswith("killed") for r in results)
    total = len(results)
    minutes = (time.time() - t_start) / 60
    print(f"\n{rel}: {killed}/{total} killed ({100 * killed / max(total, 1):.1f}%) in {minutes:.1f} min")
    for r in results:
        if r["status"] == "survived":
            print(f"  survived #{r['id']} line {r['line']}: {r['mutation']}")
    if args.report:
        Path(args.report).write_text(json.dumps({"target": str(rel), "tests": args.tests, "killed": killed, "total": total,
                                                 "minutes": round(minutes, 1), "results": results}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
