"""Run every notebook on a fresh kernel and save what each code cell printed, or compare two such runs.

A refactoring of the package must leave every notebook's printed numbers as they were:

    python tools/notebook_outputs.py save before.json      # on the old code
    python tools/notebook_outputs.py save after.json       # on the new code
    python tools/notebook_outputs.py compare before.json after.json

``save`` keeps the text of each code cell's outputs (streams, ``text/plain`` results and errors);
progress bars and widget models, which carry no numbers of the lesson, are left out.
``compare`` lists every cell whose text differs, by notebook and cell number, and exits 1 if any does.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
_PROGRESS = re.compile(r"^.*(\d+%\|| it/s\]|s/it\]).*$", re.MULTILINE)


def cell_texts(path):
    """The printed text of every code cell of the notebook at ``path``, run top to bottom."""
    import nbformat
    from nbclient import NotebookClient

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import nbclient_wake   # a reply no longer waits for the cell's timeout

    nbclient_wake.install()

    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    texts = {}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        parts = []
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and output.name == "stdout":
                parts.append(output.text)
            elif output.output_type in ("execute_result", "display_data") and "text/plain" in output.data:
                if "application/vnd.jupyter.widget-view+json" not in output.data:
                    parts.append(output.data["text/plain"])
            elif output.output_type == "error":
                parts.append(f"{output.ename}: {output.evalue}")
        texts[str(index)] = _PROGRESS.sub("", "".join(parts))
    return texts


def save(target, names=()):
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    if names:
        paths = [p for p in paths if any(p.name.startswith(n) for n in names)]
    runs = {}
    for path in paths:
        print(path.name, flush=True)
        runs[path.name] = cell_texts(path)
    Path(target).write_text(json.dumps(runs, indent=1, ensure_ascii=False))


def compare(before, after):
    old, new = json.loads(Path(before).read_text()), json.loads(Path(after).read_text())
    differ = 0
    for name in sorted(set(old) | set(new)):
        cells_old, cells_new = old.get(name, {}), new.get(name, {})
        for cell in sorted(set(cells_old) | set(cells_new), key=int):
            if cells_old.get(cell) != cells_new.get(cell):
                differ += 1
                print(f"--- {name} cell {cell}\n- {cells_old.get(cell)!r}\n+ {cells_new.get(cell)!r}")
    print(f"{differ} cell(s) differ")
    return differ


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    if command == "save":
        save(arguments[0], arguments[1:])
    elif command == "compare":
        sys.exit(1 if compare(*arguments) else 0)
    else:
        sys.exit(f"unknown command {command!r}; use save or compare")
