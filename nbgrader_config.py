"""nbgrader configuration for the HW6 course kit.

Every nbgrader command (and `coursekit`, which wraps nbgrader's Python API) reads this file.
Paths are relative to the folder holding this file, so the course can be copied anywhere.
"""
import os

c = get_config()  # noqa: F821  (provided by traitlets when nbgrader loads this file)
course_root = os.path.dirname(os.path.abspath(__file__))

# --- the course -----------------------------------------------------------------------------
c.CourseDirectory.course_id = "hw6-rnn"
c.CourseDirectory.root = course_root
# The SQLite gradebook lives next to this file (never committed).
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(course_root, "gradebook.db")
# nbgrader's exchange (release/fetch/submit on one multi-user server). On a shared JupyterHub,
# point this at the shared exchange folder instead.
c.Exchange.root = os.path.join(course_root, "exchange")
# Files that never travel with an assignment.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".pytest_cache",
                            "submission_log.json"]

# --- what students see ----------------------------------------------------------------------
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# --- autograding ----------------------------------------------------------------------------
# A student who deletes a test cell gets it back (and its points count, at 0 if it fails).
c.OverwriteCells.add_missing_cells = True
# Per-cell time limit (seconds). The longest cell is the Problem 3k training (~30 s here).
c.Execute.timeout = 300
c.Execute.interrupt_on_timeout = True
c.Execute.startup_timeout = 120
# No IPython history file per kernel; and no kernel warnings about its loopback transport in the log.
c.Execute.extra_arguments = ["--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR"]
# Keep the autograded notebooks readable even if a student prints megabytes.
c.LimitOutput.max_lines = 500
c.LimitOutput.max_traceback = 50

# --- the sandbox every student kernel runs in (see coursekit/executor.py and coursekit/sandbox.py) ----
# Kernels run as an unprivileged user with no network, without sight of this course folder (except
# what is listed in read_only), under CPU/memory/process/file-size limits. Verdicts are decided
# outside the kernel (coursekit/verdicts.py).
c.Sandbox.enabled = True
c.Sandbox.notebook_timeout = 900  # seconds for a whole notebook
c.Sandbox.max_output_bytes = 2_000_000  # outputs kept per notebook
c.Sandbox.cpu_seconds = 1800  # CPU seconds per kernel
c.Sandbox.memory_bytes = 8 * 1024**3  # address space per kernel (torch alone maps ~1.5 GiB)
c.Sandbox.max_processes = 256  # processes and threads per kernel (each parallel job has its own uid)
c.Sandbox.max_file_bytes = 256 * 1024**2  # largest file a kernel may write
c.Sandbox.read_only = [os.path.join(course_root, "data", "names")]  # Problem 4's data set
c.Sandbox.environment = {"HW6_DATA_DIR": os.path.join(course_root, "data", "names")}

# --- feedback -------------------------------------------------------------------------------
# Stock feedback shows hidden tests and their tracebacks; ours removes both.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "coursekit.feedback.HideHiddenTests",
]
