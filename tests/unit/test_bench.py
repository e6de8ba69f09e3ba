"""bench/bench.py, the one command line of `make bench`: each command runs its item (not timed here)."""

import importlib.util
import subprocess
import sys

import pytest


@pytest.fixture
def bench(repo, monkeypatch):
    """bench/bench.py as a module, its items replaced by recorders (``bench.calls``)."""
    spec = importlib.util.spec_from_file_location("bench_cli", repo / "bench" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setattr(sys, "path", list(sys.path))  # (it puts this checkout and the helpers first)
    spec.loader.exec_module(module)
    module.calls = []
    monkeypatch.setattr(module, "bench_all", lambda: module.calls.append("all"))
    monkeypatch.setattr(module, "bench_warp", lambda: {"ms_per_stamp": {"lanczos5": 3.0}})
    monkeypatch.setattr(module, "grouping", lambda n: ("grouping", n))
    monkeypatch.setattr(module, "hats_lookup", lambda n: ("hats", n))
    monkeypatch.setattr(module, "_print_and_record", lambda key, res: module.calls.append((key, res)))
    monkeypatch.setattr(module, "stack_memory", lambda n: module.calls.append(("stack-memory", n)))
    monkeypatch.setattr(module, "load", lambda n: module.calls.append(("load", n)))
    return module


@pytest.mark.parametrize(
    ("argv", "call"),
    [
        ([], "all"),
        (["all"], "all"),
        (["grouping"], ("grouping", ("grouping", 40))),
        (["grouping", "3"], ("grouping", ("grouping", 3))),
        (["hats"], ("hats", ("hats", 10_000_000))),
        (["hats", "1000"], ("hats", ("hats", 1000))),
        (["stack-memory", "500"], ("stack-memory", 500)),
        (["load", "7"], ("load", 7)),
    ],
)
def test_each_command_runs_its_item_once(bench, argv, call):
    bench.main(argv)
    assert bench.calls == [call]


def test_warp_prints_its_figures(bench, capsys):
    bench.main(["warp"])
    assert capsys.readouterr().out == '{\n  "ms_per_stamp": {\n    "lanczos5": 3.0\n  }\n}\n'
    assert bench.calls == []


@pytest.mark.parametrize("argv", [["nope"], ["load"], ["stack-memory"], ["load", "many"], ["warp", "3"]])
def test_a_wrong_command_line_is_refused_before_any_item_runs(bench, argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        bench.main(argv)
    assert exit_.value.code == 2 and bench.calls == []
    usage = {"load": "load [-h] N", "stack-memory": "stack-memory [-h] N"}.get(argv[0], "[-h] [command [N]]")
    assert capsys.readouterr().err.splitlines()[0] == f"usage: bench/bench.py {usage}"


def test_help_runs_from_the_command_line(repo):
    proc = subprocess.run(
        [sys.executable, "bench/bench.py", "--help"], cwd=repo, capture_output=True, text=True, check=True
    )
    assert proc.stdout.startswith("usage: bench/bench.py [-h] [command [N]]\n")
    for command in ("all", "warp", "grouping", "stack-memory", "load", "hats"):
        assert f"\n    {command}" in proc.stdout, command


def test_the_docs_page_gets_the_figures_of_a_run_between_its_markers(bench, tmp_path, monkeypatch):
    page = tmp_path / "performance.md"
    page.write_text(
        f"# Performance\n\ntext\n\n{bench._DOCS_BEGIN}\nold figures\n{bench._DOCS_END}\n\nafter\n"
    )
    monkeypatch.setattr(bench, "_print_table", lambda r: print(f"\nwarp {r['warp']} ms\n"))
    bench.render_docs({"warp": 3.1}, page=page)
    want = f"# Performance\n\ntext\n\n{bench._DOCS_BEGIN}\n\n```text\nwarp 3.1 ms\n```\n\n{bench._DOCS_END}\n\nafter\n"
    assert page.read_text() == want
    bench.render_docs({"warp": 3.1}, page=page)  # again: the same page
    assert page.read_text() == want


def test_render_rewrites_the_page_from_results_json(bench, tmp_path, monkeypatch):
    (tmp_path / "results.json").write_text('{"warp": 2.5}')
    monkeypatch.setattr(bench, "OUT", tmp_path)
    seen = []
    monkeypatch.setattr(bench, "render_docs", lambda results: seen.append(results))
    bench.main(["render"])
    assert seen == [{"warp": 2.5}]
