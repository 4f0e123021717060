"""The retort Jupyter kernel driven by Jupyter's own clients (jupyter_client, nbclient,
jupyter_kernel_test, papermill). tests/it/jupyter.rs installs the kernel into a temporary
JUPYTER_PATH and runs this file with the virtual environment of scripts/jupyter-venv.sh.

Environment: RETORT_BIN (the binary), RETORT_ROOT (the repository), JUPYTER_PATH.
"""

import copy
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import jupyter_client
from jupyter_client.session import Session
import jupyter_kernel_test
import nbformat
from nbclient import NotebookClient

RETORT = os.environ["RETORT_BIN"]
ROOT = os.environ["RETORT_ROOT"]
NOTEBOOK = os.path.join(ROOT, "docs", "notebooks", "wsl-walkthrough.ipynb")

# a fit long enough to interrupt: each digits epoch takes milliseconds
LONG_FIT = """let d = dataset("digits", #{ test_fraction: 0.2, seed: 7 });
let m = model("mlp", #{ input: d.input, hidden: [64], classes: d.classes });
let r = fit(m, d, #{ epochs: 100000 });"""


class RetortConformance(jupyter_kernel_test.KernelTests):
    """jupyter_kernel_test's conformance suite (every message validated against protocol 5)."""

    kernel_name = "retort"
    language_name = "rhai"
    file_extension = ".rhai"
    code_hello_world = 'print("hello, world")'
    completion_samples = [
        {"text": "evalu", "matches": {"evaluate"}},
        {"text": 'dataset("digits", #{ test_fr', "matches": {"test_fraction"}},
        {"text": "let m = model(\"mlp\", #{});\nm.train_m", "matches": set()},
    ]
    complete_code_samples = ["1 + 1", "let x = [1, 2];", "fn f(x) {\n    x\n}"]
    incomplete_code_samples = ["fn f(x) {", "let x = [1,", 'let s = "abc', "let a = 1 +"]
    invalid_code_samples = ["let = 5;", "let a = 1 2;"]
    code_inspect_sample = "fit"
    code_generate_error = "let y = no_such_variable + 1;"
    code_execute_result = [{"code": "1 + 1", "result": "2"}, {"code": "[1, 2].len()", "result": "2"}]
    # search too, but jupyter-protocol 2.0.3 cannot parse a search request without `n` and
    # `unique`, which jupyter_kernel_test's omits (the kernel drops it as malformed)
    supported_history_operations = ("tail", "range")
    code_display_data = [
        {"code": 'table([#{ method: "KD", accuracy: 0.93 }, #{ method: "WSL", accuracy: 0.95 }]);', "mime": "text/html"},
        {"code": 'table([#{ method: "KD", accuracy: 0.93 }]);', "mime": "text/markdown"},
        {"code": "plot(small_run);", "mime": "image/png"},
    ]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # a finished fit for the plot sample (its progress display is this cell's, not the sample's)
        reply = cls.kc.execute_interactive(
            'let small = dataset("digits", #{ train_limit: 100, test_limit: 50 });\n'
            'let small_model = model("mlp", #{ input: small.input, hidden: [8], classes: small.classes });\n'
            "let small_run = fit(small_model, small, #{ epochs: 2 });",
            timeout=60,
        )
        assert reply["content"]["status"] == "ok", reply["content"]


def start(**kw):
    km, kc = jupyter_client.manager.start_new_kernel(kernel_name="retort", **kw)
    return km, kc


def outputs_of(kc, code, timeout=60):
    """Runs code; returns (reply content, iopub messages of that request)."""
    got = []
    reply = kc.execute_interactive(code, timeout=timeout, output_hook=got.append)
    return reply["content"], got


class Sessions(unittest.TestCase):
    def test_history_search_with_a_glob(self):
        km, kc = start()
        try:
            for code in ["1 + 1", "2 + 2", "1 + 1", "let z = 3;"]:
                outputs_of(kc, code)
            kc.history(hist_access_type="search", pattern="1 +*", n=10, unique=False, output=True, raw=True)
            reply = kc.get_shell_msg(timeout=10)
            self.assertEqual([h[2] for h in reply["content"]["history"]], [["1 + 1", "2"], ["1 + 1", "2"]])
            kc.history(hist_access_type="search", pattern="*", n=2, unique=True, output=False, raw=True)
            reply = kc.get_shell_msg(timeout=10)
            self.assertEqual([h[1:] for h in reply["content"]["history"]], [[3, "1 + 1"], [4, "let z = 3;"]])
        finally:
            km.shutdown_kernel(now=False)

    def test_variables_functions_and_imports_persist(self):
        km, kc = start()
        try:
            self.assertEqual(outputs_of(kc, "let x = 20;\nfn twice(v) { v * 2 }")[0]["status"], "ok")
            self.assertEqual(outputs_of(kc, 'import "schedules" as sched;')[0]["status"], "ok")
            content, msgs = outputs_of(kc, "twice(x) + 2")
            results = [m["content"]["data"]["text/plain"] for m in msgs if m["msg_type"] == "execute_result"]
            self.assertEqual(results, ["42"])
            content, msgs = outputs_of(kc, "sched::constant(3, 0.5)")
            results = [m["content"]["data"]["text/plain"] for m in msgs if m["msg_type"] == "execute_result"]
            self.assertEqual(results, ["0.5"], content)
        finally:
            km.shutdown_kernel(now=False)

    def test_errors_name_the_cell_line_and_column(self):
        km, kc = start()
        try:
            content, msgs = outputs_of(kc, "let a = 1;\nlet b = a + ;")
            self.assertEqual(content["status"], "error")
            errors = [m["content"] for m in msgs if m["msg_type"] == "error"]
            self.assertEqual(len(errors), 1)
            tb = "\n".join(errors[0]["traceback"])
            self.assertIn(":2:", tb, tb)
            self.assertIn("2 | let b = a + ;", tb)
            self.assertIn("^", tb)
        finally:
            km.shutdown_kernel(now=False)

    def test_training_progress_is_one_display_updated_in_place(self):
        km, kc = start()
        try:
            content, msgs = outputs_of(kc, LONG_FIT.replace("100000", "30"))
            self.assertEqual(content["status"], "ok")
            displays = [m for m in msgs if m["msg_type"] == "display_data"]
            updates = [m for m in msgs if m["msg_type"] == "update_display_data"]
            self.assertEqual(len(displays), 1, [m["msg_type"] for m in msgs])
            display_id = displays[0]["content"]["transient"]["display_id"]
            self.assertGreaterEqual(len(updates), 30, "at least one update per epoch")
            self.assertTrue(all(u["content"]["transient"]["display_id"] == display_id for u in updates))
            last = updates[-1]["content"]["data"]["text/plain"]
            self.assertIn("fit epoch 30/30: loss", last)
            self.assertIn("test acc", last)
            self.assertEqual(last.count("\n"), 30, "one line per epoch")
            streams = [m for m in msgs if m["msg_type"] == "stream"]
            self.assertEqual(streams, [], "no line per batch")
        finally:
            km.shutdown_kernel(now=False)

    def test_an_interrupt_stops_a_long_fit_and_keeps_the_session(self):
        km, kc = start()
        try:
            msg_id = kc.execute(LONG_FIT)
            # wait for training to be under way: its progress display
            deadline = time.time() + 60
            while time.time() < deadline:
                m = kc.get_iopub_msg(timeout=60)
                if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "update_display_data":
                    break
            time.sleep(0.5)
            started = time.time()
            km.interrupt_kernel()
            reply = kc.get_shell_msg(timeout=30)
            self.assertLess(time.time() - started, 10)
            self.assertEqual(reply["parent_header"]["msg_id"], msg_id)
            self.assertEqual(reply["content"]["status"], "error")
            self.assertEqual(reply["content"]["ename"], "Interrupted")
            content, msgs = outputs_of(kc, "[r.interrupted, r.history.len() > 0, r.history.len() < 100000]")
            self.assertEqual(content["status"], "ok", content)
            results = [m["content"]["data"]["text/plain"] for m in msgs if m["msg_type"] == "execute_result"]
            self.assertEqual(results, ["[true, true, true]"])
            content, msgs = outputs_of(kc, "evaluate(m, d.test).accuracy > 0.5")
            results = [m["content"]["data"]["text/plain"] for m in msgs if m["msg_type"] == "execute_result"]
            self.assertEqual(results, ["true"], "the model keeps what was trained")
            # outside training too: a script loop stops where it is
            msg_id = kc.execute("let i = 0; loop { i += 1; }")
            time.sleep(1.0)
            km.interrupt_kernel()
            reply = kc.get_shell_msg(timeout=30)
            self.assertEqual((reply["content"]["status"], reply["content"]["ename"]), ("error", "Interrupted"))
            content, msgs = outputs_of(kc, "i > 0")
            results = [m["content"]["data"]["text/plain"] for m in msgs if m["msg_type"] == "execute_result"]
            self.assertEqual(results, ["true"])
        finally:
            km.shutdown_kernel(now=False)

    def test_a_failed_cell_aborts_the_queued_ones(self):
        km, kc = start()
        try:
            # the failing cell takes a moment, as cells do, so the next request is queued behind it
            first = kc.execute('let x = 1;\nlet n = 0;\nfor i in 0..200000 { n += i; }\nthrow "fail";')
            second = kc.execute('print("SHOULD NOT RUN"); 2')
            replies = {}
            while len(replies) < 2:
                r = kc.get_shell_msg(timeout=30)
                replies[r["parent_header"]["msg_id"]] = r["content"]["status"]
            self.assertEqual(replies, {first: "error", second: "aborted"})
            content, msgs = outputs_of(kc, "x + 1")
            self.assertEqual([m["content"]["data"]["text/plain"] for m in msgs if m["msg_type"] == "execute_result"], ["2"])
            # without stop_on_error the next one runs
            kc.execute('throw "fail";', stop_on_error=False)
            third = kc.execute("3")
            statuses = [kc.get_shell_msg(timeout=30)["content"]["status"] for _ in range(2)]
            self.assertEqual(statuses, ["error", "ok"])
        finally:
            km.shutdown_kernel(now=False)

    def test_errors_are_named_after_the_cell(self):
        km, kc = start()
        try:
            kc.execute_interactive("1", silent=True, timeout=30)
            content, _ = outputs_of(kc, 'let a = 1;\nthrow "boom";')
            self.assertEqual(content["execution_count"], 1)
            self.assertIn("In [1]:2", "\n".join(content["traceback"]))
        finally:
            km.shutdown_kernel(now=False)

    def test_the_heartbeat_echoes(self):
        import zmq

        km, kc = start()
        try:
            info = km.get_connection_info()
            sock = zmq.Context.instance().socket(zmq.REQ)
            sock.connect(f"tcp://{info['ip']}:{info['hb_port']}")
            sock.send(b"ping-42")
            self.assertTrue(sock.poll(5000))
            self.assertEqual(sock.recv(), b"ping-42")
            sock.close(linger=0)
        finally:
            km.shutdown_kernel(now=False)

    def test_the_kernel_ends_when_the_process_that_started_it_does(self):
        code = (
            "import jupyter_client, os, sys\n"
            "km, kc = jupyter_client.manager.start_new_kernel(kernel_name='retort')\n"
            "print(km.provisioner.process.pid, flush=True)\n"
            "os._exit(0)\n"
        )
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        pid = int(p.stdout.split()[-1])
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            os.kill(pid, 9)
            self.fail("the kernel outlived the process that started it")

    def test_shutdown_stops_a_running_fit(self):
        km, kc = start()
        kc.execute(LONG_FIT)
        time.sleep(1.0)
        started = time.time()
        km.shutdown_kernel(now=False)
        self.assertLess(time.time() - started, 10)
        self.assertFalse(km.is_alive())

    def test_restart_gives_a_fresh_session(self):
        km, kc = start()
        try:
            outputs_of(kc, "let kept = 1;")
            km.restart_kernel(now=False)
            kc.wait_for_ready(timeout=30)
            content, _ = outputs_of(kc, "kept")
            self.assertEqual(content["status"], "error")
        finally:
            km.shutdown_kernel(now=False)


class Signatures(unittest.TestCase):
    def test_messages_signed_with_another_key_are_never_run(self):
        log = tempfile.NamedTemporaryFile(mode="w+", suffix=".log", delete=False)
        km, kc = start(stderr=log)
        marker = os.path.join(tempfile.mkdtemp(), "ran")
        try:
            info = km.get_connection_info()

            def client(key):
                # a session of its own (km.client() would share the manager's, and its identity)
                c = jupyter_client.BlockingKernelClient(session=Session())
                c.load_connection_info(info)
                c.session.key = key  # after load_connection_info, which sets the right one
                c.start_channels()
                return c

            bad = client(b"not-the-key")
            bad.execute(f'print("{marker}")')
            unsigned = client(b"")
            unsigned.execute(f'print("{marker}")')
            time.sleep(1.0)
            with self.assertRaises(queue.Empty):
                bad.get_shell_msg(timeout=1)
            with self.assertRaises(queue.Empty):
                unsigned.get_shell_msg(timeout=1)
            # the kernel still serves signed requests, and never saw the bad ones' code
            content, msgs = outputs_of(kc, "40 + 2")
            self.assertEqual(content["status"], "ok")
            while True:
                try:
                    m = kc.get_iopub_msg(timeout=0.5)
                except queue.Empty:
                    break
                self.assertNotIn(marker, json.dumps(m["content"]))
            bad.stop_channels()
            unsigned.stop_channels()
        finally:
            km.shutdown_kernel(now=False)
        log.seek(0)
        text = log.read()
        self.assertIn("dropped a message on the shell channel, not run", text)
        self.assertEqual(text.count("dropped a message"), 2, text)


def normalized(nb):
    """Outputs per code cell, without what differs between runs (timing metadata)."""
    out = []
    for c in nb.cells:
        if c.cell_type == "code":
            out.append((c.execution_count, [dict(o) for o in c.outputs]))
    return json.loads(json.dumps(out))


class Notebooks(unittest.TestCase):
    def test_the_walkthrough_runs_headless_and_matches_retort_notebook_run(self):
        d = tempfile.mkdtemp()
        nb = nbformat.read(NOTEBOOK, as_version=4)
        for c in nb.cells:
            if c.cell_type == "code":
                c.outputs, c.execution_count = [], None
        client = NotebookClient(nb, timeout=300, kernel_name="retort", resources={"metadata": {"path": d}})
        client.execute()
        by_kernel = os.path.join(d, "by-kernel.ipynb")
        nbformat.write(nb, by_kernel)
        nbformat.validate(nbformat.read(by_kernel, as_version=4))

        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        tables = [o for o in outputs if o.output_type == "display_data" and "text/html" in o.data and "<table>" in o.data["text/html"]]
        self.assertTrue(tables, "a table output carries text/html")
        self.assertTrue(all("text/markdown" in o.data and "text/plain" in o.data for o in tables))
        images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
        self.assertTrue(images, "a plot output carries image/png")
        self.assertTrue(images[0].data["image/png"].startswith("iVBORw0KGgo"), "base64 of a PNG")

        by_retort = os.path.join(d, "by-retort.ipynb")
        p = subprocess.run([RETORT, "notebook", "run", NOTEBOOK, "-o", by_retort, "--no-record"], capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        written = nbformat.read(by_retort, as_version=4)
        nbformat.validate(written)
        self.assertEqual(normalized(written), normalized(nb))
        self.assertEqual(written.metadata.kernelspec.name, "retort")
        self.assertEqual(written.metadata.language_info.file_extension, ".rhai")

    def test_a_failing_cell_stops_the_notebook_with_its_error(self):
        nb = nbformat.v4.new_notebook()
        nb.metadata.kernelspec = {"name": "retort", "display_name": "retort (Rhai)", "language": "rhai"}
        nb.cells = [nbformat.v4.new_code_cell("let a = 1;"), nbformat.v4.new_code_cell("let b = a +;"), nbformat.v4.new_code_cell("print(1);")]
        d = tempfile.mkdtemp()
        path = os.path.join(d, "fails.ipynb")
        nbformat.write(nb, path)
        p = subprocess.run([RETORT, "notebook", "run", path, "--no-record"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1)
        written = nbformat.read(path, as_version=4)
        nbformat.validate(written)
        self.assertEqual(written.cells[1].outputs[0].output_type, "error")
        self.assertEqual(written.cells[2].outputs, [])
        # nbclient raises on the same cell
        nb2 = nbformat.read(path, as_version=4)
        with self.assertRaises(Exception) as caught:
            NotebookClient(nb2, timeout=60, kernel_name="retort").execute()
        self.assertIn("let b = a +;", str(caught.exception))

    def test_parameters_reach_the_script(self):
        d = tempfile.mkdtemp()
        out = os.path.join(d, "t2.ipynb")
        p = subprocess.run([RETORT, "notebook", "run", NOTEBOOK, "-o", out, "--no-record", "--set", "temperature=2"], capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        text = json.dumps([c.get("outputs", []) for c in nbformat.read(out, as_version=4).cells])
        self.assertIn("KD and WSL at T = 2.0, alpha = 2.25", text)
        # a parameter the cell does not declare is refused by name
        p = subprocess.run([RETORT, "notebook", "run", NOTEBOOK, "-o", out, "--no-record", "--set", "temprature=2"], capture_output=True, text=True, timeout=300)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("temprature", p.stderr + json.dumps(nbformat.read(out, as_version=4).cells[1].outputs))

    def test_papermills_rhai_literals_run(self):
        import papermill.engines  # noqa: F401  (loads the entry points: papermill-retort's translator)
        from papermill.translators import translate_parameters

        values = {"i": 2, "f": 2.5, "tiny": 1e-05, "s": 'a"b\\c\b\f\n 🌍 é', "yes": True, "nothing": None, "xs": [1, "x", [2.0]], "m": {"k\"ey": 1.5}}
        code = translate_parameters("retort", "rhai", values)
        km, kc = start()
        try:
            content, _ = outputs_of(kc, code)
            self.assertEqual(content["status"], "ok", code)
            checks = 'print([i, f, tiny, s.len(), yes, type_of(nothing), xs[2][0], m["k\\"ey"]]);'
            content, msgs = outputs_of(kc, checks)
            printed = "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream")
            self.assertEqual(printed, f'[2, 2.5, 1e-5, {len(values["s"])}, true, "()", 2.0, 1.5]\n')
        finally:
            km.shutdown_kernel(now=False)
        with self.assertRaises(ValueError):
            translate_parameters("retort", "rhai", {"big": 2**70})

    @unittest.skipIf(shutil.which("papermill") is None and not os.environ.get("RETORT_PAPERMILL"), "papermill is not installed")
    def test_papermill_parameters_reach_the_script(self):
        d = tempfile.mkdtemp()
        out = os.path.join(d, "out.ipynb")
        papermill = os.environ.get("RETORT_PAPERMILL") or shutil.which("papermill")
        p = subprocess.run([papermill, NOTEBOOK, out, "-k", "retort", "-p", "temperature", "2"], capture_output=True, text=True, timeout=300, cwd=d)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        nb = nbformat.read(out, as_version=4)
        injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        self.assertEqual(len(injected), 1)
        self.assertIn("let temperature = 2;", injected[0].source)
        text = json.dumps([c.get("outputs", []) for c in nb.cells])
        self.assertIn("KD and WSL at T = 2, alpha = 2.25", text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
