"""Runs the python blocks of one doc in one interpreter, in order, so a block sees what
the doc's earlier blocks defined (started by test_docs_run.py in the doc's directory).

Reads one JSON request per line on stdin, `{"doc", "line", "code"}`; answers on the
original stdout one JSON line per block, `{"ok", "error", "output"}`. What the blocks
print goes to stderr (the file descriptor too), so it never mixes with the answers.
"""

import contextlib
import io
import json
import os
import sys
import traceback

answers = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
namespace: dict[str, object] = {"__name__": "__main__"}
for request in sys.stdin:
    block = json.loads(request)
    printed = io.StringIO()
    error = None
    try:
        # Leading newlines: the traceback names the doc's own line numbers.
        code = compile("\n" * block["line"] + block["code"], block["doc"], "exec")
        with contextlib.redirect_stdout(printed):
            exec(code, namespace)
    except BaseException:
        error = traceback.format_exc()
    answers.write(json.dumps({"ok": error is None, "error": error, "output": printed.getvalue()}))
    answers.write("\n")
    answers.flush()
